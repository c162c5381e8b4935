"""The stand-in's HTTP plumbing: one request in, one answer out, with the server's faults,
latency, throttling and call accounting applied on the way."""

from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Dict, Optional
from urllib.parse import parse_qs, urlsplit

from zoho_standin.create import MODULE_PATH, answer_records
from zoho_standin.errors import ApiError
from zoho_standin.faults import (
    ERROR_ANSWERS,
    RESHAPES,
    THROTTLED_GRANT,
    THROTTLED_GRANT_LOCALISED,
    Fault,
    reshape,
)
from zoho_standin.oauth import TOKEN_PATH
from zoho_standin.restore import RESTORE_PATH, answer_restore
from zoho_standin.routes import route

if TYPE_CHECKING:
    from zoho_standin.server import StandinServer


class Handler(BaseHTTPRequestHandler):
    """Answers for `standin`, which `StandinServer.start` sets on a subclass."""

    standin: StandinServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once, no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- plumbing ------------------------------------------------------------------------------
    def _send(
        self,
        status: int,
        body: Optional[bytes],
        content_type: str = "application/json",
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Content-Length", "0")
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: Optional[Dict[str, str]] = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers=headers)

    def do_POST(self) -> None:  # noqa: N802
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if RESTORE_PATH.fullmatch(split.path):
            fault = self.standin.faults.take(split.path)
            if fault and self._inject(fault, split.path):
                return None
            return self._json(*answer_restore(self.standin, self.headers, raw))
        if MODULE_PATH.fullmatch(split.path):
            return self._records("POST", split.path, raw)
        if split.path != TOKEN_PATH:
            return self._json(404, ApiError(404, "INVALID_URL_PATTERN", "no such URL").body())
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        fault = self.standin.faults.take(split.path)
        kind = fault.kind if fault else None
        if kind == "token-echo":
            self.standin.count("fault")
            echo = f"invalid_code for {raw.decode()} ({' '.join(form.values())})"
            return self._json(200, {"error": echo})
        if kind in ("token-throttled", "token-throttled-200"):
            self.standin.count("fault")
            if kind == "token-throttled":
                return self._json(400, THROTTLED_GRANT)
            return self._json(200, THROTTLED_GRANT_LOCALISED)
        answer = self.standin.tokens.grant(form, self.standin.url, kind == "token-old-form")
        if "access_token" in answer:
            self.standin.count("token")
        self._json(200, answer)

    def do_PUT(self) -> None:  # noqa: N802
        split = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not MODULE_PATH.fullmatch(split.path):
            return self._json(404, ApiError(404, "INVALID_URL_PATTERN", "no such URL").body())
        return self._records("PUT", split.path, raw)

    def _records(self, method: str, path: str, raw: bytes) -> None:
        """Create or Update Records; a lost answer drops the connection once they are made."""
        fault = self.standin.faults.take(path)
        if fault and self._inject(fault, path):
            return None
        status, payload, lost = answer_records(self.standin, method, path, self.headers, raw)
        if lost:
            self.close_connection = True
            self.connection.close()
            return None
        return self._json(status, payload)

    def do_GET(self) -> None:  # noqa: N802
        standin = self.standin
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        standin.enter()
        try:
            if standin.latency:
                time.sleep(standin.latency)
            if self._still_throttled():
                return
            fault = standin.faults.take(split.path, split.query)
            if fault and self._inject(fault, split.path):
                return
            credits: Optional[int] = None
            try:
                standin.tokens.check(self.headers.get("Authorization"))
                credits = standin.spend_credit()
                name, status, payload = route(standin.org, split.path, query, self.headers)
                if fault is not None:
                    payload = reshape(fault, payload)
            except ApiError as error:
                name, status, payload = "error", error.status, error.body()
                if status == 429:
                    credits = 0
            standin.count(name, (name, self.path, dict(self.headers)), status)
            extra = {} if credits is None else {"X-API-CREDITS-REMAINING": str(credits)}
            if payload is None:
                self._send(status, None, headers=extra)
            else:
                self._json(status, payload, headers=extra)
        finally:
            standin.leave()

    # -- faults --------------------------------------------------------------------------------
    def _inject(self, fault: Fault, path: str) -> bool:
        """Apply a fault; True when the request has been answered (or dropped) by it."""
        kind = fault.kind
        if kind in RESHAPES:
            return False  # the answer is reshaped once it is made
        if kind == "sleep":
            time.sleep(fault.seconds)
            return False
        if kind == "expire-token":
            self.standin.tokens.expire_all()
            return False
        if kind == "purge-oldest":
            self._purge_oldest(fault.count)
            return False
        if kind == "new-deletion":
            module = (path.split("/") + ["", "", ""])[3]
            self.standin.org.delete(module, f"9{time.time_ns()}", datetime.now(UTC), "New", None)
            return False
        if kind == "edit-records":
            self.standin.org.live.edit_all((path.split("/") + ["", "", ""])[3], datetime.now(UTC))
            return False
        self.standin.count("fault")
        if kind in ERROR_ANSWERS:
            module = (path.split("/") + ["", "", ""])[3]
            error = ERROR_ANSWERS[kind].for_module(module)
            self._json(error.status, error.body())
        elif kind == "echo-authorization":
            header = self.headers.get("Authorization")
            error = ApiError(400, "INVALID_REQUEST", f"unexpected request; Authorization: {header}")
            self._json(error.status, error.body())
        elif kind in ("purge-parent", "restore-parent"):
            self._parent_leaves(path, kind)
        elif kind == "drop":
            self.close_connection = True
            self.connection.close()
        elif kind == "429-details":
            self.standin.throttle(fault.seconds or 1)
            self._too_many(fault.seconds or 1)
        elif kind.startswith("429"):
            headers = {"Retry-After": "1"} if kind == "429-retry-after" else {}
            if kind == "429-credits":
                headers["X-API-CREDITS-REMAINING"] = "0"
            error = ApiError(429, "TOO_MANY_REQUESTS", "too many requests")
            self._json(429, error.body(), headers=headers)
        elif kind == "204":
            self._send(204, None)
        elif kind == "502-html":
            self._send(502, b"<html><body>502 Bad Gateway</body></html>", "text/html")
        elif kind == "html":
            self._send(200, b"<html><body>Please sign in</body></html>", "text/html")
        elif kind == "truncate":
            self._send(200, b'{"data": [{"id": "4108', "application/json")
        return True

    def _still_throttled(self) -> bool:
        """Inside a `429-details` wait, every API call gets the 429 again (and is counted)."""
        remaining = self.standin.still_throttled()
        if remaining <= 0:
            return False
        self._too_many(remaining)
        return True

    def _too_many(self, wait: float) -> None:
        details = {"retry_after": math.ceil(wait), "limit": 100, "window": 60}
        self._json(429, ApiError(429, "TOO_MANY_REQUESTS", "too many requests", details).body())

    def _purge_oldest(self, count: int) -> None:
        org = self.standin.org
        for entry in list(org.in_bin(True)[:count]):
            org.purge(entry.module, entry.id, datetime.now(entry.deleted_time.tzinfo))

    def _parent_leaves(self, path: str, kind: str) -> None:
        org = self.standin.org
        match = re.search(r"/crm/v\d+/([^/]+)/deleted/([^/]+)/", path)
        entry = org.entry(match.group(1), match.group(2)) if match else None
        if entry is not None and entry.type == "recycle":
            if kind == "purge-parent":
                org.purge(entry.module, entry.id, datetime.now(UTC))
            else:
                org.restore(entry.module, entry.id)
        answer = ERROR_ANSWERS["404-gone" if kind == "purge-parent" else "400-invalid-id"]
        self._json(answer.status, answer.body())
