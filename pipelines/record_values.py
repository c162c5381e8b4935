"""Record values in the analyst layer: the `deleted_record_values` view over every
`values_<module>` table (see `sources.zoho_crm.values`)."""

from __future__ import annotations

from typing import List

import dlt

from sources.zoho_crm.values import VALUES_PREFIX

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
