"""HTTP to Zoho: pooled connections, retries as Zoho needs them, and each body parsed once.

Retries go through tenacity's public API; attempts, back-off, the longest wait and the timeout
follow dlt's `[runtime]` config (`request_max_attempts`, `request_backoff_factor`,
`request_max_retry_delay`, `request_timeout`), as dlt's own requests client does.
"""

from __future__ import annotations

import threading
import time
from email.utils import parsedate_to_datetime
from typing import Any, Dict, NamedTuple, Optional

from dlt.common.configuration import resolve_configuration
from dlt.common.configuration.specs import RuntimeConfiguration
from dlt.sources.helpers.requests import ChunkedEncodingError, Response, Session
from requests.adapters import HTTPAdapter
from requests.exceptions import ConnectionError, Timeout
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from tenacity.wait import wait_base

NO_DATA = (204, 304)  # "nothing there" / "nothing newer than If-Modified-Since"
CREDITS_HEADER = "X-API-CREDITS-REMAINING"
RETRIED_EXCEPTIONS = (ConnectionError, Timeout, ChunkedEncodingError)


class Reply(NamedTuple):
    """An HTTP answer and its body: parsed JSON, or None (no body, or not JSON)."""

    response: Response
    body: Any

    @property
    def status(self) -> int:
        return self.response.status_code


class RetryingHttp:
    """Requests over a pool of `max_connections` connections, retried on 5xx, on a 429 that
    clears in seconds (not once the day's credits are spent), on resets and timeouts, and on a
    success whose body is not JSON (cut short, or a proxy's HTML page).

    A retry waits what the answer asks (`Retry-After`, or a 429's `details.retry_after` in its
    body), else dlt's exponential back-off; at most `request_max_retry_delay`, plus random
    jitter up to one back-off factor so parallel threads do not retry in lock-step. When the
    attempts are spent the last answer is returned (or its exception raised). Thread-safe: each
    thread has its own session over the shared pool.
    """

    def __init__(self, max_connections: int) -> None:
        runtime = resolve_configuration(RuntimeConfiguration())
        self._timeout = runtime.request_timeout
        self._adapter = HTTPAdapter(pool_maxsize=max_connections)
        self._local = threading.local()
        backoff, max_delay = runtime.request_backoff_factor, runtime.request_max_retry_delay
        retrying = Retrying(
            retry=retry_if_exception_type(RETRIED_EXCEPTIONS) | retry_if_result(retryable),
            wait=wait_asked(wait_exponential(multiplier=backoff, max=max_delay), max_delay)
            + wait_random(0, backoff),
            stop=stop_after_attempt(runtime.request_max_attempts),
            reraise=True,
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )
        self._send = retrying.wraps(self._attempt)

    def request(self, method: str, url: str, **kwargs: Any) -> Reply:
        """`requests`' `request(method, url, **kwargs)`, retried; the answer with its body."""
        return self._send(method, url, **kwargs)  # type: ignore[no-any-return]

    def request_once(self, method: str, url: str, **kwargs: Any) -> Reply:
        """One attempt, never retried: for a call that is not safe to repeat (Create Records,
        whose lost answer may hide records it made)."""
        return self._attempt(method, url, **kwargs)

    def _attempt(self, method: str, url: str, **kwargs: Any) -> Reply:
        response = self._session().request(method, url, timeout=self._timeout, **kwargs)
        return Reply(response, _json(response))

    def _session(self) -> Session:
        session: Optional[Session] = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = Session(raise_for_status=False)
            session.mount("http://", self._adapter)
            session.mount("https://", self._adapter)
        return session


def _json(response: Response) -> Any:
    if response.status_code in NO_DATA or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def credits_spent(response: Response) -> bool:
    """A 429 because the org's rolling 24-hour API credits are gone: retrying cannot help."""
    return response.status_code == 429 and response.headers.get(CREDITS_HEADER, "").strip() == "0"


def retryable(reply: Reply) -> bool:
    """Whether an answer is worth asking again (see `RetryingHttp`)."""
    status = reply.status
    if status == 429:
        return not credits_spent(reply.response)
    if status >= 500:
        return status < 600
    return status < 400 and status not in NO_DATA and reply.body is None


def zoho_error(body: Any) -> Optional[Dict[str, Any]]:
    """Zoho's error object in either of its envelopes, or None.

    The same endpoint answers some errors as one object (`{"code": ..., "message": ...}`) and
    others wrapped in a list, under `data` or under the endpoint's own key (`recycle_bin`):
    `{"data": [{"code": ..., "status": "error", ...}]}`. The first error in the list is Zoho's
    answer for the call (a GET asks one thing).
    """
    if not isinstance(body, dict):
        return None
    if body.get("code"):
        return body
    wrapped = [v for value in body.values() if isinstance(value, list) for v in value]
    errors = [v for v in wrapped if isinstance(v, dict) and v.get("code")]
    return next((e for e in errors if e.get("status", "error") == "error"), None)


def asked_wait(reply: Reply) -> Optional[float]:
    """Seconds a 429 or 503 asks to wait: its `Retry-After` header (seconds or an HTTP date),
    else a 429's `details.retry_after` in its body; None when it asks nothing."""
    header = reply.response.headers.get("Retry-After", "").strip()
    if header:
        return _seconds(header)
    if reply.status != 429:
        return None
    details = (zoho_error(reply.body) or {}).get("details")
    wait = details.get("retry_after") if isinstance(details, dict) else None
    try:
        return float(wait) if wait is not None and float(wait) > 0 else None
    except (TypeError, ValueError):
        return None


def _seconds(retry_after: str) -> Optional[float]:
    if retry_after.isdigit():
        seconds = float(retry_after)
    else:
        try:
            seconds = parsedate_to_datetime(retry_after).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return seconds if seconds > 0 else None


class wait_asked(wait_base):  # noqa: N801 - named as tenacity's waits are
    """Wait what the answer asks (`asked_wait`), at most `max_delay`; otherwise what
    `fallback` (exponential back-off) says. Combines with tenacity's waits by `+`."""

    def __init__(self, fallback: wait_base, max_delay: float) -> None:
        self.fallback, self.max_delay = fallback, max_delay

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        reply = None if outcome is None or outcome.failed else outcome.result()
        wait = asked_wait(reply) if isinstance(reply, Reply) else None
        if wait is None:
            return float(self.fallback(retry_state))
        return min(wait, self.max_delay)
