"""The stand-in's Create Records (`POST /crm/{version}/{module}`) and Update Records
(`PUT /crm/{version}/{module}`), as Zoho's documentation describes them.

At most 100 records a call; one result per record, in order, under `data`: `SUCCESS` with the
new id, or `MANDATORY_NOT_FOUND` (a `system_mandatory` field missing), `INVALID_DATA` naming the
field (a value not of its type, a lookup to a deleted record, an owner no longer a user),
`DUPLICATE_DATA` (a value of a
unique field another live record holds, with that record's id). 201 when every record was
created, 207 for a mix, 400 when none was. Read-only fields are ignored, as Zoho does. A token
without `ZohoCRM.modules.{module}.CREATE` (or `.UPDATE`) gets 401 `OAUTH_SCOPE_MISMATCH`.

Tests read what was created (`CreateDesk.created`) and each call's `trigger` (`calls`), and can
make the next calls lose their answers after creating the records (`lose_answers`), as a
connection dropped on the way back does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Set, Tuple

from zoho_standin.errors import ApiError, json_body
from zoho_standin.org import Org
from zoho_standin.records import JSON_TYPES, Field

if TYPE_CHECKING:
    from zoho_standin.server import StandinServer

MODULE_PATH = re.compile(r"/crm/v\d+/(?!settings/)([A-Za-z0-9_]+)")
MAX_RECORDS = 100
INVALID_ID = "the id given seems to be invalid"
_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "jsonobject": lambda v: isinstance(v, dict) and isinstance(v.get("id"), str),
    "jsonarray": lambda v: isinstance(v, list),
}


@dataclass
class Call:
    """One Create or Update call answered: its method, module, `trigger` (None when the body
    left it out) and the records as sent."""

    method: str
    module: str
    trigger: Optional[List[str]]
    records: List[Dict[str, Any]]


@dataclass
class CreateDesk:
    """What Create and Update Records do; tests change it to meet Zoho's other answers."""

    refused_scopes: Set[str] = field(default_factory=set)  # e.g. ZohoCRM.modules.Leads.CREATE
    unique: Dict[str, Tuple[str, ...]] = field(default_factory=dict)  # module -> unique fields
    lose_answers: int = 0  # the next calls create their records, then drop the connection
    gone_users: Set[str] = field(default_factory=set)  # ids of users no longer in the org
    calls: List[Call] = field(default_factory=list)
    created: List[Tuple[str, Dict[str, Any]]] = field(default_factory=list)  # (module, record)
    _next_id: int = 0

    def count_created(self, module: Optional[str] = None) -> int:
        return sum(1 for m, _ in self.created if module in (None, m))

    def answer(self, org: Org, method: str, module: str, body: Any) -> Tuple[int, Dict[str, Any]]:
        action = "CREATE" if method == "POST" else "UPDATE"
        if f"ZohoCRM.modules.{module}.{action}" in self.refused_scopes:
            raise ApiError(401, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL")
        known = org.modules.get(module)
        if known is None or not known.api_supported:
            raise ApiError(400, "INVALID_MODULE", "the module name given seems to be invalid")
        records = body.get("data") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            raise ApiError(400, "REQUIRED_PARAM_MISSING", "data expected", {"api_name": "data"})
        if len(records) > MAX_RECORDS:
            raise ApiError(400, "LIMIT_EXCEEDED", f"at most {MAX_RECORDS} records a call",
                           {"limit": MAX_RECORDS})  # fmt: skip
        with org.lock:
            fields = {f.api_name: f for f in org.live.fields.get(module, [])}
            do = self._create if method == "POST" else self._update
            results = [do(org, module, fields, record) for record in records]
            self.calls.append(Call(method, module, body.get("trigger"), records))
        ok = sum(r["status"] == "success" for r in results)
        status = (201 if method == "POST" else 200) if ok == len(results) else 207 if ok else 400
        return status, {"data": results}

    def _create(
        self, org: Org, module: str, fields: Dict[str, Field], record: Any
    ) -> Dict[str, Any]:
        if not isinstance(record, dict):
            return _error("INVALID_DATA", "invalid data", {})
        for name, meta in fields.items():
            if meta.mandatory and record.get(name) in (None, "", []):
                return _error("MANDATORY_NOT_FOUND", "required field not found",
                              {"api_name": name})  # fmt: skip
        refused = _refused(org, module, fields, record, self.unique.get(module, ()),
                           self.gone_users)  # fmt: skip
        if refused is not None:
            return refused
        self._next_id += 1
        now = datetime.now(UTC).replace(microsecond=0)
        new_id = f"5{self._next_id:017d}"
        kept = {k: v for k, v in record.items() if k in fields and not fields[k].read_only}
        stored = {**kept, "id": new_id, "Created_Time": now, "Modified_Time": now}
        org.live.put(module, stored)
        self.created.append((module, stored))
        details = {"id": new_id, "Created_Time": now.isoformat(), "Modified_Time": now.isoformat()}
        return {"code": "SUCCESS", "details": details, "message": "record added",
                "status": "success"}  # fmt: skip

    def _update(
        self, org: Org, module: str, fields: Dict[str, Field], record: Any
    ) -> Dict[str, Any]:
        rid = record.get("id") if isinstance(record, dict) else None
        live = org.live.records.get(module, {}).get(rid) if isinstance(rid, str) else None
        if live is None:
            return _error("INVALID_DATA", INVALID_ID, {"api_name": "id", "id": rid})
        changes = {k: v for k, v in record.items() if k != "id"}
        refused = _refused(org, module, fields, changes, (), self.gone_users)
        if refused is not None:
            return refused
        now = datetime.now(UTC).replace(microsecond=0)
        org.live.put(module, {**live, **changes, "Modified_Time": now})
        return {"code": "SUCCESS", "details": {"id": rid, "Modified_Time": now.isoformat()},
                "message": "record updated", "status": "success"}  # fmt: skip


def _refused(
    org: Org,
    module: str,
    fields: Dict[str, Field],
    record: Dict[str, Any],
    unique: Tuple[str, ...],
    gone_users: Set[str],
) -> Optional[Dict[str, Any]]:
    """The error result for the first value Zoho would refuse, or None."""
    for name, value in record.items():
        meta = fields.get(name)
        if meta is None or meta.read_only or value is None:
            continue  # Zoho ignores fields it does not know and those it cannot write
        json_type = meta.json_type or JSON_TYPES.get(meta.data_type, "string")
        if not _CHECKS.get(json_type, lambda v: True)(value):
            return _error("INVALID_DATA", "invalid data",
                          {"api_name": name, "expected_data_type": meta.data_type})  # fmt: skip
        target = value.get("id") if meta.data_type in ("lookup", "ownerlookup") else None
        gone = target in gone_users or org.entry(meta.lookup_module or "", target or "")
        if target is not None and gone:
            return _error("INVALID_DATA", INVALID_ID, {"api_name": name, "id": target})
        if name in unique:
            for other in org.live.records.get(module, {}).values():
                if other.get(name) == value and other["id"] != record.get("id"):
                    return _error("DUPLICATE_DATA", "duplicate data",
                                  {"api_name": name, "id": other["id"]})  # fmt: skip
    return None


def _error(code: str, message: str, details: Dict[str, Any]) -> Dict[str, Any]:
    return {"code": code, "details": details, "message": message, "status": "error"}


def answer_records(
    standin: StandinServer, method: str, path: str, headers: Mapping[str, str], raw: bytes
) -> Tuple[int, Dict[str, Any], bool]:
    """The server's answer to one Create or Update call (token checked, call counted), and
    whether the answer is to be lost (`CreateDesk.lose_answers`)."""
    module = MODULE_PATH.fullmatch(path).group(1)  # type: ignore[union-attr]
    lost = False
    try:
        standin.tokens.check(headers.get("Authorization"))
        body = json_body(raw)
        status, payload = standin.creates.answer(standin.org, method, module, body)
        route = "create" if method == "POST" else "update"
        with standin.org.lock:
            if standin.creates.lose_answers > 0:
                standin.creates.lose_answers -= 1
                lost = True
    except ApiError as error:
        route, status, payload = "error", error.status, error.body()
    standin.count(route)
    return status, payload, lost
