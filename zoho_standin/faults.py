"""Faults the stand-in injects on demand, so tests can meet what Zoho and networks do."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import List, Optional

# kind -> what the stand-in does instead of answering normally
FAULT_KINDS = (
    "429",  # HTTP 429 TOO_MANY_REQUESTS, no Retry-After (as Zoho usually answers)
    "429-retry-after",  # HTTP 429 with Retry-After: 1
    "429-credits",  # HTTP 429 with X-API-CREDITS-REMAINING: 0 (the daily allowance is spent)
    "500",  # HTTP 500 INTERNAL_ERROR
    "502-html",  # a proxy's HTML error page
    "drop",  # close the connection without answering
    "truncate",  # HTTP 200 whose JSON body is cut in half (Content-Length matches the cut)
    "html",  # HTTP 200 with an HTML page instead of JSON
    "403",  # HTTP 403 NO_PERMISSION
    "scope",  # HTTP 401 OAUTH_SCOPE_MISMATCH
    "expire-token",  # every access token issued so far expires before this call is answered
    "sleep",  # answer normally after `seconds`
)


@dataclass
class Fault:
    pattern: str
    kind: str
    times: Optional[int]  # None: for ever
    seconds: float = 0.0

    def matches(self, path: str) -> bool:
        return re.search(self.pattern, path) is not None


class Faults:
    """A list of faults; the first one matching a request's path is spent on it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: List[Fault] = []

    def add(self, pattern: str, kind: str, times: Optional[int] = 1, seconds: float = 0.0) -> None:
        """Inject `kind` on the next `times` requests whose path matches the regex `pattern`."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._faults.append(Fault(pattern, kind, times, seconds))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, path: str) -> Optional[Fault]:
        with self._lock:
            for fault in self._faults:
                if fault.matches(path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None
