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


ROW_IDS = ("_dlt_load_id", "_dlt_id")  # what dlt adds to rows it normalizes, Arrow's aside
_STRICT_ROW_IDS = f"""SELECT DISTINCT table_name, column_name FROM information_schema.columns
WHERE table_schema = %s AND column_name IN {ROW_IDS} AND is_nullable = 'NO'"""


def strict_row_ids(pipeline: dlt.Pipeline) -> Dict[str, List[str]]:
    """The `values_<module>` tables whose row ids dlt's schema still holds NOT NULL (left by
    an earlier version; see `loosen_row_ids`) -> those columns."""
    strict: Dict[str, List[str]] = {}
    for table in values_tables(pipeline):
        columns = pipeline.default_schema.get_table(table)["columns"]
        held = [c for c in ROW_IDS if columns.get(c, {}).get("nullable") is False]
        if held:
            strict[table] = held
    return strict


def loosen_row_ids(pipeline: dlt.Pipeline) -> int:
    """Let `values_<module>` tables of earlier versions take rows without dlt's row ids.

    Earlier versions loaded record values from Python rows, so dlt gave their tables (and the
    staging copies) `_dlt_load_id` and `_dlt_id`, both NOT NULL; the values are now loaded as
    Arrow tables, which carry neither, and every load into such a table would fail, run after
    run. The constraints are dropped (the columns and their old values stay), and dlt's schema
    then says the columns are nullable: a staging table dlt makes again is made without them,
    and later calls find nothing to do without asking the destination (the schema travels with
    the dataset, as `old_names`' moves are remembered by the state). Returns how many columns
    were loosened; safe to repeat, nothing to do on a new warehouse."""
    strict = strict_row_ids(pipeline)
    if not strict:
        return 0
    loosened = 0
    with pipeline.sql_client() as client:
        for dataset in (client.dataset_name, client.staging_dataset_name):
            with client.with_alternative_dataset_name(dataset):
                for table, column in client.execute_sql(_STRICT_ROW_IDS, dataset) or []:
                    if table.startswith(VALUES_PREFIX) and "__" not in table:  # not child tables
                        client.execute_sql(
                            f"ALTER TABLE {client.make_qualified_table_name(table)} ALTER "
                            f"COLUMN {client.escape_column_name(column)} DROP NOT NULL"
                        )
                        loosened += 1
    schema = pipeline.default_schema
    for table, columns in strict.items():
        loose = {c: {"name": c, "nullable": True} for c in columns}
        schema.update_table({"name": table, "columns": loose})
    pipeline.schemas.save_schema(schema)
    return loosened
