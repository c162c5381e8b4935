"""What earlier runs loaded, read back from the destination during extraction.

When a record is purged from the bin, Zoho's `/deleted` entry loses its name, deleter and
creator, and dlt's merge replaces whole rows: such rows get the details captured earlier before
they are yielded. Entries of a list's boundary second that are already held are dropped (see
`passes`). Related records are fetched from a backlog of bin entries the warehouse holds
without a `related_fetches` row (see `related`). And reconciliation compares the bin with the
ids the warehouse holds as `recycle` to find restored records: it reads ids only (an Arrow
array per module), and whole rows only of the records it found restored.

Pending packages of an interrupted run are loaded before extraction starts (see
`pipelines.run.run`), so what is read here is everything earlier runs captured.

`query` is the one way the project reads the destination with SQL (the commands too, through
`pipelines.sql`), through the pipeline's own SQL client: any dlt destination.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any, Dict, Iterator, List, Optional, Protocol, Sequence, Set, Tuple

import dlt
import pyarrow as pa
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from .records import DELETED_RECORDS_SCHEMA, DETAIL_COLUMNS, blank_personal

RECORDS_TABLE = "deleted_records"
BIN_TABLE = "recycle_bin"  # the table, and the resource that reads what is new (`recycle_bin`)
FETCHES_TABLE = "related_fetches"
ERASURES_TABLE = "erasures"  # tombstones of records erased on request (`zoho-deleted forget`)
# the tables whose rows of a record erased on request are blanked, and the column naming its module
BLANKED = {RECORDS_TABLE: "module", BIN_TABLE: "module__api_name"}
ROWS_PER_QUERY = 500  # ids in one IN list
# what `Warehouse` queries name its tables
TABLES = {
    name: "{ds}." + table
    for name, table in (
        ("records", RECORDS_TABLE), ("bin", BIN_TABLE), ("fetches", FETCHES_TABLE),
        ("erasures", ERASURES_TABLE),
    )
}  # fmt: skip
# the details of a `deleted_records` row that a `recycle_bin` row has too, by the same names
BIN_DETAILS = ("display_name", "deleted_by__name", "deleted_by__id")
ID_SEPARATOR = "\x1f"  # ASCII's unit separator: no Zoho id holds it
IN_IDS = "id IN (SELECT unnest(string_to_array(%s, %s)))"  # the ids joined by ID_SEPARATOR
ERASED_SQL = "SELECT module, id FROM {erasures} WHERE org = %s"
TABLES_SQL = "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"


class Queryable(Protocol):
    """What `query` reads through: a dlt pipeline, or a read-only command's reading of the
    warehouse (`pipelines.reading`)."""

    dataset_name: str

    def sql_client(self) -> Any: ...


def query(pipeline: Queryable, sql: str, *args: Any, as_arrow: bool = False) -> Any:
    """Rows of `sql` as tuples (an Arrow table `as_arrow`), its `{ds}` naming the dataset.

    Raises `DatabaseUndefinedRelation` while a table it reads does not exist.
    """
    with pipeline.sql_client() as client:
        sql = sql.format(ds=client.fully_qualified_dataset_name())
        if as_arrow:
            with client.execute_query(sql, *args) as cursor:
                return cursor.arrow()
        return [tuple(row) for row in client.execute_sql(sql, *args) or []]


def existing_tables(pipeline: Queryable) -> Set[str]:
    """The dataset's tables and views, as the destination (not the local schema) has them."""
    return {name for (name,) in query(pipeline, TABLES_SQL, pipeline.dataset_name)}


class Warehouse:
    """Reads the destination's `deleted_records` table; thread-safe, one query at a time."""

    def __init__(self, org: str) -> None:
        self.org = org
        self._lock = threading.Lock()
        self._tables_at_start: Optional[Set[str]] = None
        self._erased: Optional[Set[Tuple[str, str]]] = None

    def erased(self) -> Set[Tuple[str, str]]:
        """(module, id) of this org's records erased on request (`erasures`), read once a run."""
        if self._erased is None:
            found: List[Tuple[Any, ...]] = []
            if ERASURES_TABLE in self._tables():
                try:
                    found = self._query(ERASED_SQL, [self.org])
                except DatabaseUndefinedRelation:
                    pass  # dropped since the run began
            self._erased = {(str(module), str(rid)) for module, rid in found}
        return self._erased

    def blank_erased(self, table: str, rows: Sequence[Dict[str, Any]]) -> None:
        """Blank what `rows` of `table` (`deleted_records` or `recycle_bin`) hold of records
        erased on request, but their keys, user ids and times (`records.ERASED_KEEPS`)."""
        erased = self.erased()
        if not erased:
            return
        module_column = BLANKED[table]
        for row in rows:
            if (row[module_column], row["id"]) in erased:
                blank_personal(table, row)

    def fill_details(self, module: str, rows: Sequence[Dict[str, Any]]) -> None:
        """Give rows that arrive without details (purged records) the ones the warehouse holds,
        then blank the rows of records erased on request (`blank_erased`): what it looked up
        of them is their user ids at most.

        On every pass, the first included (dlt's `drop` of the state, or a pass read again from
        its top, re-reads records captured before): from `deleted_records`, else from
        `recycle_bin` (name and deleter; the bin does not say who created a record, and its
        owner is not the creator). One query for the rows, none while neither table exists.
        """
        self._fill_details(module, rows)
        self.blank_erased(RECORDS_TABLE, rows)

    def _fill_details(self, module: str, rows: Sequence[Dict[str, Any]]) -> None:
        bare = [row for row in rows if all(row[c] is None for c in DETAIL_COLUMNS)]
        if not bare:
            return
        tables = self._tables()
        # the ids as one parameter: DuckDB binds each parameter slowly (~0.1 ms apiece)
        ids = (ID_SEPARATOR.join(row["id"] for row in bare), ID_SEPARATOR)
        parts: List[str] = []
        args: List[Any] = []
        if RECORDS_TABLE in tables:
            with_details = " OR ".join(f"{c} IS NOT NULL" for c in DETAIL_COLUMNS)
            parts.append(
                f"SELECT id, 0, {', '.join(DETAIL_COLUMNS)} FROM {{records}} "
                f"WHERE org = %s AND module = %s AND {IN_IDS} AND ({with_details})"
            )
            args += [self.org, module, *ids]
        if BIN_TABLE in tables:
            from_bin = ", ".join(c if c in BIN_DETAILS else "NULL" for c in DETAIL_COLUMNS)
            parts.append(
                f"SELECT id, 1, {from_bin} FROM {{bin}} "
                f"WHERE org = %s AND module__api_name = %s AND {IN_IDS}"
            )
            args += [self.org, module, *ids]
        if not parts:
            return
        try:
            found = self._query(" UNION ALL ".join(parts) + " ORDER BY 2", args)
        except DatabaseUndefinedRelation:  # dropped since the run began: nothing there
            return
        held: Dict[str, Dict[str, Any]] = {}
        for rid, _, *values in found:  # deleted_records first: the bin fills only its gaps
            known = held.setdefault(rid, {})
            for column, value in zip(DETAIL_COLUMNS, values, strict=True):
                if known.get(column) is None:
                    known[column] = value
        for row in bare:
            row.update(held.get(row["id"], {}))

    def _tables(self) -> Set[str]:
        """The destination's tables when this run first asked (a run has one `Warehouse`: see
        `ZohoRun`). A table made since holds only this run's rows, whose purged entries came
        bare as well: a first run looks nothing up (at 1,000,000 records the look-ups cost
        time and memory for nothing: see docs/performance.md)."""
        with self._lock:
            if self._tables_at_start is None:
                pipeline = dlt.current.pipeline()
                found = existing_tables(pipeline) if pipeline.destination is not None else set()
                self._tables_at_start = found
            return self._tables_at_start

    def unseen(
        self, module: Optional[str], rows: List[Dict[str, Any]], since: Optional[datetime]
    ) -> List[Dict[str, Any]]:
        """`rows` less the boundary ones (at or before `since`) held exactly as they are.

        `module` names the `deleted_records` module; None means the rows are bin entries.
        """
        boundary = [r for r in rows if since is not None and r["deleted_time"] <= since]
        if not boundary:
            return rows
        marks = ", ".join(["%s"] * len(boundary))
        ids = [r["id"] for r in boundary]
        if module is None:
            found = self._select(
                "bin",
                ("id", "deleted_time"),
                f"org = %s AND deleted_time >= %s AND id IN ({marks})",
                self.org,
                min(r["deleted_time"] for r in boundary),
                *ids,
            )
            held = {(f["id"], None, f["deleted_time"]) for f in found}
        else:
            found = self._select(
                "records",
                ("id", "type", "deleted_time"),
                # the time lets DuckDB skip whole row groups (zone maps): one module's rows
                # were loaded newest first
                f"org = %s AND module = %s AND deleted_time >= %s AND id IN ({marks})",
                self.org,
                module,
                min(r["deleted_time"] for r in boundary),
                *ids,
            )
            held = {(f["id"], f["type"], f["deleted_time"]) for f in found}
        return [
            r
            for r in rows
            if (r["id"], None if module is None else r["type"], r["deleted_time"]) not in held
        ]

    def related_backlog(
        self, lists: Sequence[Tuple[str, str]], limit: int
    ) -> Iterator[Dict[str, str]]:
        """Up to `limit` (bin entry, related list) pairs still in the bin and never fetched,
        soonest-expiring first."""
        columns = ("module", "parent_id", "related_list")
        select = "b.module__api_name, b.id, l.related_list"
        order = f"ORDER BY r.expires_at, b.id, l.related_list LIMIT {int(limit)}"
        for row in self._backlog(lists, select, order):
            yield dict(zip(columns, row, strict=True))

    def related_backlog_size(self, lists: Sequence[Tuple[str, str]]) -> int:
        """How many (bin entry, related list) pairs are still to fetch."""
        found = self._backlog(lists, "count(*)", "")
        return int(found[0][0]) if found else 0

    def _backlog(
        self, lists: Sequence[Tuple[str, str]], select: str, tail: str
    ) -> List[Tuple[Any, ...]]:
        if not lists:
            return []
        values = ", ".join(["(%s, %s)"] * len(lists))
        sql = f"""
            WITH lists (module, related_list) AS (VALUES {values})
            SELECT {select}
            FROM {{bin}} b
            JOIN lists l ON l.module = b.module__api_name
            JOIN {{records}} r ON r.org = b.org AND r.module = b.module__api_name AND r.id = b.id
            WHERE b.org = %s AND r.type = 'recycle' AND r.restored_at IS NULL
              AND r.expires_at > %s {{not_fetched}}
            {tail}
        """
        not_fetched = (
            "AND NOT EXISTS (SELECT 1 FROM {fetches} f WHERE f.org = b.org "
            "AND f.parent_module = b.module__api_name AND f.parent_id = b.id "
            "AND f.related_list = l.related_list)"
        )
        args = [v for pair in lists for v in pair] + [self.org, datetime.now(UTC)]
        try:
            return self._query(sql.replace("{not_fetched}", not_fetched), args)
        except DatabaseUndefinedRelation:
            try:  # nothing fetched yet: no related_fetches table
                return self._query(sql.replace("{not_fetched}", ""), args)
            except DatabaseUndefinedRelation:  # nothing loaded at all
                return []

    def held_ids(self, module: str) -> pa.Array:
        """Ids of this org's `module` rows held as `recycle` and not restored."""
        sql = (
            "SELECT id FROM {records} WHERE org = %s AND module = %s AND type = 'recycle' "
            "AND restored_at IS NULL"
        )
        try:
            table = self._query(sql, (self.org, module), as_arrow=True)
        except DatabaseUndefinedRelation:
            return pa.array([], pa.string())
        return table.column("id").combine_chunks().cast(pa.string())  # as Zoho's ids are read

    def bin_ids(self) -> pa.Array:
        """Ids of every `recycle_bin` row of this org."""
        try:
            table = self._query("SELECT id FROM {bin} WHERE org = %s", (self.org,), as_arrow=True)
        except DatabaseUndefinedRelation:
            return pa.array([], pa.string())
        return table.column("id").combine_chunks().cast(pa.string())

    def rows(self, module: str, ids: Sequence[str]) -> List[Dict[str, Any]]:
        """Whole rows of `module` with these ids (a merge replaces whole rows)."""
        found: List[Dict[str, Any]] = []
        for start in range(0, len(ids), ROWS_PER_QUERY):
            batch = ids[start : start + ROWS_PER_QUERY]
            found += self._select(
                "records",
                DELETED_RECORDS_SCHEMA.names,
                f"org = %s AND module = %s AND id IN ({', '.join(['%s'] * len(batch))})",
                self.org,
                module,
                *batch,
            )
        return found

    def _select(
        self, table: str, columns: Sequence[str], where: str, *args: Any
    ) -> List[Dict[str, Any]]:
        """`columns` of `table` (`records` or `bin`, as `_query` names them) where `where`."""
        sql = f"SELECT {', '.join(columns)} FROM {{{table}}} WHERE {where}"
        try:
            found = self._query(sql, args)
        except DatabaseUndefinedRelation:
            return []  # nothing loaded yet: nothing to read
        return [dict(zip(columns, row, strict=True)) for row in found]

    def _query(self, sql: str, args: Sequence[Any], as_arrow: bool = False) -> Any:
        """`query` on the running pipeline's destination; `{records}`, `{bin}` and
        `{fetches}` name its tables."""
        pipeline = dlt.current.pipeline()
        if pipeline.destination is None:
            return pa.table({"id": pa.array([], pa.string())}) if as_arrow else []
        with self._lock:
            return query(pipeline, sql.format(**TABLES), *args, as_arrow=as_arrow)
