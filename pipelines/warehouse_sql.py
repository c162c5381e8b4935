"""Reading the dataset with plain SQL through the pipeline's own SQL client (any destination)."""

from __future__ import annotations

from typing import Any, List, Set

import dlt
from dlt.destinations.exceptions import DatabaseUndefinedRelation

TABLES = "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"


def query_rows(pipeline: dlt.Pipeline, sql: str, *args: Any) -> List[tuple]:
    """Rows of `sql`, whose `{ds}` names the dataset; none while its tables do not exist yet."""
    try:
        with pipeline.sql_client() as client:
            found = client.execute_sql(sql.format(ds=client.fully_qualified_dataset_name()), *args)
            return [tuple(row) for row in found or []]
    except DatabaseUndefinedRelation:
        return []


def existing_tables(pipeline: dlt.Pipeline) -> Set[str]:
    """The dataset's tables and views, as the destination (not the local schema) has them."""
    with pipeline.sql_client() as client:
        return {name for (name,) in client.execute_sql(TABLES, pipeline.dataset_name) or []}
