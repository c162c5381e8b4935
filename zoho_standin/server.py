"""A Zoho CRM stand-in over real HTTP: OAuth token, deleted records, recycle bin, related records
of deleted records and the metadata endpoints, answering as Zoho's API pages describe.

Start it with `StandinServer(org).start()`; it listens on a free loopback port in a thread.
"""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from zoho_standin.faults import (
    ERROR_ANSWERS,
    THROTTLED_GRANT,
    THROTTLED_GRANT_LOCALISED,
    Fault,
    Faults,
)
from zoho_standin.org import DeletedEntry, Org
from zoho_standin.restore import RESTORE_PATH, RestoreDesk, answer_restore

CLIENT_ID = "1000.STANDINCLIENT"
CLIENT_SECRET = "standin-client-secret-7f3a9c"
REFRESH_TOKEN = "1000.standin-refresh-token-51d2e8"
MAX_PER_PAGE = 200
MAX_DISCRETE_RECORDS = 2000  # `page` reaches only this far; beyond it only `page_token` does
MAX_FIELDS = 50


class ZohoError(Exception):
    """An error answer in Zoho's JSON shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Optional[dict] = None,
        envelope: Optional[str] = None,
    ):
        super().__init__(message)
        self.status, self.code, self.details = status, code, details or {}
        self.envelope = envelope  # None: one object; else the key of a list wrapping it

    def body(self) -> Dict[str, Any]:
        error = {
            "code": self.code,
            "details": self.details,
            "message": str(self),
            "status": "error",
        }
        return {self.envelope: [error]} if self.envelope else error


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
        self.client_id, self.client_secret, self.refresh_token = (
            client_id,
            client_secret,
            refresh_token,
        )
        self.token_lifetime = token_lifetime
        self.latency = latency
        # API credits left today (None: no limit). Zoho sends X-API-CREDITS-REMAINING once
        # half the allowance is used, and answers 429 once it is spent.
        self.daily_allowance = daily_allowance
        self.credits_left = daily_allowance
        self.faults = Faults()
        self.restores = RestoreDesk()
        self.calls: Counter[str] = Counter()  # route -> calls answered (API calls, not token)
        self.requests: List[Tuple[str, str, Dict[str, str]]] = []  # (route, path?query, headers)
        self.in_flight = 0
        self.max_in_flight = 0
        self.throttled_until = 0.0  # epoch seconds; API calls before it get a 429 (429-details)
        self._tokens: Dict[str, float] = {}  # access token -> expiry (epoch seconds)
        self._lock = threading.Lock()
        self._httpd: Optional[ThreadingHTTPServer] = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, port: int = 0) -> StandinServer:
        handler = type("Handler", (_Handler,), {"standin": self})
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
    def reset_counts(self) -> None:
        with self._lock:
            self.calls.clear()
            self.requests.clear()
            self.max_in_flight = 0

    def api_calls(self) -> int:
        return sum(n for route, n in self.calls.items() if route != "token")

    def issued_tokens(self) -> List[str]:
        with self._lock:
            return list(self._tokens)

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens = {token: 0.0 for token in self._tokens}

    # -- OAuth ---------------------------------------------------------------------------------
    def grant(self, form: Dict[str, str], old_form: bool = False) -> Dict[str, Any]:
        """A refresh-token grant; `old_form` answers as Zoho once did (`expires_in` in ms)."""
        if form.get("grant_type") != "refresh_token":
            return {"error": "unsupported_grant_type"}
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return {"error": "invalid_client"}
        if form.get("refresh_token") != self.refresh_token:
            return {"error": "invalid_code"}
        token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
        with self._lock:
            self._tokens[token] = time.time() + self.token_lifetime
            self.calls["token"] += 1
        answer: Dict[str, Any] = {
            "access_token": token,
            "api_domain": self.url,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
        }
        if old_form:
            answer.update(expires_in_sec=self.token_lifetime, expires_in=self.token_lifetime * 1000)
        return answer

    def spend_credit(self) -> Optional[int]:
        """Count one API call against the daily allowance: the credits left to report, if
        Zoho would report them (None otherwise); raises 429 once the allowance is spent."""
        with self._lock:
            if self.credits_left is None or self.daily_allowance is None:
                return None
            if self.credits_left <= 0:
                raise ZohoError(429, "TOO_MANY_REQUESTS", "the daily API limit is exceeded")
            self.credits_left -= 1
            half_used = self.credits_left <= self.daily_allowance / 2
            return self.credits_left if half_used else None

    def check_token(self, header: Optional[str]) -> None:
        token = (header or "").removeprefix("Zoho-oauthtoken ").strip()
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None or expiry <= time.time():
            raise ZohoError(401, "INVALID_TOKEN", "invalid oauth token")


def _error(status: int, code: str, message: str) -> ZohoError:
    return ZohoError(status, code, message)


def _page(
    items: List[Any], query: Dict[str, str], more_key: str = "data"
) -> Tuple[List[Any], Dict]:
    """Slice `items` by `page`/`per_page` or `page_token`, Zoho style."""
    try:
        per_page = int(query.get("per_page", MAX_PER_PAGE))
        page = int(query.get("page", 1))
    except ValueError:
        raise _error(400, "INVALID_DATA", "page and per_page take positive integers") from None
    if not 1 <= per_page <= MAX_PER_PAGE or page < 1:
        raise _error(400, "INVALID_DATA", f"per_page must be 1..{MAX_PER_PAGE}, page positive")
    token = query.get("page_token")
    if token:
        if "page" in query:
            raise _error(400, "INVALID_DATA", "page_token cannot be combined with page")
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().split(":")[1])
        except (ValueError, IndexError):
            raise _error(400, "INVALID_DATA", "invalid page_token") from None
    else:
        start = (page - 1) * per_page
        if start + per_page > MAX_DISCRETE_RECORDS:
            raise _error(
                400,
                "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                "cannot fetch more than 2000 records with page; use page_token",
            )
    chunk = items[start : start + per_page]
    more = start + per_page < len(items)
    next_token = (
        base64.urlsafe_b64encode(f"tok:{start + per_page}".encode()).decode() if more else None
    )
    info = {
        "per_page": per_page,
        "count": len(chunk),
        "page": start // per_page + 1,
        "more_records": more,
        "next_page_token": next_token,
        "previous_page_token": None,
        "page_token_expiry": None,
    }
    return chunk, info


def _parse_time(value: str, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _error(400, "INVALID_DATA", f"invalid {what}: {value}") from None
    if parsed.tzinfo is None:
        raise _error(400, "INVALID_DATA", f"{what} needs an offset: {value}")
    return parsed


class _Handler(BaseHTTPRequestHandler):
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

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode())

    def do_POST(self) -> None:  # noqa: N802
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if RESTORE_PATH.fullmatch(split.path):
            fault = self.standin.faults.take(split.path)
            if fault and self._inject(fault, split.path):
                return None
            return self._json(*answer_restore(self.standin, self.headers, raw))
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if split.path != "/oauth/v2/token":
            return self._json(404, _error(404, "INVALID_URL_PATTERN", "no such URL").body())
        fault = self.standin.faults.take(split.path)
        kind = fault.kind if fault else None
        if kind in ("token-throttled", "token-throttled-200"):
            with self.standin._lock:
                self.standin.calls["fault"] += 1
            if kind == "token-throttled":
                return self._json(400, THROTTLED_GRANT)
            return self._json(200, THROTTLED_GRANT_LOCALISED)
        # Zoho answers a refused grant with HTTP 200 and an "error" key.
        self._json(200, self.standin.grant(form, old_form=kind == "token-old-form"))

    def do_GET(self) -> None:  # noqa: N802
        standin = self.standin
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        with standin._lock:
            standin.in_flight += 1
            standin.max_in_flight = max(standin.max_in_flight, standin.in_flight)
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
                standin.check_token(self.headers.get("Authorization"))
                credits = standin.spend_credit()
                route, status, payload = self._route(split.path, query)
            except ZohoError as error:
                route, status, payload = "error", error.status, error.body()
                if status == 429:
                    credits = 0
            with standin._lock:
                standin.calls[route] += 1
                standin.requests.append((route, self.path, dict(self.headers)))
            extra = {} if credits is None else {"X-API-CREDITS-REMAINING": str(credits)}
            if payload is None:
                self._send(status, None, headers=extra)
            else:
                self._send(status, json.dumps(payload).encode(), headers=extra)
        finally:
            with standin._lock:
                standin.in_flight -= 1

    def _inject(self, fault: Fault, path: str) -> bool:
        """Apply a fault; True when the request has been answered (or dropped) by it."""
        kind = fault.kind
        if kind == "sleep":
            time.sleep(fault.seconds)
            return False
        if kind == "expire-token":
            self.standin.expire_tokens()
            return False
        if kind == "purge-oldest":
            self._purge_oldest(fault.count)
            return False
        with self.standin._lock:
            self.standin.calls["fault"] += 1
        if kind in ERROR_ANSWERS:
            answer = ERROR_ANSWERS[kind]
            module = (path.split("/") + ["", "", ""])[3]
            details = json.loads(json.dumps(answer.details).replace("{module}", module))
            error = ZohoError(answer.status, answer.code, answer.message, details, answer.envelope)
            self._json(error.status, error.body())
        elif kind in ("purge-parent", "restore-parent"):
            self._parent_leaves(path, kind)
        elif kind == "drop":
            self.close_connection = True
            self.connection.close()
        elif kind == "429-details":
            with self.standin._lock:
                self.standin.throttled_until = time.time() + (fault.seconds or 1)
            self._too_many(fault.seconds or 1)
        elif kind.startswith("429"):
            headers = {"Retry-After": "1"} if kind == "429-retry-after" else {}
            if kind == "429-credits":
                headers["X-API-CREDITS-REMAINING"] = "0"
            body = json.dumps(_error(429, "TOO_MANY_REQUESTS", "too many requests").body())
            self._send(429, body.encode(), headers=headers)
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
        with self.standin._lock:
            remaining = self.standin.throttled_until - time.time()
            if remaining <= 0:
                return False
            self.standin.calls["fault"] += 1
        self._too_many(remaining)
        return True

    def _too_many(self, wait: float) -> None:
        details = {"retry_after": math.ceil(wait), "limit": 100, "window": 60}
        self._json(429, ZohoError(429, "TOO_MANY_REQUESTS", "too many requests", details).body())

    def _purge_oldest(self, count: int) -> None:
        org = self.standin.org
        for entry in list(org.in_bin(True)[:count]):
            org.purge(entry.module, entry.id, datetime.now(entry.deleted_time.tzinfo))

    def _parent_leaves(self, path: str, kind: str) -> None:
        match = re.search(r"/crm/v\d+/([^/]+)/deleted/([^/]+)/", path)
        entry = self.standin.org.entry(match.group(1), match.group(2)) if match else None
        if entry is not None and entry.type == "recycle":
            if kind == "purge-parent":
                self.standin.org.purge(entry.module, entry.id, datetime.now(UTC))
            else:
                self.standin.org.restore(entry.module, entry.id)
        answer = ERROR_ANSWERS["404-gone" if kind == "purge-parent" else "400-invalid-id"]
        self._json(answer.status, ZohoError(*answer[:4]).body())

    # -- routes --------------------------------------------------------------------------------
    def _route(self, path: str, query: Dict[str, str]) -> Tuple[str, int, Optional[Dict]]:
        match = re.fullmatch(r"/crm/v\d+/(.+)", path)
        if not match:
            raise _error(404, "INVALID_URL_PATTERN", "Please check if the URL is correct")
        parts = match.group(1).split("/")
        if parts[0] == "settings":
            return self._settings(parts[1:], query)
        if len(parts) == 2 and parts[1] == "deleted":
            return ("deleted", *self._deleted(parts[0], query))
        if len(parts) == 4 and parts[1] == "deleted":
            return ("related", *self._related(parts[0], parts[2], parts[3], query))
        raise _error(404, "INVALID_URL_PATTERN", "Please check if the URL is correct")

    def _module(self, name: str) -> Any:
        module = self.standin.org.modules.get(name)
        if module is None or not module.api_supported:
            raise _error(400, "INVALID_MODULE", "the module name given seems to be invalid")
        return module

    def _deleted(self, module: str, query: Dict[str, str]) -> Tuple[int, Optional[Dict]]:
        """Zoho's v8 examples answer this endpoint's 400s wrapped in a list under `data`."""
        try:
            self._module(module)
        except ZohoError as error:
            error.envelope = "data"
            raise
        kind = query.get("type", "all")
        if kind not in ("all", "recycle", "permanent"):
            raise ZohoError(
                400,
                "PATTERN_NOT_MATCHED",
                "Please check whether the input values are correct",
                envelope="data",
            )
        since_header = self.headers.get("If-Modified-Since")
        since = _parse_time(since_header, "If-Modified-Since") if since_header else None
        entries = self.standin.org.newest_first(module, since)
        if kind != "all":
            entries = [e for e in entries if e.type == kind]
        if not entries:
            return (304, None) if since else (204, None)
        chunk, info = _page(entries, query)
        return 200, {"data": [e.deleted_json() for e in chunk], "info": info}

    def _related(
        self, module: str, record_id: str, relation: str, query: Dict[str, str]
    ) -> Tuple[int, Optional[Dict]]:
        meta = self._module(module)
        related_list = meta.related_lists.get(relation)
        if related_list is None:
            raise _error(400, "INVALID_DATA", "the relation name given seems to be invalid")
        if related_list.type == "multiselectlookup":
            raise _error(400, "NOT_SUPPORTED", "multiselect lookup relations are not supported")
        fields = [f for f in query.get("fields", "").split(",") if f]
        if not fields:
            raise _error(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing")
        if len(fields) > MAX_FIELDS:
            raise _error(400, "LIMIT_EXCEEDED", f"at most {MAX_FIELDS} fields")
        entry = self.standin.org.entry(module, record_id)
        if entry is None or entry.type != "recycle":
            return 204, None
        rows = self.standin.org.related.get((module, record_id, relation), [])
        if not rows:
            return 204, None
        chunk, info = _page(rows, query)
        data = [{"id": r["id"], **{f: r[f] for f in fields if f in r}} for r in chunk]
        return 200, {"data": data, "info": info}

    def _settings(self, parts: List[str], query: Dict[str, str]) -> Tuple[str, int, Optional[Dict]]:
        org = self.standin.org
        if parts == ["modules"]:
            modules = [
                {
                    "api_name": m.api_name,
                    "module_name": m.api_name,
                    "id": m.id,
                    "api_supported": m.api_supported,
                    "deletable": m.deletable,
                    "generated_type": m.generated_type,
                }
                for m in org.modules.values()
            ]
            return "modules", 200, {"modules": modules}
        if parts == ["related_lists"]:
            module = self._module(query.get("module", ""))
            lists = [
                {
                    "api_name": r.api_name,
                    "name": r.api_name,
                    "module": {"api_name": r.module},
                    "type": r.type,
                    "href": f"{module.api_name}/{{ID}}/{r.api_name}",
                }
                for r in module.related_lists.values()
            ]
            return "related_lists", 200, {"related_lists": lists}
        if parts == ["fields"]:
            name = query.get("module", "")
            names = {"id"}
            for m in org.modules.values():
                for r in m.related_lists.values():
                    if r.module == name:
                        names.update(r.fields)
            if len(names) == 1 and name not in org.modules:
                raise _error(400, "INVALID_MODULE", "the module name given seems to be invalid")
            fields = [{"api_name": n, "data_type": "text"} for n in sorted(names)]
            return "fields", 200, {"fields": fields}
        if parts and parts[0] == "recycle_bin":
            return ("recycle_bin", *self._recycle_bin(parts[1:], query))
        raise _error(404, "INVALID_URL_PATTERN", "Please check if the URL is correct")

    def _recycle_bin(self, parts: List[str], query: Dict[str, str]) -> Tuple[int, Optional[Dict]]:
        org = self.standin.org
        sort_by = query.get("sort_by", "deleted_time")
        if sort_by not in ("deleted_time", "display_name", "deleted_by"):
            raise _error(400, "INVALID_DATA", f"invalid sort_by {sort_by}")
        descending = query.get("sort_order", "desc") == "desc"
        if parts:
            entries = [e for e in org.in_bin(not descending) if e.id == parts[0]]
        elif query.get("ids"):
            wanted = set(query["ids"].split(","))
            entries = [e for e in org.in_bin(not descending) if e.id in wanted]
        elif query.get("filters"):
            where = (query["filters"], _bin_filter(query["filters"]))
            entries = org.in_bin(not descending, where)
        else:
            entries = org.in_bin(not descending)
        if sort_by != "deleted_time":
            entries = sorted(entries, key=_sort_key(sort_by), reverse=descending)
        if not entries:
            return 204, None
        chunk, info = _page(entries, query)
        module_ids = {name: m.id for name, m in org.modules.items()}
        return 200, {"recycle_bin": [e.bin_json(module_ids[e.module]) for e in chunk], "info": info}


def _sort_key(sort_by: str) -> Any:
    if sort_by == "deleted_time":
        return lambda e: (e.deleted_time.timestamp(), e.id)
    if sort_by == "display_name":
        return lambda e: (e.display_name or "", e.id)
    return lambda e: (e.deleted_by.name if e.deleted_by else "", e.id)


def _bin_filter(raw: str) -> Any:
    """Compile the recycle bin's `filters` JSON into a predicate on entries."""
    try:
        spec = json.loads(raw)
        group = spec["group"] if "group" in spec else [spec]
    except (ValueError, KeyError, TypeError):
        raise _error(400, "INVALID_DATA", "filters must be JSON with a group") from None
    if spec.get("group_operator", "AND").upper() != "AND":
        raise ZohoError(403, "INVALID_DATA", "The given group operator not supported")
    checks = []
    for cond in group:
        field, comparator, value = cond["field"]["api_name"], cond["comparator"], cond["value"]
        if field == "deleted_time":
            instant = _parse_time(value, "deleted_time").timestamp()
            ops = {
                "greater_than": lambda e, v=instant: e.deleted_time.timestamp() > v,
                "less_than": lambda e, v=instant: e.deleted_time.timestamp() < v,
                "equal": lambda e, v=instant: e.deleted_time.timestamp() == v,
                "not_equal": lambda e, v=instant: e.deleted_time.timestamp() != v,
            }
        elif field == "module":
            ops = {
                "equal": lambda e, v=value: e.module == v,
                "not_equal": lambda e, v=value: e.module != v,
            }
        elif field == "display_name":
            ops = {
                "equal": lambda e, v=value: e.display_name == v,
                "contains": lambda e, v=value: v in (e.display_name or ""),
            }
        else:
            raise ZohoError(403, "INVALID_DATA", "The given api_name seems to be invalid")
        if comparator not in ops:
            raise _error(400, "INVALID_DATA", f"comparator {comparator} not valid for {field}")
        checks.append(ops[comparator])

    def predicate(entry: DeletedEntry) -> bool:
        return all(check(entry) for check in checks)

    return predicate
