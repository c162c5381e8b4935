"""One redaction for every text that may leave the process: output, logs, exception messages,
the `runs` table (and so the analyst file), reports.

Zoho's accounts server and API sometimes echo the request in an error text (the token form with
the client secret and refresh token, or the `Authorization` header), so no message built from
Zoho's answer can be trusted. `redact` removes:

- every secret `remember`ed: each org's client secret and refresh token (the auth layer
  remembers them when it is made; the CLI remembers every configured org's up front), and each
  access token granted, also as they look URL-encoded in a form;
- anything shaped like a Zoho token (`1000.<hex>.<hex>`), whoever's it is;
- the values of `Zoho-oauthtoken …`, `Bearer …`, and of the form or JSON fields
  `client_secret`, `refresh_token`, `access_token` (`name=…` and `"name": "…"`) and of a
  form's `code=…`.

`install_log_redaction` passes every log record (Python's and dlt's loggers alike, traceback
included) through it.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from contextlib import contextmanager
from typing import Any, Iterator, Optional, Set, TextIO
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words; the patterns still apply
_FIELDS = r"client_secret|refresh_token|access_token"
_PATTERNS = (
    (re.compile(r"\b1000\.[0-9a-f]{8,}\.[0-9a-f]{8,}\b", re.IGNORECASE), MASK),
    (
        re.compile(r"(Zoho-oauthtoken|Bearer)(\s+|%20|\+)[^\s\"',;&]+", re.IGNORECASE),
        r"\1\2" + MASK,
    ),
    (re.compile(rf"\b({_FIELDS}|code)=[^\s&\"',;]+", re.IGNORECASE), r"\1=" + MASK),
    (
        re.compile(rf"([\"']?\b(?:{_FIELDS})[\"']?\s*:\s*[\"']?)[^\s\"',;}}&]+", re.IGNORECASE),
        r"\1" + MASK,
    ),
)

_lock = threading.Lock()
_secrets: Set[str] = set()


def remember(*secrets: Optional[Any]) -> None:
    """Redact these values (and their URL-encoded forms) from now on."""
    values = {str(s) for s in secrets if s is not None and len(str(s)) >= MIN_SECRET_LENGTH}
    encoded = {f(v) for v in values for f in (quote_plus, quote)}
    with _lock:
        _secrets.update(values | encoded)


def redact(text: Any) -> str:
    """`text` with every remembered secret and every token-shaped value masked."""
    clean = str(text)
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)  # a secret holding another goes first
    for secret in known:
        if secret in clean:
            clean = clean.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        clean = pattern.sub(replacement, clean)
    return clean


def redacted_traceback(error: BaseException) -> str:
    """The traceback `error` would print, redacted."""
    return redact("".join(traceback.format_exception(error)))


class RedactingStream:
    """A text stream that redacts what is written to it, and is otherwise the stream it wraps."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding, ...
        return getattr(self._stream, name)


@contextmanager
def redacted_output() -> Iterator[None]:
    """Redact everything written to stdout and stderr (ours, dlt's, warnings) meanwhile."""
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(stdout), RedactingStream(stderr)  # type: ignore
    try:
        yield
    finally:
        sys.stdout, sys.stderr = stdout, stderr


def install_log_redaction() -> None:
    """Redact every log record when it is made: messages, tracebacks and stacks, of every
    logger (dlt's own handler included, which filters on other loggers would miss)."""
    make = logging.getLogRecordFactory()
    if getattr(make, "redacts", False):
        return

    def redacting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            record.msg, record.args = redact(record.getMessage()), ()
        except (TypeError, ValueError):  # a bad format: logging reports it as it would
            record.msg = redact(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(
                "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            )
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    redacting.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting)
