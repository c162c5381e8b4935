"""The stand-in's `POST /crm/{version}/settings/recycle_bin/actions/restore`, by ids.

As Zoho's page describes it: at most 200 ids a call; 200 when every id was restored
(`SUCCESS`), 202 when the records plus their children exceed `schedule_over` (`SCHEDULED`: Zoho
restores them in the background; here at once), 207 when some ids were not in the bin
(`INVALID_DATA` for those); 401 `OAUTH_SCOPE_MISMATCH` for a token without the scope.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Tuple

from zoho_standin.errors import ApiError, json_body
from zoho_standin.org import Org

if TYPE_CHECKING:
    from zoho_standin.server import StandinServer

RESTORE_PATH = re.compile(r"/crm/v\d+/settings/recycle_bin/actions/restore")
MAX_IDS = 200
INVALID_ID = "the id given seems to be invalid"
SCHEDULED = "record has been scheduled for restoration"


@dataclass
class RestoreDesk:
    """What the restore endpoint does; tests change it to meet Zoho's other answers."""

    scope_granted: bool = True
    schedule_over: int = 1000  # records plus their children above which Zoho schedules
    calls: List[List[str]] = field(default_factory=list)  # the ids of each call answered

    def answer(self, org: Org, body: Any) -> Tuple[int, Dict[str, Any]]:
        if not self.scope_granted:
            raise ApiError(401, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL")
        fields = set(body) if isinstance(body, dict) else set()
        given = {"ids", "filters", "restore_all_records"} & fields
        if len(given) > 1:
            raise ApiError(400, "AMBIGUITY_DURING_PROCESSING", "give one of ids, filters, ...")
        if given != {"ids"}:
            raise ApiError(400, "EXPECTED_FIELD_MISSING", "ids expected", {"api_name": "ids"})
        ids = body["ids"]
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise ApiError(400, "INVALID_DATA", "ids must be a list of record ids as strings")
        if len(ids) > MAX_IDS:
            raise ApiError(400, "LIMIT_EXCEEDED", f"at most {MAX_IDS} ids per call")
        with org.lock:
            binned = {e.id: e for e in org.in_bin(True) if e.id in set(ids)}
            children = sum(len(rows) for (_, rid, _), rows in org.related.items() if rid in binned)
            scheduled = len(binned) + children > self.schedule_over
            done = ("SCHEDULED", SCHEDULED) if scheduled else ("SUCCESS", "record restored")
            results = []
            for rid in ids:
                entry = binned.pop(rid, None)
                if entry is None:
                    results.append(_result("error", "INVALID_DATA", INVALID_ID, rid))
                    continue
                org.restore(entry.module, rid)
                results.append(_result("success", *done, rid))
            self.calls.append(list(ids))
        failed = any(r["status"] == "error" for r in results)
        return (207 if failed else 202 if scheduled else 200), {"recycle_bin": results}


def _result(status: str, code: str, message: str, rid: str) -> Dict[str, Any]:
    return {"code": code, "details": {"id": rid}, "message": message, "status": status}


def answer_restore(
    standin: StandinServer, headers: Mapping[str, str], raw: bytes
) -> Tuple[int, Dict[str, Any]]:
    """The server's answer to one restore call: token checked, call counted."""
    try:
        standin.tokens.check(headers.get("Authorization"))
        body = json_body(raw)
        route, (status, payload) = "restore", standin.restores.answer(standin.org, body)
    except ApiError as error:
        route, status, payload = "error", error.status, error.body()
    standin.count(route)
    return status, payload
