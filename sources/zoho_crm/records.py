"""Turn Zoho's JSON pages into Arrow tables with typed columns.

Times become UTC instants (Zoho mixes offsets such as +05:30 and -08:00, and sometimes `Z`), so
the incremental cursor compares instants, never strings.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import pyarrow as pa

from .settings import RETENTION

TIMESTAMP = pa.timestamp("us", tz="UTC")
_USER_FIELDS = ("deleted_by", "created_by")

ORG = pa.field("org", pa.string(), nullable=False)  # the Zoho org; part of every key
DELETED_RECORDS_SCHEMA = pa.schema(
    [
        ORG,
        pa.field("module", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        ("type", pa.string()),
        ("display_name", pa.string()),
        ("deleted_time", TIMESTAMP),
        ("expires_at", TIMESTAMP),
        ("deleted_by__name", pa.string()),
        ("deleted_by__id", pa.string()),
        ("created_by__name", pa.string()),
        ("created_by__id", pa.string()),
        ("observed_at", TIMESTAMP),
        ("restored_at", TIMESTAMP),  # set by reconciliation when a record left the bin unpurged
    ]
)
DETAIL_COLUMNS = (
    "display_name",
    "deleted_by__name",
    "deleted_by__id",
    "created_by__name",
    "created_by__id",
)

# What a row of a record erased on request keeps (`zoho-deleted forget`): its keys, the ids of
# the users involved and its times. Every other column is blanked, whatever columns it has.
ERASED_KEEPS = {
    "deleted_records": (
        "org", "module", "id", "type", "deleted_time", "expires_at", "observed_at",
        "restored_at", "deleted_by__id", "created_by__id",
    ),
    "recycle_bin": (
        "org", "id", "module__api_name", "module__id", "deleted_time", "observed_at",
        "deleted_by__id", "owner__id",
    ),
}  # fmt: skip

RECYCLE_BIN_SCHEMA = pa.schema(
    [
        ORG,
        pa.field("id", pa.string(), nullable=False),
        ("module__api_name", pa.string()),
        ("module__id", pa.string()),
        ("display_name", pa.string()),
        ("deleted_time", TIMESTAMP),
        ("deleted_by__name", pa.string()),
        ("deleted_by__id", pa.string()),
        ("owner__name", pa.string()),
        ("owner__id", pa.string()),
        ("observed_at", TIMESTAMP),
    ]
)


def module_slug(module: str) -> str:
    """A module's API name as part of an identifier, e.g. `price_books` for `Price_Books`."""
    return re.sub(r"[^0-9a-z]+", "_", module.lower()).strip("_")


def parse_time(value: str) -> datetime:
    """An ISO 8601 time with an offset (or `Z`) as an aware UTC datetime."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"Zoho time {value!r} has no offset")
    return parsed.astimezone(UTC)


def zoho_time(instant: datetime) -> str:
    """An instant the way Zoho writes it: ISO 8601, whole seconds, with an offset."""
    return instant.astimezone(UTC).replace(microsecond=0).isoformat()


class MalformedEntryError(ValueError):
    """An entry Zoho sent that cannot become a row: the field, its value and what is wrong."""

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field, self.value, self.reason = field, value, reason
        super().__init__(f"{field} {shown(value)} {reason}")


MISSING = object()  # a field the entry does not have
NOT_A_TIME = "is not an ISO 8601 time with an offset"


def shown(value: Any) -> str:
    """A field's value for a one-line message: `missing`, or its JSON, cut at 80 characters."""
    if value is MISSING:
        return "missing"
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def entry_id(item: Any) -> Optional[str]:
    """An entry's id as text (Zoho sends strings; a number is taken too), None if it has none."""
    value = item.get("id") if isinstance(item, dict) else None
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def entry_time(item: Any) -> Optional[datetime]:
    """An entry's `deleted_time` as a UTC instant, None when it has none Zoho could mean."""
    try:
        return _time(item, "deleted_time")
    except MalformedEntryError:
        return None


def _checked_id(item: Any) -> str:
    """The id of an entry that is an object with one; raises `MalformedEntryError` if not."""
    if not isinstance(item, dict):
        raise MalformedEntryError("entry", item, "is not a JSON object")
    rid = entry_id(item)
    if rid is None:
        raise MalformedEntryError("id", item.get("id", MISSING), "is not a record id")
    return rid


def checked_entry(item: Any) -> Dict[str, Any]:
    """An entry that is an object with an id, its id as text; raises `MalformedEntryError`
    if it is not."""
    rid = _checked_id(item)  # first: `**item` of an entry that is not an object would raise
    return {**item, "id": rid}


def _time(item: Dict[str, Any], field: str) -> datetime:
    value = item.get(field, MISSING) if isinstance(item, dict) else MISSING
    if not isinstance(value, str):
        raise MalformedEntryError(field, value, NOT_A_TIME)
    try:
        return parse_time(value)
    except ValueError:
        raise MalformedEntryError(field, value, NOT_A_TIME) from None


def _text(item: Dict[str, Any], field: str) -> Optional[str]:
    """A text field: absent or null is None, a number is taken as its text."""
    value = item.get(field)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise MalformedEntryError(field, value, "is not text")


def _object(item: Dict[str, Any], field: str) -> Dict[str, Any]:
    """A user or module object (`{"name": ..., "id": ...}`); absent or null (Zoho drops the
    deleter of a purged record) is an empty one."""
    value = item.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedEntryError(field, value, "is not an object")
    return value


def _user(item: Dict[str, Any], field: str) -> Dict[str, Optional[str]]:
    user = _object(item, field)
    return {f"{field}__name": _text(user, "name"), f"{field}__id": _text(user, "id")}


def deleted_row(
    org: str, module: str, item: Dict[str, Any], observed_at: datetime
) -> Dict[str, Any]:
    """A `deleted_records` row; raises `MalformedEntryError` for an entry that cannot be one."""
    rid = _checked_id(item)
    deleted_time = _time(item, "deleted_time")
    kind = _text(item, "type") or "recycle"
    row = {
        "org": org,
        "module": module,
        "id": rid,
        "type": kind,
        "display_name": _text(item, "display_name"),
        "deleted_time": deleted_time,
        "expires_at": deleted_time + RETENTION.get(kind, RETENTION["permanent"]),
        "observed_at": observed_at,
    }
    for field in _USER_FIELDS:
        row.update(_user(item, field))
    return row


def bin_module(item: Any) -> Optional[str]:
    """The module API name a bin entry names (`module.api_name`, or `module` given as text)."""
    module = item.get("module") if isinstance(item, dict) else None
    if isinstance(module, dict):
        module = module.get("api_name")
    return module if isinstance(module, str) else None


def bin_row(org: str, item: Dict[str, Any], observed_at: datetime) -> Dict[str, Any]:
    """A `recycle_bin` row; raises `MalformedEntryError` for an entry that cannot be one."""
    rid = _checked_id(item)
    module = _object(item, "module")
    if not isinstance(module.get("api_name"), str):
        raise MalformedEntryError("module", item.get("module", MISSING), "names no module")
    return {
        "org": org,
        "id": rid,
        "module__api_name": module["api_name"],
        "module__id": _text(module, "id"),
        "display_name": _text(item, "display_name"),
        "deleted_time": _time(item, "deleted_time"),
        **_user(item, "deleted_by"),
        **_user(item, "owner"),
        "observed_at": observed_at,
    }


def blank_personal(table: str, row: Dict[str, Any]) -> None:
    """Blank, in place, what a `table` row of an erased record does not keep (`ERASED_KEEPS`)."""
    for column in row:
        if column not in ERASED_KEEPS[table] and not column.startswith("_dlt_"):
            row[column] = None


def accepted(
    page: List[Any],
    make_row: Callable[[Any], Optional[Dict[str, Any]]],
    reject: Callable[[Any, MalformedEntryError], None],
) -> Tuple[List[Dict[str, Any]], Set[int]]:
    """The rows `make_row` makes of a page's entries (None: an entry left out), and the
    positions of the entries it found malformed, each handed to `reject` (set aside, never
    loaded as rows)."""
    rows: List[Dict[str, Any]] = []
    rejected: Set[int] = set()
    for position, item in enumerate(page):
        try:
            row = make_row(item)
        except MalformedEntryError as error:
            reject(item, error)
            rejected.add(position)
            continue
        if row is not None:
            rows.append(row)
    return rows, rejected


def to_table(rows: List[Dict[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)
