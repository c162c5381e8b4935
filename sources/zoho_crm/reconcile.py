"""Reconciliation: the full pass that incremental reads cannot make.

A restore is an absence: the record leaves the bin and no incremental answer mentions it. So,
every `reconcile_every` (or on demand), one pass
1. lists the bin in full, keeping only ids (and loading the entries `recycle_bin` lacks);
2. compares those, per module, with the ids the warehouse holds as `recycle`: held but not
   listed may have been restored; listed but not held was missed by incremental reads;
3. asks the bin for the held-but-unlisted ids (`?ids=`): one still there was only skipped by
   the listing (Zoho purging older entries shifts later ones up a page);
4. re-reads `/deleted` since the last pass (less a margin): a record there was purged or
   deleted again since, not restored; and it loads the records deleted since;
5. asks the bin by id for the missed entries `/deleted` did not show, and loads them.
Only a record absent from the listing, absent when asked for by id and then absent from
`/deleted` gets `restored_at`: a restore is permanent, so it is inferred only when certain
(asking by id before re-reading `/deleted` leaves no moment in which a purge goes unseen).
Memory holds ids, never whole rows of the bin or of the warehouse.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Dict, Iterator, List, Set, Tuple

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.sources import DltResource

from .client import ZohoClient
from .errors import ZohoApiError, ZohoMalformedError
from .events import EVENTS_HINTS, EmittedEvents, events_of, restored_events
from .records import (
    DELETED_RECORDS_SCHEMA,
    RECYCLE_BIN_SCHEMA,
    accepted,
    deleted_row,
    to_table,
    zoho_time,
)
from .recycle_bin import BIN_HINTS, PATH, bin_rows
from .warehouse import BIN_TABLE, RECORDS_TABLE, Warehouse

# Re-read a little before the last pass started: clocks and Zoho's indexing are not exact.
MARGIN = timedelta(hours=1)
IDS_PER_CALL = 100  # ids asked for in one `?ids=` call (keeps the URL short)
Key = Tuple[str, str]

RECYCLE_BIN_HINTS = dlt.mark.make_hints(**BIN_HINTS)


def reconcile_resource(
    client: ZohoClient,
    modules: List[str],
    warehouse: Warehouse,
    emitted: EmittedEvents,
    run: Any,
    every: timedelta,
    force: bool,
) -> DltResource:
    @dlt.resource(
        name="reconcile",
        table_name=RECORDS_TABLE,
        primary_key=("org", "module", "id"),
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
    )  # deleted_records' column hints come from the per-module resources; variants inherit these
    def reconcile() -> Iterator[Any]:
        """Restores, and anything incremental reads missed; runs when due or when forced."""
        state = dlt.current.resource_state()
        now = datetime.now(UTC)
        last = state.get("last_started_at")
        if last is None and not force:
            # The first run reads the bin and /deleted in full anyway; reconcile from here on.
            state["last_started_at"] = now.isoformat()
            return
        if not force and now - datetime.fromisoformat(last) < every:
            return
        since = datetime.fromisoformat(last) - MARGIN if last else None

        try:
            yield from _pass(client, modules, warehouse, emitted, run, since, now)
        except ZohoMalformedError as error:  # no restore is inferred from a list not read
            run.module_malformed(error.module or BIN_TABLE, error)
            return
        except ZohoApiError as error:
            if not error.is_permission:
                raise
            run.module_failed(BIN_TABLE, error)  # no pass without the bin: next run
            return
        state["last_started_at"] = now.isoformat()

    return reconcile


def _pass(
    client: ZohoClient,
    modules: List[str],
    warehouse: Warehouse,
    emitted: EmittedEvents,
    run: Any,
    since: Any,
    now: datetime,
) -> Iterator[Any]:
    """Steps 1-5 of the module docstring, then the restores."""
    listed: Dict[str, List[pa.Array]] = {m: [] for m in modules}
    held_in_bin = warehouse.bin_ids()
    params = {"sort_by": "deleted_time", "sort_order": "asc"}
    for page in client.pages(PATH, "recycle_bin", params, kind="reconcile"):
        rows, _ = bin_rows(warehouse.org, page, modules, now, run)
        warehouse.blank_erased(BIN_TABLE, rows)
        table = to_table(rows, RECYCLE_BIN_SCHEMA)
        if table.num_rows:
            for module in set(table["module__api_name"].to_pylist()):
                mine = pc.equal(table["module__api_name"], module)
                listed[module].append(table["id"].filter(mine).combine_chunks())
            # only entries the bin's own reads missed: the pass's package stays small
            new = table.filter(pc.invert(pc.is_in(table["id"], value_set=held_in_bin)))
            if new.num_rows:
                yield _variant(new, RECYCLE_BIN_HINTS)
    del held_in_bin

    unlisted, missed = _compare(warehouse, listed)
    del listed
    for item in _by_id(client, warehouse.org, sorted(rid for _, rid in unlisted), run):
        unlisted.discard((item["module__api_name"], item["id"]))  # the listing skipped it

    for module in modules:
        seen: List[pa.Array] = []
        try:
            for table in _reread(client, warehouse, module, since, now, run):
                seen.append(table["id"].combine_chunks())
                unlisted.difference_update((module, rid) for rid in table["id"].to_pylist())
                yield table
                yield _variant(emitted.fresh(events_of(table)), EVENTS_HINTS)
        except ZohoApiError as error:
            if not error.is_permission:
                raise
            run.module_failed(module, error)  # no restore is inferred for it
            unlisted = {key for key in unlisted if key[0] != module}
        missed[module] = _without(missed[module], seen)

    # an entry Zoho sent malformed this run may be in the bin still: no restore is inferred
    set_aside = run.rejected_ids()
    unlisted = {key for key in unlisted if key[1] not in set_aside}
    yield from _restores(warehouse, emitted, unlisted, now)
    ids = [rid for module in modules for rid in missed[module].to_pylist()]
    rows = [_record_from_bin(r) for r in _by_id(client, warehouse.org, ids, run)]
    warehouse.blank_erased(RECORDS_TABLE, rows)
    if rows:  # missed by incremental reads, still in the bin, not in /deleted since
        table = to_table(rows, DELETED_RECORDS_SCHEMA)
        yield table
        yield _variant(emitted.fresh(events_of(table)), EVENTS_HINTS)


def _without(ids: pa.Array, chunks: List[pa.Array]) -> pa.Array:
    if not chunks or not len(ids):
        return ids
    return ids.filter(pc.invert(pc.is_in(ids, value_set=pa.concat_arrays(chunks))))


def _compare(
    warehouse: Warehouse, listed: Dict[str, List[pa.Array]]
) -> Tuple[Set[Key], Dict[str, pa.Array]]:
    """Per module: keys held as `recycle` but not listed, and ids listed but not held."""
    unlisted: Set[Key] = set()
    missed: Dict[str, pa.Array] = {}
    for module, chunks in listed.items():
        in_bin = pa.concat_arrays(chunks) if chunks else pa.array([], pa.string())
        held = warehouse.held_ids(module)
        gone = held.filter(pc.invert(pc.is_in(held, value_set=in_bin)))
        unlisted.update((module, rid) for rid in gone.to_pylist())
        missed[module] = _without(in_bin, [held])
    return unlisted, missed


def _by_id(
    client: ZohoClient, org: str, ids: List[str], run: Any
) -> Iterator[Dict[str, Any]]:
    """Bin entries with these ids that are in the bin now (`GET /settings/recycle_bin?ids=`)."""
    now = datetime.now(UTC)
    for start in range(0, len(ids), IDS_PER_CALL):
        params = {"ids": ",".join(ids[start : start + IDS_PER_CALL])}
        for page in client.pages(PATH, "recycle_bin", params, kind="reconcile"):
            yield from bin_rows(org, page, None, now, run)[0]


def _restores(
    warehouse: Warehouse, emitted: EmittedEvents, restored: Set[Key], now: datetime
) -> Iterator[Any]:
    """`restored_at` on the rows of records confirmed restored, and their `restored` events."""
    by_module: Dict[str, List[str]] = {}
    for module, rid in restored:
        by_module.setdefault(module, []).append(rid)
    for module, ids in sorted(by_module.items()):
        rows = [r for r in warehouse.rows(module, ids) if r["restored_at"] is None]
        if rows:
            yield to_table([{**r, "restored_at": now} for r in rows], DELETED_RECORDS_SCHEMA)
            yield _variant(emitted.fresh(restored_events(rows, now)), EVENTS_HINTS)


def _reread(
    client: ZohoClient, warehouse: Warehouse, module: str, since: Any, now: datetime, run: Any
) -> Iterator[pa.Table]:
    headers = {"If-Modified-Since": zoho_time(since)} if since else {}
    for page in client.pages(
        f"{module}/deleted", "data", {"type": "all"}, headers, module, kind="reconcile"
    ):
        rows, _ = accepted(
            page,
            lambda item: deleted_row(warehouse.org, module, item, now),
            lambda item, error: run.reject(warehouse.org, "deleted", module, now, item, error),
        )
        warehouse.fill_details(module, rows)
        yield to_table(rows, DELETED_RECORDS_SCHEMA)


def _record_from_bin(row: Dict[str, Any]) -> Dict[str, Any]:
    """A deleted_records row from a bin entry (the bin does not say who created the record)."""
    return deleted_row(
        row["org"],
        row["module__api_name"],
        {
            "id": row["id"],
            "type": "recycle",
            "display_name": row["display_name"],
            "deleted_time": row["deleted_time"].isoformat(),
            "deleted_by": {"name": row["deleted_by__name"], "id": row["deleted_by__id"]},
        },
        row["observed_at"],
    )


def _variant(table: Any, hints: Any) -> Any:
    """Send `table` to another table of its own hints; the resource keeps its own."""
    return dlt.mark.with_hints(table, hints, create_table_variant=True)
