"""Keep what an earlier run captured when Zoho forgets it.

When a record is purged from the bin, Zoho's `/deleted` entry loses its name, deleter and
creator. dlt's merge replaces whole rows, so before such a row is yielded its details are
looked up in the destination's `deleted_records` table and carried over.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Optional, Sequence

import dlt
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from sources.zoho_crm.records import DETAIL_COLUMNS

TABLE = "deleted_records"


class EarlierDetails:
    """Looks up details of `deleted_records` rows already in the destination; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table_exists: Optional[bool] = None

    def fill(self, module: str, rows: Sequence[Dict[str, Any]]) -> None:
        """Give rows that arrive without details (purged records) the ones captured before."""
        bare = [row for row in rows if all(row[c] is None for c in DETAIL_COLUMNS)]
        if not bare:
            return
        known = self._lookup(module, [row["id"] for row in bare])
        for row in bare:
            earlier = known.get(row["id"])
            if earlier:
                row.update(earlier)

    def _lookup(self, module: str, ids: List[str]) -> Dict[str, Dict[str, Any]]:
        with self._lock:
            if self._table_exists is False:
                return {}
            pipeline = dlt.current.pipeline()
            if pipeline.destination is None:
                self._table_exists = False
                return {}
            columns = ", ".join(DETAIL_COLUMNS)
            marks = ", ".join(["%s"] * len(ids))
            try:
                with pipeline.sql_client() as client:
                    table = client.make_qualified_table_name(TABLE)
                    rows = client.execute_sql(
                        f"SELECT id, {columns} FROM {table} WHERE module = %s AND id IN ({marks})"
                        f" AND ({' OR '.join(f'{c} IS NOT NULL' for c in DETAIL_COLUMNS)})",
                        module,
                        *ids,
                    )
            except DatabaseUndefinedRelation:
                self._table_exists = False  # nothing loaded yet: nothing to keep this run
                return {}
            self._table_exists = True
            return {row[0]: dict(zip(DETAIL_COLUMNS, row[1:], strict=True)) for row in rows or []}
