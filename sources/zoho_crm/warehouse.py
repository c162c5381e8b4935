"""What earlier runs loaded, read back from the destination during extraction.

Two jobs need it. When a record is purged from the bin, Zoho's `/deleted` entry loses its
name, deleter and creator, and dlt's merge replaces whole rows: such rows get the details
captured earlier before they are yielded. And reconciliation compares the bin with the ids
the warehouse holds as `recycle` to find restored records: it reads ids only (an Arrow array
per module), and whole rows only of the records it found restored.

Pending packages of an interrupted run are loaded before extraction starts (see
`pipelines.zoho_crm_deleted.run`), so what is read here is everything earlier runs captured.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Optional, Sequence

import dlt
import pyarrow as pa
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from sources.zoho_crm.records import DELETED_RECORDS_SCHEMA, DETAIL_COLUMNS

TABLE = "deleted_records"
ROWS_PER_QUERY = 500  # ids in one IN list


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

    def held_ids(self, module: str) -> pa.Array:
        """Ids of this org's `module` rows held as `recycle` and not restored."""
        table = self._query(
            "SELECT id FROM {table} WHERE org = %s AND module = %s AND type = 'recycle' "
            "AND restored_at IS NULL",
            self.org,
            module,
        )
        if table is None:
            return pa.array([], pa.string())
        return table.column("id").combine_chunks().cast(pa.string())  # as Zoho's ids are read

    def rows(self, module: str, ids: Sequence[str]) -> List[Dict[str, Any]]:
        """Whole rows of `module` with these ids (a merge replaces whole rows)."""
        found: List[Dict[str, Any]] = []
        for start in range(0, len(ids), ROWS_PER_QUERY):
            batch = ids[start : start + ROWS_PER_QUERY]
            found += self._select(
                DELETED_RECORDS_SCHEMA.names,
                f"org = %s AND module = %s AND id IN ({', '.join(['%s'] * len(batch))})",
                self.org,
                module,
                *batch,
            )
        return found

    def _select(self, columns: Sequence[str], where: str, *args: Any) -> List[Dict[str, Any]]:
        table = self._query(f"SELECT {', '.join(columns)} FROM {{table}} WHERE {where}", *args)
        return table.to_pylist() if table is not None else []

    def _query(self, sql: str, *args: Any) -> Optional[pa.Table]:
        """`sql` (its `{table}` the qualified deleted_records) as Arrow; None before any load."""
        with self._lock:
            if self._table_exists is False:
                return None
            pipeline = dlt.current.pipeline()
            if pipeline.destination is None:
                return None
            try:
                with pipeline.sql_client() as client:
                    table = client.make_qualified_table_name(TABLE)
                    with client.execute_query(sql.format(table=table), *args) as cursor:
                        found = cursor.arrow()
            except DatabaseUndefinedRelation:
                self._table_exists = False  # nothing loaded yet: nothing to read this run
                return None
            self._table_exists = True
            return found
