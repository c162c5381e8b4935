"""Reading the dataset with plain SQL through the pipeline's own SQL client (any destination)."""

from __future__ import annotations

from typing import Any, List

import dlt
from dlt.destinations.exceptions import DatabaseUndefinedRelation

TABLE_EXISTS = """
SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s
"""


def query_rows(pipeline: dlt.Pipeline, sql: str, *args: Any) -> List[tuple]:
    """Rows of `sql`, whose `{ds}` names the dataset; none while its tables do not exist yet."""
    try:
        with pipeline.sql_client() as client:
            found = client.execute_sql(sql.format(ds=client.fully_qualified_dataset_name()), *args)
            return [tuple(row) for row in found or []]
    except DatabaseUndefinedRelation:
        return []


def table_exists(pipeline: dlt.Pipeline, table: str) -> bool:
    """Whether the dataset holds `table` (asked of the destination, not of the local schema)."""
    with pipeline.sql_client() as client:
        [(count,)] = client.execute_sql(TABLE_EXISTS, pipeline.dataset_name, table)
    return bool(count)
