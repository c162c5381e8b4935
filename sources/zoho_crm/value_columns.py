"""Record values as Arrow tables: a page of Zoho's records becomes one table, a column per
field typed by Zoho's field metadata, without a Python object per value where Arrow can do it.

dlt loads an Arrow table as it is (no row-by-row normalizing), which is what keeps a first
capture of a million records near the raw floor (see docs/values-benchmark.md). Hence:
- lookups are two text columns, `<field>__id` and `<field>__name`;
- multi-selects and subforms are JSON columns (a list of names, a list of objects), not child
  tables: dlt makes child tables only on its row-normalizing path, and the whole record stays
  in `field_values` anyway;
- a value of the right JSON shape that does not parse as its type (a date `31/02/1990`, a
  currency `n/a`) is null in its column and stays as Zoho sent it in `field_values`;
- a record that cannot be a row (not an object, no id, no `Modified_Time` Zoho could mean, or a
  value of the wrong shape: an object or list where the field is a scalar, a scalar where it
  is a lookup, multi-select or subform) raises `MalformedEntryError` for its position, to be
  set aside in `rejected_records`.

Column names: each field's column is its API name as the schema's naming convention makes it
(`Annual_Revenue` -> `annual_revenue`). Our own columns (`OWN_COLUMNS`) and dlt's (`_dlt_*`)
are never a field's: a field whose column would be one of them, or one another field already
has, takes `field_<name>` instead (`Org` -> `field_org`; then `field_org_2`, ...). The names
are pinned in the resource's state the first time a field is seen, so a column never changes
meaning when fields come and go.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .records import (
    MISSING,
    NOT_A_TIME,
    TIMESTAMP,
    MalformedEntryError,
    entry_id,
    parse_time,
)

MODIFIED = "Modified_Time"
OWN_COLUMNS = ("org", "module", "id", "modified_time", "field_values")
DECIMAL = pa.decimal128(38, 9)  # dlt's default precision for `decimal`
_DECIMAL_LIMIT = Decimal(10) ** 29
_NINE_PLACES = Decimal("1e-9")
LOOKUPS = ("lookup", "ownerlookup", "userlookup")
LISTS = ("multiselectpicklist", "subform")
_SCALAR_TYPES = {
    "date": pa.date32(),
    "datetime": TIMESTAMP,
    "currency": DECIMAL,
    "decimal": DECIMAL,
    "double": pa.float64(),
    "percent": pa.float64(),
    "integer": pa.int64(),
    "bigint": pa.int64(),
    "boolean": pa.bool_(),
}
_FORMULA_TYPES = {"double": "double", "integer": "integer", "boolean": "boolean"}
_DLT_TYPES = {pa.date32(): "date", TIMESTAMP: "timestamp", DECIMAL: "decimal",
              pa.float64(): "double", pa.int64(): "bigint", pa.bool_(): "bool",
              pa.string(): "text"}  # fmt: skip
Normalize = Callable[[str], str]


def field_kind(meta: Dict[str, Any]) -> str:
    """A field's data type as its column takes it (a formula's by its `json_type`)."""
    kind = meta.get("data_type") or "text"
    if kind == "formula":
        return _FORMULA_TYPES.get(meta.get("json_type") or "", "text")
    return kind


def pin_columns(
    fields: List[Dict[str, Any]], pinned: Dict[str, str], normalize: Normalize
) -> Dict[str, str]:
    """API name -> column (a lookup's: the stem of its `__id`/`__name`), `pinned` (from the
    resource's state) kept and new fields added by the rule in the module's docstring."""
    taken: Set[str] = set(OWN_COLUMNS)
    for name, column in pinned.items():
        taken.update(_columns_of(column, _is_lookup(fields, name)))
    columns = dict(pinned)
    for meta in fields:
        name = meta["api_name"]
        if name in columns or name == MODIFIED:
            continue
        lookup = field_kind(meta) in LOOKUPS
        column, suffix = normalize(name), 1
        while _clashes(_columns_of(column, lookup), taken):
            suffix += 1
            column = normalize(f"field_{name}") + (f"_{suffix - 1}" if suffix > 2 else "")
        columns[name] = column
        taken.update(_columns_of(column, lookup))
    return columns


def _is_lookup(fields: List[Dict[str, Any]], name: str) -> bool:
    return any(f["api_name"] == name and field_kind(f) in LOOKUPS for f in fields)


def _columns_of(column: str, lookup: bool) -> Tuple[str, ...]:
    return (f"{column}__id", f"{column}__name") if lookup else (column,)


def _clashes(columns: Tuple[str, ...], taken: Set[str]) -> bool:
    return any(c in taken or c.startswith("_dlt") for c in columns)


def column_hints(fields: List[Dict[str, Any]], columns: Dict[str, str]) -> Dict[str, Any]:
    """dlt column hints of a values table (the Arrow types say the rest)."""
    hints: Dict[str, Dict[str, Any]] = {
        "org": {"data_type": "text", "nullable": False},
        "module": {"data_type": "text", "nullable": False},
        "id": {"data_type": "text", "nullable": False},
        "modified_time": {"data_type": "timestamp", "dedup_sort": "desc", "nullable": False},
        "field_values": {"data_type": "json"},
    }
    for meta in fields:
        name, kind = meta["api_name"], field_kind(meta)
        if name not in columns:
            continue
        if kind in LOOKUPS:
            for column in _columns_of(columns[name], True):
                hints[column] = {"data_type": "text", "nullable": True}
        elif kind in LISTS:
            hints[columns[name]] = {"data_type": "json", "nullable": True}
        else:
            arrow = _SCALAR_TYPES.get(kind, pa.string())
            hints[columns[name]] = {"data_type": _DLT_TYPES[arrow], "nullable": True}
    return hints


def values_table(
    records: List[Any],
    fields: List[Dict[str, Any]],
    columns: Dict[str, str],
    org: str,
    module: str,
    skip: Set[str],
) -> Tuple[pa.Table, Dict[int, MalformedEntryError]]:
    """A page's records as one table, and the positions of those that cannot be rows (left
    out of it) with why. Records of ids in `skip` (erased on request) are left out too."""
    bad: Dict[int, MalformedEntryError] = {}
    ids: List[Optional[str]] = []
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            bad[position] = MalformedEntryError("record", record, "is not a JSON object")
            ids.append(None)
            continue
        rid = entry_id(record)
        if rid is None:
            bad[position] = MalformedEntryError(
                "id", record.get("id", MISSING), "is not a record id"
            )
        ids.append(rid)
    rows = [r if isinstance(r, dict) else {} for r in records]
    arrays: Dict[str, pa.Array] = {"id": pa.array(ids, pa.string())}
    arrays["modified_time"] = _modified(rows, bad)
    for meta in fields:
        name = meta["api_name"]
        if name == MODIFIED or name not in columns:
            continue
        values = [r.get(name) for r in rows]
        kind = field_kind(meta)
        if kind in LOOKUPS:
            for part in ("id", "name"):
                arrays[f"{columns[name]}__{part}"] = _lookup_part(values, part, name, bad)
        elif kind in LISTS:
            arrays[columns[name]] = _json_list(values, name, bad)
        else:
            arrow = _SCALAR_TYPES.get(kind, pa.string())
            arrays[columns[name]] = _scalar(values, arrow, name, bad)
    arrays["field_values"] = pa.array([_dumps(r, "id") for r in rows], pa.string())
    table = pa.table(arrays)
    keep = [p not in bad and ids[p] not in skip for p in range(len(records))]
    if not all(keep):
        table = table.filter(pa.array(keep))
    count = table.num_rows
    table = table.add_column(0, "module", pa.array([module] * count, pa.string()))
    table = table.add_column(0, "org", pa.array([org] * count, pa.string()))
    return table.cast(_required(table.schema)), bad


def _required(schema: pa.Schema) -> pa.Schema:
    """`schema` with the key columns and `modified_time` not nullable, as their hints say."""
    return pa.schema(
        [f.with_nullable(False) if f.name in OWN_COLUMNS[:4] else f for f in schema]
    )


def _modified(rows: List[Dict[str, Any]], bad: Dict[int, MalformedEntryError]) -> pa.Array:
    values = [r.get(MODIFIED, MISSING) for r in rows]
    try:
        if all(isinstance(v, str) and len(v) > 19 for v in values):  # with an offset
            return pa.array(values, pa.string()).cast(TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    parsed = []
    for position, value in enumerate(values):
        try:
            parsed.append(parse_time(value) if isinstance(value, str) else None)
        except ValueError:
            parsed.append(None)
        if parsed[-1] is None:
            bad.setdefault(position, MalformedEntryError(MODIFIED, value, NOT_A_TIME))
    return pa.array(parsed, TIMESTAMP)


def _wrong_shape(name: str, value: Any, what: str, position: int,
                 bad: Dict[int, MalformedEntryError]) -> None:  # fmt: skip
    bad.setdefault(position, MalformedEntryError(name, value, f"is not {what}"))


def _lookup_part(
    values: List[Any], part: str, name: str, bad: Dict[int, MalformedEntryError]
) -> pa.Array:
    out: List[Optional[str]] = []
    for position, value in enumerate(values):
        if value is None:
            out.append(None)
        elif isinstance(value, dict):
            item = value.get(part)
            out.append(None if item is None or isinstance(item, (dict, list)) else str(item))
        else:
            _wrong_shape(name, value, "a lookup object", position, bad)
            out.append(None)
    return pa.array(out, pa.string())


def _json_list(values: List[Any], name: str, bad: Dict[int, MalformedEntryError]) -> pa.Array:
    out: List[Optional[str]] = []
    for position, value in enumerate(values):
        if value is None or isinstance(value, list):
            out.append(None if value is None else _dumps(value))
        else:
            _wrong_shape(name, value, "a list", position, bad)
            out.append(None)
    return pa.array(out, pa.string())


def _scalar(
    values: List[Any], arrow: pa.DataType, name: str, bad: Dict[int, MalformedEntryError]
) -> pa.Array:
    """A scalar field's column: Arrow converts the whole page when every value is what the
    type expects; otherwise value by value (objects and lists set their record aside, what
    does not parse is null)."""
    try:
        if arrow in (pa.date32(), TIMESTAMP):
            return pa.array(values, pa.string()).cast(arrow)
        if arrow == DECIMAL:
            return pa.array(values, pa.float64()).cast(DECIMAL)
        return pa.array(values, arrow)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        pass
    out = []
    for position, value in enumerate(values):
        if isinstance(value, (dict, list)):
            _wrong_shape(name, value, "a single value", position, bad)
            value = None
        out.append(_coerced(value, arrow))
    return pa.array(out, arrow)


def _coerced(value: Any, arrow: pa.DataType) -> Any:
    """One value as its column holds it; None when it is not what its type says."""
    if value is None or value == "":
        return None
    if arrow == pa.string():
        return value if isinstance(value, str) else json.dumps(value)
    if arrow == pa.bool_():
        return value if isinstance(value, bool) else None
    if isinstance(value, bool):
        return None
    try:
        if arrow in (pa.date32(), TIMESTAMP):
            return pc.cast(pa.scalar(str(value)), arrow).as_py() if isinstance(value, str) else None
        if arrow == DECIMAL:
            number = Decimal(str(value))
            if not number.is_finite() or abs(number) >= _DECIMAL_LIMIT:
                return None
            return number.quantize(_NINE_PLACES)
        if arrow == pa.float64():
            return float(value)
        number = Decimal(str(value))
        return int(number) if number == number.to_integral_value() else None
    except (ValueError, ArithmeticError, InvalidOperation, pa.ArrowInvalid, TypeError):
        return None


def _dumps(value: Any, leave_out: Optional[str] = None) -> str:
    """JSON text of a value (a record without its `leave_out` key), as compact as Zoho's."""
    if leave_out is not None and isinstance(value, dict):
        value = {k: v for k, v in value.items() if k != leave_out}
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):  # e.g. an integer past 64 bits
        return json.dumps(value, separators=(",", ":"))
