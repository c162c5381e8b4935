"""A Zoho CRM stand-in over real HTTP: OAuth token, deleted records, recycle bin, related records
of deleted records and the metadata endpoints, answering as Zoho's API pages describe.

Start it with `StandinServer(org).start()`; it listens on a free loopback port in a thread.
What it answers is in `routes` (GET), `oauth` (the token endpoint), `restore` (POST) and
`create` (POST and PUT of records); `handler` is the HTTP plumbing that applies `faults`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple

from zoho_standin.create import CreateDesk
from zoho_standin.errors import ApiError
from zoho_standin.faults import Faults
from zoho_standin.handler import Handler
from zoho_standin.oauth import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, TokenDesk
from zoho_standin.org import Org
from zoho_standin.restore import RestoreDesk

GATHER_WAIT = 2.0  # seconds an API call is held for `gather` calls in flight, at most

class StandinServer:
    """Serves one `Org` on 127.0.0.1. Counts calls, injects faults, adds latency on demand."""

    def __init__(
        self,
        org: Org,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        refresh_token: str = REFRESH_TOKEN,
        token_lifetime: int = 3600,
        latency: float = 0.0,
        daily_allowance: Optional[int] = None,
    ) -> None:
        self.org = org
        self.tokens = TokenDesk(client_id, client_secret, refresh_token, token_lifetime)
        self.latency = latency
        # API credits left today (None: no limit). Zoho sends X-API-CREDITS-REMAINING once
        # half the allowance is used, and answers 429 once it is spent.
        self.daily_allowance = daily_allowance
        self.credits_left = daily_allowance
        self.faults = Faults()
        self.restores = RestoreDesk()
        self.creates = CreateDesk()  # Create and Update Records (`POST`/`PUT /{module}`)
        self.calls: Counter[str] = Counter()  # route -> calls answered (API calls, not token)
        self.requests: List[Tuple[str, str, Dict[str, str]]] = []  # (route, path?query, headers)
        self.statuses: Counter[str] = Counter()  # "route status" -> API calls so answered
        self.in_flight = 0
        self.max_in_flight = 0
        # Hold each API call until this many have been in flight at once (0: never), so a test
        # can tell whether a client reaches that many whatever the machine's load; a call is let
        # go after GATHER_WAIT seconds without it (one made alone, or a client that cannot).
        self.gather = 0
        self.throttled_until = 0.0  # epoch seconds; API calls before it get a 429 (429-details)
        self._lock = threading.Lock()
        self._in_flight_changed = threading.Condition(self._lock)
        self._httpd: Optional[ThreadingHTTPServer] = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, port: int = 0) -> StandinServer:
        handler = type("Handler", (Handler,), {"standin": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def url(self) -> str:
        assert self._httpd, "start() the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- accounting ----------------------------------------------------------------------------
    def count(
        self,
        route: str,
        request: Optional[Tuple[str, str, Dict[str, str]]] = None,
        status: Optional[int] = None,
    ) -> None:
        """Count one call answered under `route` (and keep the API `request` and the `status`
        answered, when given)."""
        with self._lock:
            self.calls[route] += 1
            if request is not None:
                self.requests.append(request)
            if status is not None:
                self.statuses[f"{route} {status}"] += 1

    def enter(self) -> None:
        with self._in_flight_changed:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._in_flight_changed.notify_all()
            if self.gather:
                self._in_flight_changed.wait_for(
                    lambda: self.max_in_flight >= self.gather, GATHER_WAIT
                )

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def reset_counts(self) -> None:
        with self._lock:
            self.calls.clear()
            self.requests.clear()
            self.statuses.clear()
            self.max_in_flight = 0

    def api_calls(self) -> int:
        return sum(n for route, n in self.calls.items() if route != "token")

    def issued_tokens(self) -> List[str]:
        return self.tokens.issued()

    # -- limits --------------------------------------------------------------------------------
    def spend_credit(self) -> Optional[int]:
        """Count one API call against the daily allowance: the credits left to report, if
        Zoho would report them (None otherwise); raises 429 once the allowance is spent."""
        with self._lock:
            if self.credits_left is None or self.daily_allowance is None:
                return None
            if self.credits_left <= 0:
                raise ApiError(429, "TOO_MANY_REQUESTS", "the daily API limit is exceeded")
            self.credits_left -= 1
            half_used = self.credits_left <= self.daily_allowance / 2
            return self.credits_left if half_used else None

    def throttle(self, seconds: float) -> None:
        """Answer every API call with a 429 for `seconds` (the `429-details` fault)."""
        with self._lock:
            self.throttled_until = time.time() + seconds

    def still_throttled(self) -> float:
        """Seconds left of a `throttle` wait, counting this call as a fault; 0 outside one."""
        with self._lock:
            remaining = self.throttled_until - time.time()
            if remaining <= 0:
                return 0.0
            self.calls["fault"] += 1
            return remaining
