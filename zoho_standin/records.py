"""Live records of the stand-in's org: their fields' metadata (`/settings/fields`) and their
values (Get Records, `GET /{module}?fields=…`).

A record deleted (`Org.delete`) leaves the live records for the bin, as in Zoho; restored, it is
live again. Live records are opt-in: an org holds none until a module is given fields and
records (`add_live_records`), so the bulk seeds for benchmarks stay as small as before.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Sequence, Tuple

# Zoho's `json_type` of each `data_type` (formula fields say their own)
JSON_TYPES = {
    "integer": "integer",
    "bigint": "string",
    "double": "double",
    "currency": "double",
    "decimal": "double",
    "percent": "double",
    "boolean": "boolean",
    "lookup": "jsonobject",
    "ownerlookup": "jsonobject",
    "userlookup": "jsonobject",
    "multiselectpicklist": "jsonarray",
    "subform": "jsonarray",
}
ORG_OFFSET = timezone(timedelta(hours=5, minutes=30))  # Zoho writes record times in the org's


@dataclass
class Field:
    """One field as `/settings/fields` lists it."""

    api_name: str
    data_type: str
    json_type: Optional[str] = None  # None: the data type's (see JSON_TYPES), else string
    read_only: bool = False
    custom_field: bool = False
    lookup_module: Optional[str] = None
    mandatory: bool = False  # `system_mandatory`: Create Records refuses a record without it
    # stand-in only: Get Records refuses this field (400 INVALID_DATA naming it), as Zoho does
    # for a field its metadata lists but the API cannot read
    refused: bool = False

    def as_json(self) -> Dict[str, Any]:
        meta: Dict[str, Any] = {
            "api_name": self.api_name,
            "field_label": self.api_name.replace("_", " "),
            "data_type": self.data_type,
            "json_type": self.json_type or JSON_TYPES.get(self.data_type, "string"),
            "read_only": self.read_only,
            "field_read_only": self.read_only,
            "custom_field": self.custom_field,
            "system_mandatory": self.mandatory,
            "visible": True,
        }
        if self.lookup_module:
            meta["lookup"] = {"module": {"api_name": self.lookup_module}}
        return meta


class LiveRecords:
    """Thread-safe store of an org's live records, by module, each a dict of Zoho values with
    `id` and `Modified_Time` (an aware datetime)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.fields: Dict[str, List[Field]] = {}
        self.records: Dict[str, Dict[str, Dict[str, Any]]] = {}
        self._binned: Dict[Tuple[str, str], Dict[str, Any]] = {}
        self._version = 0
        self._sorted: Dict[Tuple[str, str, bool], Tuple[int, List[Dict[str, Any]]]] = {}

    def define(self, module: str, fields: Sequence[Field]) -> None:
        with self.lock:
            self.fields[module] = list(fields)

    def put(self, module: str, record: Dict[str, Any]) -> None:
        """Add or change a live record (give it a new `Modified_Time` to change it)."""
        with self.lock:
            self.records.setdefault(module, {})[record["id"]] = record
            self._version += 1

    def remove(self, module: str, record_id: str) -> None:
        """A deletion: the record leaves the live records (kept aside for a restore)."""
        with self.lock:
            record = self.records.get(module, {}).pop(record_id, None)
            if record is not None:
                self._binned[(module, record_id)] = record
                self._version += 1

    def restore(self, module: str, record_id: str) -> None:
        with self.lock:
            record = self._binned.pop((module, record_id), None)
            if record is not None:
                self.put(module, record)

    def edit_all(self, module: str, at: datetime) -> None:
        """Every live record of `module` edited at `at`: its `Last_Name` changes."""
        with self.lock:
            for record in list(self.records.get(module, {}).values()):
                edited = f"{record.get('Last_Name') or ''} (edited)".strip()
                self.put(module, {**record, "Last_Name": edited, "Modified_Time": at})

    def listing(self, module: str, sort_by: str, descending: bool) -> List[Dict[str, Any]]:
        """A module's live records in order (ties by id), cached until a record changes."""
        key = (module, sort_by, descending)
        with self.lock:
            cached = self._sorted.get(key)
            if cached is None or cached[0] != self._version:
                chosen = list(self.records.get(module, {}).values())
                chosen.sort(key=lambda r: (r[sort_by], r["id"]), reverse=descending)
                cached = (self._version, chosen)
                self._sorted[key] = cached
        return cached[1]


def record_json(record: Dict[str, Any], fields: Sequence[str]) -> Dict[str, Any]:
    """A record as Get Records answers it: `id` and the fields asked for, times with offsets."""
    answer: Dict[str, Any] = {"id": record["id"]}
    for name in fields:
        value = record.get(name)
        if isinstance(value, datetime):
            value = value.astimezone(ORG_OFFSET).isoformat()
        elif isinstance(value, date):
            value = value.isoformat()
        answer[name] = value
    return answer


STANDARD_FIELDS = (
    Field("Last_Name", "text", mandatory=True),
    Field("Email", "email"),
    Field("Phone", "phone"),
    Field("Lead_Status", "picklist"),
    Field("Tags_Picked", "multiselectpicklist", custom_field=True),
    Field("Date_of_Birth", "date"),
    Field("Last_Call", "datetime", custom_field=True),
    Field("Annual_Revenue", "currency"),
    Field("Discount_Rate", "decimal", custom_field=True),
    Field("Email_Opt_Out", "boolean"),
    Field("Account_Name", "lookup", lookup_module="Accounts"),
    Field("Owner", "ownerlookup", lookup_module="users"),
    Field("Line_Items", "subform", custom_field=True),
    Field("Score_Formula", "formula", json_type="double", read_only=True, custom_field=True),
    Field("Record_Number", "autonumber", read_only=True),
    Field("Created_Time", "datetime", read_only=True),
    Field("Modified_Time", "datetime", read_only=True),
)
_STATUSES = ("New", "Contacted", "Qualified", "Lost")


def sample_values(n: int, modified: datetime) -> Dict[str, Any]:
    """Realistic values of every STANDARD_FIELDS field for the `n`th record."""
    return {
        "Last_Name": f"Person {n}",
        "Email": f"person{n}@example.com",
        "Phone": f"+1 555 01{n:04d}",
        "Lead_Status": _STATUSES[n % len(_STATUSES)],
        "Tags_Picked": ["Hot", "Webinar"][: n % 3],
        "Date_of_Birth": date(1980 + n % 30, 1 + n % 12, 1 + n % 28),
        "Last_Call": modified - timedelta(hours=3),
        "Annual_Revenue": 12000.5 + n,
        "Discount_Rate": 0.125,
        "Email_Opt_Out": n % 2 == 1,
        "Account_Name": {"name": f"Account {n % 5}", "id": f"41088800000300{n % 5:04d}"},
        "Owner": {"name": "Patricia Boyle", "id": "410888000000086001"},
        "Line_Items": [{"id": f"7{n:08d}1", "Product": "Widget", "Quantity": 1 + n % 4}],
        "Score_Formula": 1.5 * n,
        "Record_Number": f"L-{n:05d}",
        "Created_Time": modified - timedelta(days=30),
        "Modified_Time": modified,
    }


def add_live_records(
    live: LiveRecords,
    module: str,
    ids: Sequence[str],
    now: datetime,
    fields: Sequence[Field] = STANDARD_FIELDS,
) -> None:
    """Give `module` the standard fields and a live record per id, modified a minute apart
    (the last one a minute before `now`), whole seconds as Zoho keeps them."""
    live.define(module, fields)
    names = {f.api_name for f in fields}
    last = now.replace(microsecond=0) - timedelta(minutes=1)
    for n, rid in enumerate(ids):
        modified = last - timedelta(minutes=len(ids) - 1 - n)
        values = {k: v for k, v in sample_values(n, modified).items() if k in names}
        live.put(module, {"id": rid, **values})
