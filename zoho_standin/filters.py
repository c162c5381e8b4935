"""What narrows or orders a listing: `If-Modified-Since` and filter times, the recycle bin's
`filters` JSON and its `sort_by`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Callable

from zoho_standin.errors import ApiError, invalid_data
from zoho_standin.org import BinQuery, DeletedEntry

BIN_SORTS = ("deleted_time", "display_name", "deleted_by")


def parse_time(value: str, what: str) -> datetime:
    """An ISO 8601 time with an offset, as Zoho takes it; 400 INVALID_DATA naming `what` else."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid_data(f"invalid {what}: {value}") from None
    if parsed.tzinfo is None:
        raise invalid_data(f"{what} needs an offset: {value}")
    return parsed


def sort_key(sort_by: str) -> Callable[[DeletedEntry], Any]:
    """The order of the recycle bin's `sort_by` other than `deleted_time` (the bin's own order),
    ties broken by id."""
    if sort_by == "display_name":
        return lambda e: (e.display_name or "", e.id)
    return lambda e: (e.deleted_by.name if e.deleted_by else "", e.id)


def bin_filter(raw: str) -> BinQuery:
    """Compile the recycle bin's `filters` JSON into a predicate on entries, with the module and
    the earliest time it can match when its conditions say so."""
    try:
        spec = json.loads(raw)
        group = spec["group"] if "group" in spec else [spec]
    except (ValueError, KeyError, TypeError):
        raise invalid_data("filters must be JSON with a group") from None
    if spec.get("group_operator", "AND").upper() != "AND":
        raise ApiError(403, "INVALID_DATA", "The given group operator not supported")
    checks = []
    module, since = None, None
    for cond in group:
        field, comparator, value = cond["field"]["api_name"], cond["comparator"], cond["value"]
        if field == "deleted_time":
            parsed = parse_time(value, "deleted_time")
            instant = parsed.timestamp()
            if comparator == "greater_than" and (since is None or parsed > since):
                since = parsed
            ops = {
                "greater_than": lambda e, v=instant: e.deleted_time.timestamp() > v,
                "less_than": lambda e, v=instant: e.deleted_time.timestamp() < v,
                "equal": lambda e, v=instant: e.deleted_time.timestamp() == v,
                "not_equal": lambda e, v=instant: e.deleted_time.timestamp() != v,
            }
        elif field == "module":
            module = value if comparator == "equal" else module
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
            raise ApiError(403, "INVALID_DATA", "The given api_name seems to be invalid")
        if comparator not in ops:
            raise invalid_data(f"comparator {comparator} not valid for {field}")
        checks.append(ops[comparator])

    def predicate(entry: DeletedEntry) -> bool:
        return all(check(entry) for check in checks)

    return BinQuery(raw, predicate, module, since)
