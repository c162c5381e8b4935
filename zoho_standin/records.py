"""Live records of the stand-in's org: their fields' metadata (`/settings/fields`) and their
values (Get Records, `GET /{module}?fields=…`).

A record deleted (`Org.delete`) leaves the live records for the bin, as in Zoho; restored, it is
live again. Live records are opt-in: an org holds none until a module is given fields and
records (`add_live_records`), so the bulk seeds for benchmarks stay as small as before.
"""

from __future__ import annotations

import bisect
import threading
import zlib
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
    `id` and `Modified_Time` (an aware datetime).

    A module may also hold many records made on demand from their number (`generate`, for
    benchmarks: a million records cost no memory); a change to one of them (`put`) or its
    deletion is kept aside like any other record's."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.fields: Dict[str, List[Field]] = {}
        self.records: Dict[str, Dict[str, Dict[str, Any]]] = {}
        self.generated: Dict[str, Generated] = {}
        self._binned: Dict[Tuple[str, str], Dict[str, Any]] = {}
        self._version = 0
        self._sorted: Dict[Tuple[str, str, bool], Tuple[int, List[Dict[str, Any]], List[Any]]] = {}

    def define(self, module: str, fields: Sequence[Field]) -> None:
        with self.lock:
            self.fields[module] = list(fields)

    def generate(self, module: str, count: int, last: datetime) -> None:
        """`count` records of `module` made on demand from its fields (see `Generated`)."""
        with self.lock:
            self.generated[module] = Generated(module, self.fields[module], count, last)
            self._version += 1

    def put(self, module: str, record: Dict[str, Any]) -> None:
        """Add or change a live record (give it a new `Modified_Time` to change it)."""
        with self.lock:
            self.records.setdefault(module, {})[record["id"]] = record
            made = self.generated.get(module)
            if made is not None:
                made.set_aside(record["id"])
            self._version += 1

    def get(self, module: str, record_id: str) -> Optional[Dict[str, Any]]:
        with self.lock:
            record = self.records.get(module, {}).get(record_id)
            made = self.generated.get(module)
            if record is None and made is not None:
                record = made.by_id(record_id)
            return record

    def remove(self, module: str, record_id: str) -> None:
        """A deletion: the record leaves the live records (kept aside for a restore)."""
        with self.lock:
            record = self.get(module, record_id)
            if record is not None:
                self.records.get(module, {}).pop(record_id, None)
                made = self.generated.get(module)
                if made is not None:
                    made.set_aside(record_id)
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

    def listing(
        self, module: str, sort_by: str, descending: bool, since: Optional[datetime] = None
    ) -> Sequence[Dict[str, Any]]:
        """A module's live records in order (ties by id), modified at or after `since`: a view
        of a list cached until a record changes (records made on demand stay unmade)."""
        key = (module, sort_by, descending)
        with self.lock:
            cached = self._sorted.get(key)
            if cached is None or cached[0] != self._version:
                cached = (self._version, *self._ordered(module, sort_by, descending))
                self._sorted[key] = cached
        _, chosen, times = cached
        if since is None:
            return chosen
        if sort_by != "Modified_Time":
            return [r for r in chosen if r["Modified_Time"] >= since]
        if descending:  # newest first: the records down to `since`
            return _Head(chosen, bisect.bisect_right(times, -since.timestamp()))
        return _Tail(chosen, bisect.bisect_left(times, since.timestamp()))

    def _ordered(self, module: str, sort_by: str, descending: bool) -> Tuple[Sequence, List]:
        """The records in order, and their times as bisect keys when sorted by them."""
        kept = list(self.records.get(module, {}).values())
        made = self.generated.get(module)
        ordered: Sequence[Dict[str, Any]]
        if made is not None and sort_by == "Modified_Time" and all(
            r["Modified_Time"] >= made.last for r in kept
        ):  # the changed records come after the ones made on demand: no need to make them
            kept.sort(key=lambda r: (r[sort_by], r["id"]))
            ordered = _Chain(made, kept)
        else:
            chosen = kept + (list(made) if made is not None else [])
            chosen.sort(key=lambda r: (r[sort_by], r["id"]))
            ordered = chosen
        if descending:
            ordered = _Reversed(ordered)
        times: List[Any] = []
        if sort_by == "Modified_Time":
            sign = -1 if descending else 1
            times = _Times(ordered, sign)
        return ordered, times


class Generated(Sequence):
    """`count` records of a module made on demand from their number, oldest first, a second
    apart up to `last`, each field valued by its type (`sample_value`); those changed or
    deleted since are set aside (kept, if at all, as other records are)."""

    def __init__(self, module: str, fields: Sequence[Field], count: int, last: datetime) -> None:
        self.module, self.fields, self.count = module, list(fields), count
        self.last = last.replace(microsecond=0)
        self.first = self.last - timedelta(seconds=count - 1)
        self.prefix = f"9{zlib.crc32(module.encode()) % 10**6:06d}"
        self._aside: List[int] = []  # numbers set aside, sorted

    def set_aside(self, record_id: str) -> None:
        n = self._number(record_id)
        if n is not None and not self._is_aside(n):
            bisect.insort(self._aside, n)

    def _is_aside(self, n: int) -> bool:
        at = bisect.bisect_left(self._aside, n)
        return at < len(self._aside) and self._aside[at] == n

    def _number(self, record_id: str) -> Optional[int]:
        rest = record_id[len(self.prefix) :]
        if record_id.startswith(self.prefix) and rest.isdigit() and int(rest) < self.count:
            return int(rest)
        return None

    def by_id(self, record_id: str) -> Optional[Dict[str, Any]]:
        n = self._number(record_id)
        if n is None or self._is_aside(n):
            return None
        return self.record(n)

    def record(self, n: int) -> Dict[str, Any]:
        modified = self.first + timedelta(seconds=n)
        standard = sample_values(n, modified)
        values = {
            f.api_name: standard[f.api_name] if f.api_name in standard else
            sample_value(f, n, modified)
            for f in self.fields
        }  # fmt: skip
        return {**values, "id": f"{self.prefix}{n:012d}", "Modified_Time": modified}

    def time_key(self, position: int) -> float:
        return (self.first + timedelta(seconds=self._nth(position))).timestamp()

    def _nth(self, position: int) -> int:
        """The number of the `position`th record not set aside."""
        n = position
        while True:
            later = position + bisect.bisect_right(self._aside, n)
            if later == n:
                return n
            n = later

    def __len__(self) -> int:
        return self.count - len(self._aside)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return self.record(self._nth(index % len(self)))


class _Chain(Sequence):
    """Two sequences one after the other."""

    def __init__(self, first: Sequence, second: Sequence) -> None:
        self.first, self.second = first, second

    def __len__(self) -> int:
        return len(self.first) + len(self.second)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        if index < len(self.first):
            return self.first[index]
        return self.second[index - len(self.first)]


class _Reversed(Sequence):
    def __init__(self, items: Sequence) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return self.items[len(self.items) - 1 - (index % len(self))]


class _Times(Sequence):
    """The bisect keys of an ordered listing: its records' times (negated newest first),
    computed without making records made on demand."""

    def __init__(self, ordered: Sequence, sign: int) -> None:
        self.ordered, self.sign = ordered, sign

    def __len__(self) -> int:
        return len(self.ordered)

    def __getitem__(self, index: int) -> float:
        items, position = self.ordered, index
        if isinstance(items, _Reversed):
            items, position = items.items, len(items) - 1 - index
        if isinstance(items, _Chain) and position < len(items.first):
            return self.sign * items.first.time_key(position)
        return self.sign * items[position]["Modified_Time"].timestamp()


class _Tail(Sequence):
    """The items of a list from `start` on, without copying them."""

    def __init__(self, items: Sequence, start: int) -> None:
        self.items, self.start = items, start

    def __len__(self) -> int:
        return len(self.items) - self.start

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            begin, end, step = index.indices(len(self))
            return self.items[self.start + begin : self.start + end : step]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return self.items[self.start + index % len(self)]


class _Head(_Tail):
    """The first `length` items of a list, without copying them."""

    def __init__(self, items: Sequence, length: int) -> None:
        super().__init__(items, 0)
        self.length = length

    def __len__(self) -> int:
        return self.length


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


_PICKS = ("Hot", "Webinar", "Referral", "Trade show")


def sample_value(field: Field, n: int, modified: datetime) -> Any:
    """A realistic value of `field` (by its data type) for the `n`th record modified at
    `modified` (the standard fields' are `sample_values`')."""
    kind, name = field.data_type, field.api_name
    if kind == "date":
        return date(1970 + n % 50, 1 + n % 12, 1 + n % 28)
    if kind == "datetime":
        return modified - timedelta(minutes=n % 997)
    if kind in ("currency", "decimal", "double", "percent"):
        return round((n % 100_000) * 1.25 + 0.5, 2)
    if kind in ("integer", "bigint"):
        return n % 1000
    if kind == "boolean":
        return n % 3 == 0
    if kind in ("lookup", "ownerlookup", "userlookup"):
        return {"name": f"{name} {n % 97}", "id": f"41088800000{n % 97:07d}"}
    if kind == "multiselectpicklist":
        return list(_PICKS[: n % 4])
    if kind == "subform":
        return [{"id": f"8{n:012d}{k}", "Item": f"Item {k}", "Quantity": k + 1}
                for k in range(n % 2)]  # fmt: skip
    if kind == "email":
        return f"{name.lower()}.{n}@example.com"
    if kind == "phone":
        return f"+1 555 {n % 10_000_000:07d}"
    if kind == "picklist":
        return _STATUSES[n % len(_STATUSES)]
    if kind == "formula":
        return 0.5 * n if field.json_type == "double" else f"F-{n}"
    if kind == "autonumber":
        return f"N-{n:07d}"
    return f"{name.replace('_', ' ')} of record {n}"


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
