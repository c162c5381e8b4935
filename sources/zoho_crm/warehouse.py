"""What earlier runs loaded, read back from the destination during extraction.

Two jobs need it. When a record is purged from the bin, Zoho's `/deleted` entry loses its
name, deleter and creator, and dlt's merge replaces whole rows: such rows get the details
captured earlier before they are yielded. And reconciliation compares the bin with the rows
the warehouse holds as `recycle` to find restored records.

Pending packages of an interrupted run are loaded before extraction starts (see
`pipelines.zoho_crm_deleted.run`), so what is read here is everything earlier runs captured.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Optional, Sequence

import dlt
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from sources.zoho_crm.records import DELETED_RECORDS_SCHEMA, DETAIL_COLUMNS

TABLE = "deleted_records"


class Warehouse:
    """Reads the destination's `deleted_records` table; thread-safe, one query at a time."""

    def __init__(self, org: str) -> None:
        self.org = org
        self._lock = threading.Lock()
        self._table_exists: Optional[bool] = None

    def fill_details(self, module: str, rows: Sequence[Dict[str, Any]]) -> None:
        """Give rows that arrive without details (purged records) the ones captured before."""
        bare = [row for row in rows if all(row[c] is None for c in DETAIL_COLUMNS)]
        if not bare:
            return
        with_details = " OR ".join(f"{c} IS NOT NULL" for c in DETAIL_COLUMNS)
        marks = ", ".join(["%s"] * len(bare))
        known = self._select(
            ("id", *DETAIL_COLUMNS),
            f"org = %s AND module = %s AND id IN ({marks}) AND ({with_details})",
            self.org,
            module,
            *[row["id"] for row in bare],
        )
        by_id = {row.pop("id"): row for row in known}
        for row in bare:
            row.update(by_id.get(row["id"], {}))

    def binned(self, modules: Sequence[str]) -> List[Dict[str, Any]]:
        """Every row of this org held as `recycle` and not restored, for the given modules."""
        marks = ", ".join(["%s"] * len(modules))
        return self._select(
            DELETED_RECORDS_SCHEMA.names,
            f"org = %s AND type = 'recycle' AND restored_at IS NULL AND module IN ({marks})",
            self.org,
            *modules,
        )

    def _select(self, columns: Sequence[str], where: str, *args: Any) -> List[Dict[str, Any]]:
        with self._lock:
            if self._table_exists is False:
                return []
            pipeline = dlt.current.pipeline()
            if pipeline.destination is None:
                return []
            try:
                with pipeline.sql_client() as client:
                    table = client.make_qualified_table_name(TABLE)
                    found = client.execute_sql(
                        f"SELECT {', '.join(columns)} FROM {table} WHERE {where}", *args
                    )
            except DatabaseUndefinedRelation:
                self._table_exists = False  # nothing loaded yet: nothing to read this run
                return []
            self._table_exists = True
            return [dict(zip(columns, row, strict=True)) for row in found or []]
