"""Faults the stand-in injects on demand, so tests can meet what Zoho and networks do.

A fault matches a request's path by regex (`/crm/v8/Leads/deleted$`,
`/Leads/deleted/\\d+/Campaigns`, `/oauth/v2/token`), and optionally its query string by another
(`(^|&)page=2(&|$)`), and is spent on the next `times` requests it matches. What real Zoho
does beyond its API pages is in `../shared/zoho-docs/README.md` ("What real Zoho does beyond
the pages"); the kinds below serve each of those shapes.
"""

from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from zoho_standin.errors import ApiError

# Zoho's error answers, kind -> answer. `{module}` in details is the path's module
# (`ApiError.for_module`).
ERROR_ANSWERS = {
    "500": ApiError(500, "INTERNAL_ERROR", "Internal Server Error", {}),
    # A token (or user) that may not read the module; the old single-object shape.
    "403": ApiError(403, "NO_PERMISSION", "permission denied to read", {}),
    # The same with the permissions Zoho says are missing (v8 OpenAPI example).
    "403-permissions": ApiError(
        403,
        "NO_PERMISSION",
        "permission denied",
        {"permissions": ["Crm_Implied_View_{module}"]},
    ),
    # The same wrapped in a list under `data`, as Zoho's v8 examples show for /deleted.
    "403-wrapped": ApiError(
        403,
        "NO_PERMISSION",
        "permission denied",
        {"permissions": ["Crm_Implied_View_{module}"]},
        "data",
    ),
    # Wrapped under the endpoint's own key, as the recycle bin endpoint does.
    "403-wrapped-bin": ApiError(403, "NO_PERMISSION", "permission denied", {}, "recycle_bin"),
    # NO_PERMISSION as HTTP 400, as some clients meet it.
    "400-no-permission": ApiError(400, "NO_PERMISSION", "permission denied", {}),
    # 400 AUTHORIZATION_FAILED: the user's profile may not do this.
    "400-authorization": ApiError(
        400, "AUTHORIZATION_FAILED", "User does not have sufficient privilege", {}
    ),
    # 401 OAUTH_SCOPE_MISMATCH: the token lacks the scope.
    "scope": ApiError(401, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope", {}),
    # Related records of a parent that has left the bin (purged, or restored).
    "404-gone": ApiError(404, "INVALID_DATA", "The record does not exist", {}),
    "400-invalid-id": ApiError(
        400, "INVALID_DATA", "Given ID of the record seems to be invalid", {}
    ),
    # A `page_token` Zoho no longer takes (they live 24 hours), as a pass resumed a day later
    # meets it. Zoho's pages do not show this answer; its shape here is an assumption.
    "400-page-token-expired": ApiError(
        400, "INVALID_DATA", "the page token has expired", {"param_name": "page_token"}
    ),
    # An unknown module, wrapped under `data` as Zoho's v8 examples show for /deleted.
    "400-invalid-module-wrapped": ApiError(
        400, "INVALID_MODULE", "the module name given seems to be invalid", {}, "data"
    ),
}

# Answers of the OAuth token endpoint (match the path /oauth/v2/token).
THROTTLED_GRANT = {
    "error_description": "You have made too many requests continuously. Please try again "
    "after some time.",
    "error": "Access Denied",
    "status": "failure",
}
THROTTLED_GRANT_LOCALISED = {
    "error_description": "Vous avez effectué trop de demandes en continu. Veuillez réessayer "
    "plus tard.",
    "error": "Accès refusé",
    "status": "failure",
}

# Answers Zoho sends malformed: the normal answer, reshaped (see `reshape`).
RESHAPES = (
    # the entry whose id is `record` (in `data` or `recycle_bin`) gets `field` set to `value`,
    # or loses it when no `value` is given: e.g. deleted_time "yesterday", 1700000000 or None,
    # deleted_by "Amy", module "Leads", or no id
    "corrupt",
    "no-info",  # the list answers without its `info` block
    "info-not-object",  # `info` is a string
    "no-more-records",  # `info` without `more_records`
    "data-not-list",  # the records' list (`data`, `recycle_bin`) is an object instead
    "entry-not-object",  # the entry whose id is `record` is only its id, a string
)
REMOVE = object()  # `corrupt` without a value: the field is left out

# kind -> what the stand-in does instead of answering normally
FAULT_KINDS = (
    *ERROR_ANSWERS,  # each answers its error, see ERROR_ANSWERS above
    "429",  # HTTP 429 TOO_MANY_REQUESTS, no Retry-After (as Zoho usually answers)
    "429-retry-after",  # HTTP 429 with Retry-After: 1
    "429-credits",  # HTTP 429 with X-API-CREDITS-REMAINING: 0 (the daily allowance is spent)
    # HTTP 429 whose wait is only in the body, `details.retry_after` (`seconds`, default 1):
    # every API call until that wait is over is answered the same, with what remains of it.
    "429-details",
    "204",  # HTTP 204 with an empty body and no content type
    "502-html",  # a proxy's HTML error page
    "drop",  # close the connection without answering
    "truncate",  # HTTP 200 whose JSON body is cut in half (Content-Length matches the cut)
    "html",  # HTTP 200 with an HTML page instead of JSON
    "expire-token",  # every access token issued so far expires before this call is answered
    "sleep",  # answer normally after `seconds`
    # The recycle bin's `count` oldest entries are purged (Zoho empties the bin) just before
    # this call is answered, so a listing paged oldest first shifts under the client.
    "purge-oldest",
    # The parent of a related-records path (`/{module}/deleted/{id}/{list}`) leaves the bin
    # just before the call, and Zoho answers as it does then: purged -> 404 INVALID_DATA "The
    # record does not exist"; restored -> 400 INVALID_DATA "Given ID ... seems to be invalid".
    "purge-parent",
    "restore-parent",
    # Token endpoint: refresh-token grants throttled, HTTP 400 (English) or HTTP 200 (texts
    # localised); and a grant answered in Zoho's older form (`expires_in_sec` in seconds
    # beside `expires_in` in milliseconds).
    "token-throttled",
    "token-throttled-200",
    "token-old-form",
    # Answers that echo the request, as some servers and proxies do: the token endpoint
    # refuses the grant (`invalid_code`) quoting the form it was sent, secrets and all, as is
    # and URL-decoded; an API call is refused (400 INVALID_REQUEST) quoting its Authorization
    # header.
    "token-echo",
    "echo-authorization",
    # A record of the path's module is deleted just before this call is answered: a listing
    # paged newest first shifts down by one, so this page repeats the last entry of the one
    # before (as Zoho's does when users delete while a run pages).
    "new-deletion",
    *RESHAPES,
    # Every live record of the path's module is edited (`Last_Name` and `Modified_Time`) just
    # before this call is answered, as when users edit while a run reads field groups.
    "edit-records",
)


@dataclass
class Fault:
    pattern: str
    kind: str
    times: Optional[int]  # None: for ever
    seconds: float = 0.0
    count: int = 1
    query: Optional[str] = None  # a regex the query string must match too
    record: Optional[str] = None  # `corrupt`: the entry's id
    field: Optional[str] = None  # `corrupt`: the field
    value: Any = REMOVE  # `corrupt`: its value (REMOVE: left out)

    def matches(self, path: str, query: str = "") -> bool:
        if self.query is not None and re.search(self.query, query) is None:
            return False
        return re.search(self.pattern, path) is not None


class Faults:
    """A list of faults; the first one matching a request's path is spent on it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: List[Fault] = []

    def add(
        self,
        pattern: str,
        kind: str,
        times: Optional[int] = 1,
        seconds: float = 0.0,
        count: int = 1,
        query: Optional[str] = None,
        record: Optional[str] = None,
        field: Optional[str] = None,
        value: Any = REMOVE,
    ) -> None:
        """Inject `kind` on the next `times` requests whose path matches the regex `pattern`
        (and whose query string matches `query`, when given); `record`, `field` and `value`
        say what `corrupt` changes."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if kind == "corrupt" and not (record and field):
            raise ValueError("a corrupt fault needs the record and the field to change")
        fault = Fault(pattern, kind, times, seconds, count, query, record, field, value)
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, path: str, query: str = "") -> Optional[Fault]:
        with self._lock:
            for fault in self._faults:
                if fault.matches(path, query):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None


def reshape(fault: Fault, payload: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """A list answer as a `RESHAPES` fault makes it (other answers unchanged)."""
    listed = next((k for k in ("data", "recycle_bin") if k in (payload or {})), None)
    if payload is None or listed is None:
        return payload
    payload = copy.deepcopy(payload)
    if fault.kind == "corrupt":
        for entry in payload[listed]:
            if entry.get("id") == fault.record:
                entry.pop(fault.field, None)
                if fault.value is not REMOVE:
                    entry[fault.field] = fault.value
    elif fault.kind == "no-info":
        payload.pop("info", None)
    elif fault.kind == "info-not-object":
        payload["info"] = "more records follow"
    elif fault.kind == "no-more-records":
        payload.get("info", {}).pop("more_records", None)
    elif fault.kind == "entry-not-object":
        payload[listed] = [e if e.get("id") != fault.record else e["id"] for e in payload[listed]]
    elif fault.kind == "data-not-list":
        payload[listed] = {"count": len(payload[listed])}
    return payload
