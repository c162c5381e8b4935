"""Reading a Zoho list in passes that may span several load packages.

A pass reads a list of deleted entries from the newest down to the high-water mark of the last
complete pass (`since`). Zoho lists `/deleted` newest first and filters only from below
(`If-Modified-Since`), so the high-water mark may move only once a pass has read everything
down to it: a pass cut into load packages (a bounded number of pages each, so every load and
merge stays small) keeps its progress — each stream's next page query — in the resource's dlt
state, committed with each package, and the next package (or the next run, after a kill)
resumes from there. dlt's `incremental` moves its cursor to the newest value it has seen, which
is why these resources keep their own.

The boundary: `If-Modified-Since` and the bin's filter include the high-water second, so its
entries come back on every run. A pass stops at the first page holding nothing newer than the
mark, so a run with nothing new costs one call per list however many entries share that second.
Entries of that second already held are dropped by the caller (see `Warehouse.unseen`); one that
arrives later is read when it falls in that page, otherwise by the next reconciliation pass.

An entry Zoho sends malformed (see `records.MalformedEntryError`) is set aside and the pass
goes on past it; but its real deleted time is unknown, so the mark must not move past where it
sits. Zoho lists by deleted time, so it sits at or after the next well-formed entry below it:
the pass's mark stops a second before that entry (or stays where it was, when nothing
well-formed follows), and each next run reads the entry again — and loads it once Zoho sends
it whole. Until then a run re-reads the entries above it (merged again, nothing doubles).

A resumed pass may hold a `page_token` Zoho no longer accepts (tokens live 24 hours, so a pass
left unfinished for a day — a kill, an outage, credits spent — meets one). The stream then reads
again from its first page: what it had loaded is merged again (nothing doubles), and the pass
still ends only once the stream is read to its end.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import AbstractSet, Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

import pyarrow as pa

from .client import ZohoClient
from .errors import ZohoApiError
from .records import entry_time, to_table

Query = Dict[str, Any]
# Rows handed to dlt as one Arrow table: dlt's cost is per item as much as per row (measured:
# about a third of a first run's extraction went to per-item schema work at one page an item).
ITEM_ROWS = 2_000
SKIP: Any = object()  # an entry without a time that was not set aside (left out)


class ListPass:
    """A list's high-water mark and its unfinished pass, kept in a dlt resource's state.

    `streams` maps a stream name (one list, or one module's part of the bin) to the query of its
    next page, or to None once the stream is read to the end.
    """

    def __init__(self, state: Dict[str, Any], first_queries: Dict[str, Query]) -> None:
        self._state, self._first = state, first_queries
        _adopt_incremental_cursor(state)
        current = state.get("pass")
        if current:  # an unfinished pass: go on from where its last committed package ended
            self.streams: Dict[str, Optional[Query]] = dict(current["streams"])
            self._newest: Optional[str] = current.get("newest")
        else:
            self.streams = dict(first_queries)
            self._newest = None
        current = current or {}
        # the highest mark the pass may leave, below entries it set aside (see above)
        self._hold: Optional[str] = current.get("hold")
        # streams whose last entry read was set aside, awaiting a well-formed one below it
        self._awaiting: Set[str] = set(current.get("awaiting", ()))

    @property
    def since(self) -> Optional[datetime]:
        """The high-water mark of the last complete pass, or None before the first."""
        value = self._state.get("since")
        return datetime.fromisoformat(value) if value else None

    @property
    def held(self) -> Optional[str]:
        """The mark a complete pass left held below entries it set aside (`""`: no mark)."""
        return self._state.get("held")

    @property
    def ever_completed(self) -> bool:
        """Whether a pass has been read to its end (even one that found nothing)."""
        return bool(self._state.get("since") or self._state.get("completed"))

    def read(
        self,
        client: ZohoClient,
        stream: str,
        path: str,
        data_key: str,
        max_pages: int,
        headers: Optional[Dict[str, str]] = None,
        module: Optional[str] = None,
        kind: str = "api",
    ) -> Iterator[Tuple[str, List[Dict[str, Any]], Optional[Query]]]:
        """Up to `max_pages` pages of `stream`: (stream, records, next query or None).

        None as the next query means the stream is done: its last page, or the boundary page
        (nothing newer than `since`). Call `advance` once the records are handed on.
        """
        query = self.streams.get(stream)
        since = self.since
        read, restarted = 0, False
        while query is not None and read < max_pages:
            try:
                records, following = client.page(path, data_key, query, headers, module, kind)
            except ZohoApiError as error:
                if restarted or not _stale_page_token(query, error) or stream not in self._first:
                    raise
                query, restarted = self._first[stream], True  # read the stream from its top
                continue
            read += 1
            newest = _newest(records)
            if since is not None and newest is not None and newest <= since:
                following = None  # the boundary page: below it, only entries already read
            yield stream, records, following
            query = following

    def advance(
        self,
        stream: str,
        records: List[Dict[str, Any]],
        following: Optional[Query],
        rejected: AbstractSet[int] = frozenset(),
    ) -> None:
        """Note that `records` were handed on (less those at positions `rejected`, set aside)
        and `stream` goes on with `following`."""
        self.streams[stream] = following
        # the page in order: None for an entry set aside, else its time (if it has one: an
        # entry left out, of another module, may not)
        times = [None if i in rejected else entry_time(r) or SKIP for i, r in enumerate(records)]
        newest = max((t for t in times if t not in (None, SKIP)), default=None)
        if newest is not None and (self._newest is None or newest.isoformat() > self._newest):
            self._newest = newest.isoformat()  # both UTC ISO strings
        awaiting = stream in self._awaiting
        for time in times:
            if time is None:
                awaiting = True
            elif awaiting and time is not SKIP:  # the entry set aside sits at or after this
                hold = (time - timedelta(seconds=1)).isoformat()
                self._hold = hold if self._hold is None else min(self._hold, hold)
                awaiting = False
        self._awaiting.discard(stream)
        if awaiting:
            self._awaiting.add(stream)

    def save(self) -> bool:
        """Write progress to the state; True when the pass is complete (the mark moved)."""
        if any(query is not None for query in self.streams.values()):
            self._state["pass"] = {
                "streams": self.streams,
                "newest": self._newest,
                "hold": self._hold,
                "awaiting": sorted(self._awaiting),
            }
            return False
        self._state.pop("pass", None)
        self._state["completed"] = True
        since = self._state.get("since")
        mark = self._newest
        if self._awaiting:  # nothing well-formed below an entry set aside: the mark stays
            mark = None
            self._state["held"] = since or ""
        elif self._hold is not None and mark is not None and self._hold < mark:
            mark = self._hold
            self._state["held"] = mark
        else:
            self._state.pop("held", None)
        if mark and (not since or mark > since):
            self._state["since"] = mark
        return True

    def adopt(self, parts: List[ListPass]) -> None:
        """Take the complete passes of `parts` (one list read in parts, each in its own
        resource) as this list's complete pass: its mark is the newest of theirs."""
        marks = [part.since for part in parts if part.since is not None]
        held = [part.held for part in parts if part.held is not None]
        if "" in held:  # a part's entry set aside has nothing below it: read it all again
            marks = []
        elif held:  # never past an entry a part set aside
            marks = [min(max(marks), *(datetime.fromisoformat(h) for h in held))]
        if marks:
            self._state["since"] = max(marks).isoformat()
        self._state["completed"] = True


class Batch:
    """Pages' rows gathered into items of about ITEM_ROWS rows. Each page's progress is noted
    only once its rows have been handed on (`handed_on`), so a pass never runs ahead of them.
    `complete`, if given, completes an item's rows in place before they become a table: one
    call an item rather than a page (a look-up in the destination costs per call)."""

    def __init__(
        self,
        listing: ListPass,
        schema: pa.Schema,
        complete: Optional[Callable[[List[Dict[str, Any]]], None]] = None,
    ) -> None:
        self._listing, self._schema, self._complete = listing, schema, complete
        self._rows: List[Dict[str, Any]] = []
        self._pages: List[Tuple[str, List[Dict[str, Any]], Optional[Query], Set[int]]] = []

    def add(
        self,
        stream: str,
        page: List[Dict[str, Any]],
        following: Optional[Query],
        rows: List[Dict[str, Any]],
        rejected: Set[int],
    ) -> Optional[pa.Table]:
        """Gather a page's `rows` (its entries at positions `rejected` set aside); the item to
        hand on once there are enough, else None."""
        self._rows.extend(rows)
        self._pages.append((stream, page, following, rejected))
        return self.take() if len(self._rows) >= ITEM_ROWS else None

    def take(self) -> Optional[pa.Table]:
        """What is gathered, as one table (None if no rows)."""
        rows, self._rows = self._rows, []
        if not rows:
            return None
        if self._complete is not None:
            self._complete(rows)
        return to_table(rows, self._schema)

    def handed_on(self) -> None:
        """The rows taken so far are handed on: their pages' progress is noted."""
        for page in self._pages:
            self._listing.advance(*page)
        self._pages = []

    def items(
        self,
        pages: Iterator[Tuple[str, List[Dict[str, Any]], Optional[Query]]],
        rows_of: Callable[[List[Dict[str, Any]]], Tuple[List[Dict[str, Any]], Set[int]]],
    ) -> Iterator[pa.Table]:
        """The rows of `pages` as items, each page's progress noted once its rows are handed
        on. `rows_of(page)` gives a page's rows and the positions of its entries set aside."""
        for stream, page, following in pages:
            table = self.add(stream, page, following, *rows_of(page))
            if table is not None:
                yield table
                self.handed_on()
        table = self.take()
        if table is not None:
            yield table
        self.handed_on()


def _adopt_incremental_cursor(state: Dict[str, Any]) -> None:
    """Take over the high-water mark of dlt's `incremental` cursor, which these resources used
    before they kept their own, so an upgraded pipeline does not read everything again."""
    cursor = state.get("incremental", {}).get("deleted_time", {})
    last = cursor.get("last_value")
    if "since" not in state and isinstance(last, (datetime, str)) and last:
        instant = last if isinstance(last, datetime) else datetime.fromisoformat(str(last))
        state["since"] = instant.astimezone(UTC).isoformat()


def _stale_page_token(query: Query, error: ZohoApiError) -> bool:
    """Whether Zoho refused a query's `page_token` (expired after 24 hours, or unknown): a 400
    other than a refusal of access, on a query that carries one."""
    return "page_token" in query and error.status == 400 and not error.is_permission


def _newest(records: List[Dict[str, Any]]) -> Optional[datetime]:
    """The newest deleted time of a page, leaving out entries without one."""
    return max(filter(None, map(entry_time, records)), default=None)
