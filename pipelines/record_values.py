"""Record values in the analyst layer: the `deleted_record_values` view over every
`values_<module>` table (see `sources.zoho_crm.values`)."""

from __future__ import annotations

from typing import Any, Dict, List

import dlt
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from pipelines.sql import query_rows
from sources.zoho_crm.values import VALUES_PREFIX
from sources.zoho_crm.warehouse import existing_tables

VIEW = "deleted_record_values"
_COLUMNS = "r.org, r.module, r.id, r.display_name, r.type, r.deleted_time"


def values_tables(pipeline: dlt.Pipeline) -> List[str]:
    """The `values_<module>` tables the dataset holds (not their child tables)."""
    tables = pipeline.default_schema.tables
    return sorted(
        name
        for name, table in tables.items()
        if name.startswith(VALUES_PREFIX) and not table.get("parent") and table.get("columns")
    )


def deleted_values_select(pipeline: dlt.Pipeline, prefix: str) -> str:
    """Every deleted (not restored) record whose values were captured: its deletion and the
    last captured values, a JSON object keyed by Zoho's field API names."""
    selects = [
        f"SELECT {_COLUMNS}, v.modified_time AS values_modified_time, "
        f'v.field_values AS "values" '
        f"FROM {prefix}deleted_records r JOIN {prefix}{table} v "
        "ON v.org = r.org AND v.module = r.module AND v.id = r.id "
        "WHERE r.restored_at IS NULL"
        for table in values_tables(pipeline)
    ]
    if not selects:  # no values captured yet: the same columns, no rows
        return (
            f"SELECT {_COLUMNS}, CAST(NULL AS TIMESTAMPTZ) AS values_modified_time, "
            f'CAST(NULL AS JSON) AS "values" FROM {prefix}deleted_records r WHERE FALSE'
        )
    return "\nUNION ALL\n".join(selects)


COVERAGE = """
SELECT r.module, count(v.id), count(*) - count(v.id)
FROM {{ds}}.deleted_records r
LEFT JOIN {{ds}}.{table} v ON v.org = r.org AND v.module = r.module AND v.id = r.id
WHERE r.org = %s AND r.restored_at IS NULL
  AND r.module IN (SELECT DISTINCT module FROM {{ds}}.{table} WHERE org = %s)
GROUP BY r.module
"""


def values_coverage(reading: Any, org: str) -> Dict[str, Dict[str, int]]:
    """Per module whose values are captured: its deleted records with values, and those
    deleted before their values were ever captured. `reading`: a pipeline or a `Reading`
    (the tables are those the destination holds; `values_<module>__*` are child tables)."""
    coverage: Dict[str, Dict[str, int]] = {}
    try:
        tables = existing_tables(reading)
    except DatabaseUndefinedRelation:
        return coverage
    for table in sorted(t for t in tables if t.startswith(VALUES_PREFIX) and "__" not in t):
        for module, kept, missed in query_rows(reading, COVERAGE.format(table=table), org, org):
            coverage[module] = {"with_values": int(kept), "deleted_before_capture": int(missed)}
    return coverage


# dlt's normalizer adds its row ids to Arrow tables when these are set (its public settings).
ROW_IDS = {
    "normalize.parquet_normalizer.add_dlt_load_id": True,
    "normalize.parquet_normalizer.add_dlt_id": True,
}


def row_id_settings(pipeline: dlt.Pipeline) -> Dict[str, Any]:
    """The normalizer settings a run's loads need: dlt's row ids on Arrow rows when a
    `values_<module>` table of an earlier version has them, none otherwise.

    Earlier versions loaded record values from Python rows, so dlt gave those tables (and
    their staging copies) `_dlt_load_id` and `_dlt_id`, NOT NULL; values now load as Arrow
    tables, which carry neither. Without them every load into such a table fails, run after
    run: DuckDB refuses the NULLs, and PostgreSQL's CSV copy, whose header follows the
    table's columns, shifts every value by two columns. With them the old tables load as
    before (new tables of the same run get the two columns too, and keep them)."""
    schema = pipeline.default_schema if pipeline.default_schema_name else None
    if schema is None:
        return {}
    old = any("_dlt_id" in schema.get_table_columns(t) for t in values_tables(pipeline))
    return dict(ROW_IDS) if old else {}
