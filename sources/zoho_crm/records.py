"""Turn Zoho's JSON pages into Arrow tables with typed columns.

Times become UTC instants (Zoho mixes offsets such as +05:30 and -08:00, and sometimes `Z`), so
the incremental cursor compares instants, never strings.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Dict, List, Optional

import pyarrow as pa

from sources.zoho_crm.settings import RETENTION

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


def _user(value: Optional[Dict[str, Any]], key: str) -> Optional[str]:
    return None if not value else value.get(key)


def deleted_row(
    org: str, module: str, item: Dict[str, Any], observed_at: datetime
) -> Dict[str, Any]:
    deleted_time = parse_time(item["deleted_time"])
    kind = item.get("type") or "recycle"
    row = {
        "org": org,
        "module": module,
        "id": str(item["id"]),
        "type": kind,
        "display_name": item.get("display_name"),
        "deleted_time": deleted_time,
        "expires_at": deleted_time + RETENTION.get(kind, RETENTION["permanent"]),
        "observed_at": observed_at,
    }
    for field in _USER_FIELDS:
        row[f"{field}__name"] = _user(item.get(field), "name")
        row[f"{field}__id"] = _user(item.get(field), "id")
    return row


def bin_row(org: str, item: Dict[str, Any], observed_at: datetime) -> Dict[str, Any]:
    module = item.get("module") or {}
    return {
        "org": org,
        "id": str(item["id"]),
        "module__api_name": module.get("api_name"),
        "module__id": module.get("id"),
        "display_name": item.get("display_name"),
        "deleted_time": parse_time(item["deleted_time"]),
        "deleted_by__name": _user(item.get("deleted_by"), "name"),
        "deleted_by__id": _user(item.get("deleted_by"), "id"),
        "owner__name": _user(item.get("owner"), "name"),
        "owner__id": _user(item.get("owner"), "id"),
        "observed_at": observed_at,
    }


def blank_personal(table: str, row: Dict[str, Any]) -> None:
    """Blank, in place, what a `table` row of an erased record does not keep (`ERASED_KEEPS`)."""
    for column in row:
        if column not in ERASED_KEEPS[table] and not column.startswith("_dlt_"):
            row[column] = None


def to_table(rows: List[Dict[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)
