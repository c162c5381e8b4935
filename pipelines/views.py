"""The analyst layer: views created in the dataset after every load.

Plain SQL that DuckDB and PostgreSQL both accept; each view is dropped and created again so a
new column in the tables below never blocks it. On DuckDB a view names its tables without the
schema: DuckDB looks them up in the view's own schema, so the views work in any client that
opens the file, whatever catalog name it gives it (the file's name, or an ATTACH alias).
"""

from __future__ import annotations

import logging
from typing import Dict, List

import dlt
from dlt.destinations.exceptions import DatabaseException

from pipelines.incidents import REVIEWS_TABLE, incidents_select
from pipelines.record_values import VIEW as VALUES_VIEW
from pipelines.record_values import deleted_values_select
from sources.zoho_crm.events import EVENTS_TABLE
from sources.zoho_crm.related import RELATED_TABLE
from sources.zoho_crm.warehouse import RECORDS_TABLE

logger = logging.getLogger(__name__)
TESTED_DESTINATIONS = ("duckdb", "postgres")
NEEDED = (RECORDS_TABLE, EVENTS_TABLE)
_RELATED_KEYS = {"org", "parent_module", "parent_id", "related_list", "id"}

EXPIRING_SOON = """
SELECT org, module, id, display_name, deleted_by__name AS deleted_by, deleted_time, expires_at
FROM {records}
WHERE type = 'recycle' AND restored_at IS NULL
  AND expires_at >= CURRENT_TIMESTAMP AND expires_at < CURRENT_TIMESTAMP + INTERVAL '7 days'
ORDER BY expires_at, org, module, id
"""

# The day of each deletion: each `binned` event (a record deleted, restored and deleted again
# has two) where a run saw the record in the bin (a purge moves Zoho's deleted_time to the
# purge), else Zoho's deleted_time. Days are UTC days; the deleter is the latest one.
DELETIONS_DAILY = """
SELECT CAST(timezone('UTC', COALESCE(b.event_time, r.deleted_time)) AS DATE) AS day,
       r.org,
       r.module,
       r.deleted_by__name AS deleted_by,
       count(*) AS deletions
FROM {records} r
LEFT JOIN {events} b
  ON b.org = r.org AND b.module = r.module AND b.id = r.id AND b.event = 'binned'
GROUP BY 1, 2, 3, 4
"""

DELETED_WITH_RELATED = """
SELECT r.org, r.module, r.id, r.type, r.display_name, r.deleted_time,
       r.deleted_by__name AS deleted_by, {related_columns}
FROM {records} r
{related_join}
"""


def _related_columns(pipeline: dlt.Pipeline) -> List[str]:
    schema = pipeline.default_schema
    if RELATED_TABLE not in schema.tables:
        return []
    columns = schema.get_table_columns(RELATED_TABLE)
    return [c for c in columns if c not in _RELATED_KEYS and not c.startswith("_dlt")]


def view_sql(pipeline: dlt.Pipeline, prefix: str) -> Dict[str, str]:
    """Each view's SELECT, for the tables the dataset holds now; `prefix` qualifies tables."""
    extra = _related_columns(pipeline)
    if RELATED_TABLE in pipeline.default_schema.tables:
        related_columns = ", ".join(
            [
                "rel.related_list",
                "rel.id AS related_id",
                *(f"rel.{c} AS related_{c}" for c in extra),
            ]
        )
        related_join = (
            f"LEFT JOIN {prefix}{RELATED_TABLE} rel "
            "ON rel.org = r.org AND rel.parent_module = r.module AND rel.parent_id = r.id"
        )
    else:  # no related lists configured yet: same shape, nothing related
        related_columns = (
            "CAST(NULL AS VARCHAR) AS related_list, CAST(NULL AS VARCHAR) AS related_id"
        )
        related_join = ""
    return {
        "expiring_soon": EXPIRING_SOON.format(records=f"{prefix}deleted_records"),
        "deletions_daily": DELETIONS_DAILY.format(
            records=f"{prefix}deleted_records", events=f"{prefix}deletion_events"
        ),
        "deleted_with_related": DELETED_WITH_RELATED.format(
            records=f"{prefix}deleted_records",
            related_columns=related_columns,
            related_join=related_join,
        ),
        "deletion_incidents": incidents_select(
            prefix, REVIEWS_TABLE in pipeline.default_schema.tables
        ),
        VALUES_VIEW: deleted_values_select(pipeline, prefix),
    }


def create_views(pipeline: dlt.Pipeline) -> None:
    """(Re)create the analyst views, once the tables they read exist."""
    tables = pipeline.default_schema.tables
    if not all(t in tables and tables[t].get("columns") for t in NEEDED):
        return
    with pipeline.sql_client() as client:
        dataset = client.capabilities.escape_identifier(pipeline.dataset_name)
        on_duckdb = pipeline.destination.destination_type == "dlt.destinations.duckdb"
        for name, select in view_sql(pipeline, "" if on_duckdb else f"{dataset}.").items():
            try:
                client.execute_sql(f"DROP VIEW IF EXISTS {dataset}.{name}")
                client.execute_sql(f"CREATE VIEW {dataset}.{name} AS {select}")
            except DatabaseException as error:
                if pipeline.destination.destination_name in TESTED_DESTINATIONS:
                    raise
                # The data is loaded; a warehouse that spells this SQL otherwise lacks the view.
                logger.warning("view %s not created on %s: %s", name, dataset, error)
