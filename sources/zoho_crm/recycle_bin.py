"""The `recycle_bin` table: Zoho's bin (`/settings/recycle_bin`), read in passes (see `passes`).

The first pass reads the whole bin, which is as large as all modules together, so each module's
part of it is its own parallelized resource (`recycle_bin_<module>`) and the parts are read side
by side, as the per-module `deleted_records` resources are. Once every part has been read to its
end, one resource, `recycle_bin`, takes over their marks: its mark is the newest entry they
read, and each later run asks it once for what was binned since.

Which of them a source has is decided when the source is built, from the state earlier
packages committed: the parts while the first pass is unfinished, `recycle_bin` after it, so
they never run in one extract. The bin's mark lives in `recycle_bin`'s state, as it did before
the parts existed; a first pass that an older version left unfinished there (every module's
part in that one resource) is finished by `recycle_bin`, a part after the other.

Newest first: Zoho purges the oldest entries, which leave the end of the listing, so no page
shifts under the reader. Zoho's filter only offers `greater_than`, so a later run asks for
everything after the second *before* the mark (the boundary: see `passes`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any, Dict, Iterable, Iterator, List, Optional, Set, Tuple

import dlt
from dlt.sources import DltResource

from .client import ZohoClient
from .errors import ZohoApiError, ZohoMalformedError
from .passes import Batch, ListPass
from .records import (
    RECYCLE_BIN_SCHEMA,
    MalformedEntryError,
    accepted,
    bin_module,
    bin_row,
    module_slug,
    zoho_time,
)
from .run_context import ZohoRun
from .warehouse import BIN_TABLE, Warehouse

PATH = "settings/recycle_bin"
NEWEST_FIRST = {"sort_by": "deleted_time", "sort_order": "desc"}
BIN_HINTS: Dict[str, Any] = {
    "table_name": BIN_TABLE,
    "primary_key": ("org", "id"),
    "write_disposition": "merge",
}


def part_name(module: str) -> str:
    """The resource (and state) of a module's part of the bin's first pass."""
    return f"{BIN_TABLE}_{module_slug(module)}"


def bin_rows(
    org: str,
    page: List[Dict[str, Any]],
    modules: Optional[Iterable[str]],
    observed_at: datetime,
    run: ZohoRun,
) -> Tuple[List[Dict[str, Any]], Set[int]]:
    """The rows of a page's entries that belong to `modules` (the bin holds every module's;
    None: any), and the positions of those set aside as malformed (`records.accepted`)."""
    wanted = None if modules is None else set(modules)

    def row_of(item: Any) -> Optional[Dict[str, Any]]:
        named = bin_module(item)
        if wanted is not None and named is not None and named not in wanted:
            return None  # another module's entry
        return bin_row(org, item, observed_at)

    def reject(item: Any, error: MalformedEntryError) -> None:
        run.reject(org, BIN_TABLE, bin_module(item), observed_at, item, error)

    return accepted(page, row_of, reject)


def recycle_bin_resources(
    client: ZohoClient,
    modules: List[str],
    warehouse: Warehouse,
    run: ZohoRun,
    chunk_pages: int,
) -> List[DltResource]:
    """The bin's resources for this package: the first pass's unfinished parts, or `recycle_bin`.

    Called while the source is built: it reads the state committed by earlier packages.
    """
    state = dlt.current.source_state()
    own = ListPass(dlt.current.resource_state(BIN_TABLE, state), {})
    # streams are only there when a pass is under way (first queries given: none)
    if not own.ever_completed and not own.streams:
        parts = {m: ListPass(dlt.current.resource_state(part_name(m), state), {}) for m in modules}
        if not all(part.ever_completed for part in parts.values()):
            return [
                _part_resource(client, m, warehouse, run, chunk_pages)
                for m, part in parts.items()
                if not part.ever_completed
            ]
    return [_bin_resource(client, modules, warehouse, run, chunk_pages)]


def _part_resource(
    client: ZohoClient, module: str, warehouse: Warehouse, run: ZohoRun, chunk_pages: int
) -> DltResource:
    name = part_name(module)

    @dlt.resource(name=name, parallelized=True, **BIN_HINTS)
    def recycle_bin_part() -> Iterator[Any]:
        """The first pass over the bin entries of one module."""
        listing = ListPass(
            dlt.current.resource_state(), {"list": client.first_query(_part_query(module))}
        )
        yield from _read(client, listing, [module], warehouse, run, chunk_pages, name)

    return recycle_bin_part


def _bin_resource(
    client: ZohoClient,
    modules: List[str],
    warehouse: Warehouse,
    run: ZohoRun,
    chunk_pages: int,
) -> DltResource:
    @dlt.resource(name=BIN_TABLE, **BIN_HINTS)
    def recycle_bin() -> Iterator[Any]:
        """Bin entries binned since the mark (or a pass an older version left unfinished)."""
        state = dlt.current.resource_state()
        before = ListPass(state, {})
        if not before.ever_completed and not before.streams:  # the parts have just finished
            before.adopt([ListPass(dlt.current.resource_state(part_name(m)), {}) for m in modules])
        if before.since is None:  # the bin was empty so far
            query: Dict[str, Any] = NEWEST_FIRST
        else:
            after = zoho_time(before.since - timedelta(seconds=1))
            query = {**NEWEST_FIRST, "filters": _json_filter("deleted_time", "greater_than", after)}
        first = {"new": client.first_query(query)}
        # a pass an older version left holds a stream per module's part: each reads again
        # from its top if Zoho no longer takes its page token (see `passes`)
        first.update({s: client.first_query(_part_query(s)) for s in before.streams if s != "new"})
        listing = ListPass(state, first)
        yield from _read(client, listing, modules, warehouse, run, chunk_pages, BIN_TABLE)

    return recycle_bin


def _read(
    client: ZohoClient,
    listing: ListPass,
    modules: List[str],
    warehouse: Warehouse,
    run: ZohoRun,
    chunk_pages: int,
    resource: str,
) -> Iterator[Any]:
    """Up to `chunk_pages` pages of each of the pass's streams, as items; then its progress."""
    observed_at = datetime.now(UTC)
    pages = chain.from_iterable(
        listing.read(client, stream, PATH, "recycle_bin", chunk_pages, kind="recycle_bin")
        for stream in list(listing.streams)
    )

    def rows_of(page: List[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], Set[int]]:
        rows, rejected = bin_rows(warehouse.org, page, modules, observed_at, run)
        warehouse.blank_erased(BIN_TABLE, rows)
        return warehouse.unseen(None, rows, listing.since), rejected

    try:
        yield from Batch(listing, RECYCLE_BIN_SCHEMA).items(pages, rows_of)
    except ZohoMalformedError as error:  # what was read loads; the modules' lists go on
        run.module_malformed(BIN_TABLE, error)
        listing.save()
        return
    except ZohoApiError as error:
        if not error.is_permission:
            raise
        run.module_failed(BIN_TABLE, error)
        listing.save()  # the pages read so far are loaded; the pass goes on later
        return
    if not listing.save():
        run.unfinished(resource)


def _part_query(module: str) -> Dict[str, Any]:
    """The query of a module's part of the bin, newest first."""
    return {**NEWEST_FIRST, "filters": _json_filter("module", "equal", module)}


def _json_filter(field: str, comparator: str, value: str) -> str:
    condition = {"field": {"api_name": field}, "comparator": comparator, "value": value}
    return json.dumps({"group_operator": "AND", "group": [condition]})
