"""The commands' SQL reads of the dataset, through the source's `query` (any dlt destination).

The source keeps `query`, `existing_tables` and `Queryable` (`sources.zoho_crm.warehouse`):
its `Warehouse` reads the destination with them while it extracts. What only the commands
need lives here.
"""

from __future__ import annotations

from typing import Any, List

from dlt.destinations.exceptions import DatabaseUndefinedRelation

from sources.zoho_crm.warehouse import Queryable, query


def query_rows(pipeline: Queryable, sql: str, *args: Any) -> List[tuple]:
    """`query`'s rows; none while its tables do not exist yet."""
    try:
        return query(pipeline, sql, *args)
    except DatabaseUndefinedRelation:
        return []
