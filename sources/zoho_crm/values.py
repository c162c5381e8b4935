"""Last known field values of live records (`record_values`), so a deleted record's values stay.

No Zoho API returns a record's values once it is deleted, so they are copied while it is live:
per module listed in `record_values`, a resource `values_<module>` reads Get Records
(`GET /{module}?fields=…`) into the table `values_<module>`, one row per (org, id), merged.

A pass reads the records modified since the last complete pass's high-water mark
(`If-Modified-Since`; past a closed second, so a run with nothing changed is one call per
module, answered 304: see `ValuesPass`), sorted by `Modified_Time` ascending. It keeps its progress
in the resource's state like the deleted lists (`passes.ListPass`), a bounded number of pages
(and of bytes: PACKAGE_BYTES) a load package and a budget of calls a run
(`values_calls_per_run`, and `api_credits_reserve`), so a first pass over a large module goes
on over several packages and runs. A listing reaches
at most 100,000 records: when Zoho refuses to page further (`LIMIT_REACHED`), the pass goes on
with a new listing from the last `Modified_Time` it read (inclusive; the re-read records merge
onto themselves).

Fields: every field `/settings/fields` lists (custom ones included) but the kinds Get Records
cannot list (UNLISTED_TYPES), or those `record_value_fields` names; remembered in the resource's
state for `reconcile_every`. Zoho takes 50 fields a call, so more are read in groups of 49 and
`Modified_Time`: the listing reads the first group, the others are read by `ids` for each page.
A record is kept only when every group answered the same `Modified_Time`; one modified between
the calls is read again (all groups, by id) until they agree, so it lands whole, in its later
version. A field Get Records refuses (`INVALID_DATA` naming it) is dropped with a warning until
the fields are read again.

Each page becomes one Arrow table (`value_columns`: columns typed from the metadata, lookups
as `<field>__id`/`<field>__name`, multi-selects and subforms as JSON columns, names that
collide with our own columns renamed), and `field_values` keeps the record as Zoho answered it
(JSON keyed by field API names), which the `deleted_record_values` view shows. A record that
cannot be a row is set aside in `rejected_records` and read again by the next pass. Rows are
never deleted: a record that leaves the live listing (deleted, purged) keeps its last values.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import AbstractSet, Any, Dict, Iterator, List, Optional, Set, Tuple

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.sources import DltResource

from .client import ZohoClient
from .config import setting_error
from .errors import ZohoApiError, ZohoConfigError
from .metadata import readable_modules
from .passes import ITEM_ROWS, ListPass, Query
from .records import module_slug, parse_time, zoho_time
from .settings import MAX_FIELDS_PER_CALL
from .value_columns import MODIFIED, column_hints, pin_columns, values_table
from .warehouse import Warehouse

logger = logging.getLogger(__name__)

VALUES_PREFIX = "values_"
VALUES_MEMO = "record_values_memo"  # source state key, and the resource that writes it
DEFAULT_VALUES_CALLS_PER_RUN = 1_000
SETTLE = timedelta(seconds=30)  # after this, no record can still be stamped with a second
MAX_IDS = 100  # Get Records' `ids` takes at most 100
# A load package's values of one module, as Arrow counts them (`pa.Table.nbytes`): a package
# ends at the page that reaches it, whatever `load_chunk_rows` allows. DuckDB holds a load's
# rows uncompressed until it checkpoints them, so its memory follows a package's bytes, not
# its rows: 32 MiB is about 21,000 records of 30 fields (see docs/values-benchmark.md).
PACKAGE_BYTES = 32 * 2**20
COHERENCE_ROUNDS = 3  # reads of a record modified between its groups' calls, before waiting
UNLISTED_TYPES = frozenset({"fileupload", "imageupload", "multiselectlookup"})
_DLT_TYPES = {
    "date": "date",
    "datetime": "timestamp",
    "currency": "decimal",
    "decimal": "decimal",
    "double": "double",
    "percent": "double",
    "integer": "bigint",
    "bigint": "bigint",
    "boolean": "bool",
}
_JSON_TYPES = {"double": "double", "integer": "bigint", "boolean": "bool", "string": "text"}
_LOOKUPS = ("lookup", "ownerlookup", "userlookup")
_NESTED = ("multiselectpicklist", "subform")
ValueFieldsConfig = Dict[str, List[str]]


def values_name(module: str) -> str:
    """The resource and table of a module's values, e.g. `values_price_books`."""
    return VALUES_PREFIX + module_slug(module)


def record_values_setting(value: Any) -> Optional[List[str]]:
    """None (no values captured) or the listed module API names, de-duplicated."""
    if value is None or value == []:
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(m, str) and m.strip()
                                                        for m in value):  # fmt: skip
        raise setting_error(
            "record_values", value, 'a list of module API names, e.g. ["Leads", "Deals"]'
        )
    return list(dict.fromkeys(m.strip() for m in value))


def record_value_fields_setting(value: Any, modules: Optional[List[str]]) -> ValueFieldsConfig:
    """module -> field API names narrowing what is captured; every module in `record_values`."""
    if not value:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(f, (list, tuple)) and f and all(isinstance(n, str) for n in f)
        for f in value.values()
    ):
        raise setting_error(
            "record_value_fields", value, 'a mapping of module -> [field API names], e.g. '
            '{Leads = ["Email", "Phone"]}',
        )  # fmt: skip
    stray = sorted(set(value) - set(modules or []))
    if stray:
        raise ZohoConfigError(
            f"record_value_fields names module(s) {', '.join(stray)} that are not in "
            "record_values: add them to record_values or remove them from record_value_fields"
        )
    return {module: list(dict.fromkeys(names)) for module, names in value.items()}


@dataclass
class ValuesRun:
    """The values part of a run, shared by its packages: modules, fields, budget, progress."""

    modules: List[str]
    resolved: bool  # asked Zoho this run (else remembered)
    config: Optional[List[str]]
    fields: ValueFieldsConfig
    calls_left: int
    credits_reserve: int
    stop: Optional[str] = None  # why the values stopped short this run, if they did
    unfinished: Set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take_calls(self, client: ZohoClient, calls: int) -> bool:
        """Whether `calls` more calls fit the run's budget and the day's credits (and takes
        them)."""
        with self._lock:
            if self.stop:
                return False
            remaining = client.credits_remaining
            if remaining is not None and remaining <= self.credits_reserve:
                self.stop = (
                    f"Zoho reports {remaining} API credits left today, at or below "
                    f"api_credits_reserve ({self.credits_reserve})"
                )
                return False
            if self.calls_left < calls:
                self.stop = "this run's values_calls_per_run budget is spent"
                return False
            self.calls_left -= calls
            return True


def values_modules(
    client: ZohoClient, wanted: List[str], every: timedelta
) -> Tuple[List[str], bool]:
    """`wanted`, checked against `/settings/modules` (remembered for `every`, as `modules`
    are); a name Zoho does not list is a config error naming it."""
    memo = dlt.current.source_state().get(VALUES_MEMO) or {}
    at = memo.get("at")
    if memo.get("config") == wanted and at:
        if datetime.now(UTC) - datetime.fromisoformat(at) < every:
            return list(wanted), False
    valid = readable_modules(client)
    unknown = [m for m in wanted if m not in valid]
    if unknown:
        raise ZohoConfigError(
            f"record_values names {', '.join(repr(m) for m in unknown)}, not a Zoho module "
            f"this org can read: list names among {', '.join(valid) or '(none)'}"
        )
    return list(wanted), True


def values_memo_resource(run: ValuesRun) -> DltResource:
    """A resource that loads nothing: it remembers the checked `record_values` in the source's
    state, committed with the run's first package."""

    @dlt.resource(name=VALUES_MEMO)
    def record_values_memo() -> Iterator[Any]:
        if run.resolved:
            dlt.current.source_state()[VALUES_MEMO] = {
                "config": run.config,
                "at": datetime.now(UTC).isoformat(),
            }
        yield from ()

    return record_values_memo


class ValuesPass(ListPass):
    """A values listing's pass: a `ListPass` whose records carry `Modified_Time`, listed oldest
    first. Its streams are `list` (from the last complete pass's mark) and, once a listing
    reached Zoho's cap, `from:<time>` (a new listing from the last time read, inclusive: that
    second's records may not all have been read).

    The mark, and a run with nothing changed: `If-Modified-Since` includes its instant, so a
    mark at the newest record read would read that second's records again on every run (200,
    not 304). A second is closed once a read happened SETTLE after it: no record modified in it
    can appear later. A pass whose newest record was read in a closed second sends the next
    second (`settled` in the state), and a run with nothing changed is one call answered 304;
    one read too soon after it sends that second again, merged onto itself, and the next pass
    closes it. A record set aside (`rejected_records`) holds the mark at or below it: its own
    time when Zoho sent a readable one, else the newest time read before it (the listing is
    sorted by `Modified_Time`), so the next pass reads it again."""

    def __init__(self, state: Dict[str, Any], first_queries: Dict[str, Query]) -> None:
        super().__init__(state, first_queries)
        self._settled = bool((state.get("pass") or {}).get("settled"))

    def advance(
        self,
        stream: str,
        records: List[Any],
        following: Optional[Query],
        rejected: AbstractSet[int] = frozenset(),
        newest: Optional[datetime] = None,
    ) -> None:
        """Note a page handed on: its newest well-formed `Modified_Time` is `newest` (None:
        found from `records`); entries at positions `rejected` were set aside."""
        self.streams[stream] = following
        for position in sorted(rejected):
            own = entry_modified(records[position])
            hold = own.isoformat() if own else self._newest
            if hold is None:
                self._awaiting.add(stream)  # nothing read before it: the mark stays
            elif self._hold is None or hold < self._hold:
                self._hold = hold
        if newest is None:
            times = [entry_modified(r) for i, r in enumerate(records) if i not in rejected]
            newest = max(filter(None, times), default=None)
        if newest is not None and (self._newest is None or newest.isoformat() > self._newest):
            self._newest = newest.isoformat()
            self._settled = newest + SETTLE <= datetime.now(UTC)

    def save(self) -> bool:
        since, done = self._state.get("since"), super().save()
        if not done:
            self._state["pass"]["settled"] = self._settled
        elif "held" in self._state or self._awaiting:
            self._state.pop("settled", None)  # held below a record set aside: read it again
        elif self._newest is not None and self._newest >= (since or ""):
            self._state["settled"] = self._settled
        return done

    def restart_from_newest(self, stream: str, first: Query) -> bool:
        """Go on with a new listing from the newest time read; False when that is where this
        listing began (more records than a listing reaches share one second)."""
        self.streams[stream] = None
        began = stream[len("from:") :] if stream.startswith("from:") else None
        if self._newest is None or self._newest == began:
            return False
        self.streams[f"from:{self._newest}"] = first
        return True

    def header(self, stream: str) -> Dict[str, str]:
        """The `If-Modified-Since` of `stream`."""
        if stream.startswith("from:"):
            return {"If-Modified-Since": zoho_time(datetime.fromisoformat(stream[5:]))}
        if not self.since:
            return {}
        since = self.since + (timedelta(seconds=1) if self._state.get("settled") else timedelta())
        return {"If-Modified-Since": zoho_time(since)}


def entry_modified(record: Any) -> Optional[datetime]:
    """A record's `Modified_Time` as a UTC instant, None when it has none Zoho could mean."""
    value = record.get(MODIFIED) if isinstance(record, dict) else None
    try:
        return parse_time(value) if isinstance(value, str) else None
    except ValueError:
        return None


class ValuesReader:
    """Reads one module's values pass and turns its records into rows."""

    def __init__(
        self, client: ZohoClient, module: str, org: str, run: ValuesRun, state: Dict[str, Any],
        every: timedelta,
    ) -> None:  # fmt: skip
        self.client, self.module, self.org, self.run = client, module, org, run
        self.state = state
        self.normalize = dlt.current.source_schema().naming.normalize_path
        self.fields = self._fields(every)
        self.groups = self._groups()

    # -- fields ----------------------------------------------------------------------------
    def _fields(self, every: timedelta) -> List[Dict[str, Any]]:
        """The captured fields' metadata, remembered in the resource's state for `every`."""
        wanted = self.run.fields.get(self.module)
        memo = self.state.get("fields") or {}
        at = memo.get("at")
        if memo.get("config") == wanted and at:
            if datetime.now(UTC) - datetime.fromisoformat(at) < every:
                return list(memo["fields"])
        body = self.client.get(
            "settings/fields", {"module": self.module}, module=self.module, kind="metadata"
        )
        listed = [
            {k: f.get(k) for k in ("api_name", "data_type", "json_type")}
            for f in (body or {}).get("fields", [])
            if f.get("api_name") and f.get("api_name") != "id"
        ]
        if wanted is not None:
            known = {f["api_name"] for f in listed}
            unknown = [name for name in wanted if name not in known]
            if unknown:
                raise ZohoConfigError(
                    f"record_value_fields.{self.module} names {', '.join(map(repr, unknown))}, "
                    f"not a field of {self.module}: use field API names among "
                    f"{', '.join(sorted(known))}"
                )
            listed = [f for f in listed if f["api_name"] in wanted or f["api_name"] == MODIFIED]
        chosen = [f for f in listed if f.get("data_type") not in UNLISTED_TYPES]
        if not any(f["api_name"] == MODIFIED for f in chosen):
            chosen.append({"api_name": MODIFIED, "data_type": "datetime", "json_type": "string"})
        self.state["fields"] = {
            "config": wanted, "fields": chosen, "at": datetime.now(UTC).isoformat(),
        }  # fmt: skip
        return chosen

    def _groups(self) -> List[List[str]]:
        """Field names in groups of at most 50 with `Modified_Time` in each."""
        names = [f["api_name"] for f in self.fields if f["api_name"] != MODIFIED]
        size = MAX_FIELDS_PER_CALL - 1
        chunks = [names[i : i + size] for i in range(0, len(names), size)] or [[]]
        return [[*chunk, MODIFIED] for chunk in chunks]

    def drop_refused(self, error: ZohoApiError) -> bool:
        """Drop the field Zoho refused (`INVALID_DATA` naming it), with a warning; False when
        the error names no captured field."""
        match = re.search(r"'api_name': '([^']+)'", str(error))
        name = match.group(1) if match else None
        if error.code != "INVALID_DATA" or name is None or name == MODIFIED:
            return False
        if not any(f["api_name"] == name for f in self.fields):
            return False
        logger.warning(
            "%s.%s left out of record values: Zoho refuses to list it (%s)",
            self.module, name, error.code,
        )  # fmt: skip
        self.fields = [f for f in self.fields if f["api_name"] != name]
        self.state["fields"]["fields"] = self.fields
        self.groups = self._groups()
        return True

    # -- calls -----------------------------------------------------------------------------
    def calls_per_page(self) -> int:
        return 1 + (len(self.groups) - 1) * math.ceil(self.client.per_page / MAX_IDS)

    def page(self, query: Query, headers: Dict[str, str]) -> Tuple[list, Optional[Query]]:
        """One page of the listing (first group), a refused field dropped and asked again."""
        while True:
            try:
                return self.client.page(
                    self.module, "data", {**query, "fields": ",".join(self.groups[0])},
                    headers, self.module, "values",
                )  # fmt: skip
            except ZohoApiError as error:
                if not self.drop_refused(error):
                    raise

    def by_ids(self, group: List[str], ids: List[str]) -> Dict[str, Dict[str, Any]]:
        """Records of `ids` with the fields of `group`, by id (at most 100 ids a call)."""
        found: Dict[str, Dict[str, Any]] = {}
        for start in range(0, len(ids), MAX_IDS):
            params = {"ids": ",".join(ids[start : start + MAX_IDS])}
            while True:
                names = {f["api_name"] for f in self.fields}  # less any field dropped meanwhile
                params["fields"] = ",".join(name for name in group if name in names)
                try:
                    body = self.client.get(self.module, params, module=self.module, kind="values")
                    break
                except ZohoApiError as error:
                    if not self.drop_refused(error):
                        raise
            for record in (body or {}).get("data") or []:
                found[str(record["id"])] = record
        return found

    def whole(self, records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """Each record with every group's fields, in one coherent version (see the module)."""
        if len(self.groups) == 1:
            return records
        pending = {str(r["id"]): r for r in records}
        done: List[Dict[str, Any]] = []
        for attempt in range(COHERENCE_ROUNDS):
            if attempt:  # records modified between calls: every group read again, by id
                pending = self.by_ids(self.groups[0], list(pending))
            parts = [self.by_ids(group, list(pending)) for group in self.groups[1:]]
            changed: Dict[str, Dict[str, Any]] = {}
            for rid, first in pending.items():
                versions = [first, *(part.get(rid) for part in parts)]
                if any(v is None for v in versions):
                    continue  # deleted meanwhile: its last captured values stay
                if len({v.get(MODIFIED) for v in versions}) == 1:  # type: ignore[union-attr]
                    done.append({k: v for version in versions for k, v in version.items()})
                else:
                    changed[rid] = first
            pending = changed
            if not pending:
                break
        if pending:
            logger.info(
                "%s: %d record(s) kept changing while read; a later run reads them",
                self.module, len(pending),
            )  # fmt: skip
        return done

    def columns(self) -> Dict[str, str]:
        """API name -> column, pinned in the resource's state (see `value_columns`)."""
        pinned = pin_columns(self.fields, self.state.get("columns") or {}, self.normalize)
        self.state["columns"] = pinned
        return pinned


class JsonHintsExpected(logging.Filter):
    """Leaves out dlt's warning, on every values item, that hints differ from the Arrow
    table's types: `field_values` and the list columns are JSON text in Arrow (`string`) and
    hinted `json` on purpose, so the destination stores them as JSON. dlt logs each column
    that differs at INFO; that stays, as does every other warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not (
            text.startswith(f"In resource: {VALUES_PREFIX}")
            and "when merging arrow schema with dlt schema" in text
        )


DLT_LOGGER = "dlt"  # the logger dlt writes to
JSON_HINTS_EXPECTED = JsonHintsExpected()  # the one instance, so adding it again adds nothing


def expect_json_hints() -> None:
    """Put `JsonHintsExpected` on dlt's logger alone (no other logger, nor the root's), once
    however many sources a process builds: `logging` adds an instance a logger holds already
    no second time."""
    logging.getLogger(DLT_LOGGER).addFilter(JSON_HINTS_EXPECTED)


def values_resources(
    client: ZohoClient, context: Any, warehouse: Warehouse, chunk_pages: int, every: timedelta
) -> List[DltResource]:
    """Per module of the run's `context.values`, the resource reading its values into
    `values_<module>`. A module whose records Zoho refuses is noted as failed (`<module>
    values`) and the others land, as with deleted lists. Records erased on request
    (`warehouse.erased()`, see `zoho-deleted forget`) are never stored again."""
    expect_json_hints()
    return [
        _values_resource(client, module, context, warehouse, chunk_pages, every)
        for module in context.values.modules
    ]


def _values_resource(
    client: ZohoClient,
    module: str,
    context: Any,
    warehouse: Warehouse,
    chunk_pages: int,
    every: timedelta,
) -> DltResource:
    name, run = values_name(module), context.values

    @dlt.resource(
        name=name,
        table_name=name,
        primary_key=("org", "id"),
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
    )
    def record_values() -> Iterator[Any]:
        state = dlt.current.resource_state()
        first = client.first_query({"sort_by": MODIFIED, "sort_order": "asc"})
        listing = ValuesPass(state, {"list": first})
        refused = False
        try:
            reader = ValuesReader(client, module, warehouse.org, run, state, every)
            erased = {rid for m, rid in warehouse.erased() if m == module}
            yield from _read(reader, listing, first, chunk_pages, erased, context)
        except ZohoApiError as error:
            if not error.is_permission:
                raise
            context.module_failed(f"{module} values", error)  # what was read loads
            refused = True
        if not listing.save() and not run.stop and not refused:
            run.unfinished.add(name)

    return record_values


def _read(
    reader: ValuesReader,
    listing: ValuesPass,
    first: Query,
    max_pages: int,
    erased: Set[str],
    context: Any,
) -> Iterator[Any]:
    """Up to `max_pages` pages of a module's pass, and no more once they hold PACKAGE_BYTES,
    an Arrow table a page, handed on in bursts of about ITEM_ROWS rows (the first table with
    the column hints, and again when the fields change); none of the records `erased` on
    request. A record that cannot be a row is set aside in `rejected_records`. A burst's pages
    are noted read once it is handed on."""
    pages, hinted, size = 0, None, 0
    batch: List[pa.Table] = []
    done: List[Tuple[str, List[Any], Optional[Query], Set[int], Optional[datetime]]] = []
    cursor = dict(listing.streams)  # the listing's streams, pages gathered but not handed on
    while pages < max_pages and size < PACKAGE_BYTES:
        stream = next((s for s, q in cursor.items() if q is not None), None)
        if stream is None or not reader.run.take_calls(reader.client, reader.calls_per_page()):
            break
        try:
            records, following = reader.page(cursor[stream], listing.header(stream))
        except ZohoApiError as error:
            capped = error.code == "LIMIT_REACHED"  # Zoho's 100,000 records a listing
            expired = not capped and "page_token" in (cursor[stream] or {}) and error.status == 400
            if not capped and not expired:
                raise
            yield from _hand_on(listing, batch, done)
            batch, done = [], []
            if expired:
                listing.streams[stream] = first  # an expired token: the listing again
            elif not listing.restart_from_newest(stream, first):
                logger.warning(
                    "%s: more records than one listing reaches share one Modified_Time; "
                    "the pass goes on after that second", reader.module,
                )  # fmt: skip
            cursor = dict(listing.streams)
            continue
        cursor[stream] = following
        pages += 1
        whole = reader.whole(records) if records else []
        columns = reader.columns()
        table, bad = values_table(
            whole, reader.fields, columns, reader.org, reader.module, erased
        )
        observed_at = datetime.now(UTC)
        for position, error in bad.items():
            context.reject(reader.org, "values", reader.module, observed_at, whole[position], error)
        newest = pc.max(table["modified_time"]).as_py() if table.num_rows else None
        size += table.nbytes
        hints = column_hints(reader.fields, columns)
        if hints != hinted and batch:  # a new field: what is gathered goes with the old hints
            yield from _hand_on(listing, batch, done)
            batch, done = [], []
        if hints != hinted:
            hinted, batch = hints, [dlt.mark.with_hints(table, dlt.mark.make_hints(columns=hints))]
        else:
            batch.append(table)
        done.append((stream, whole, following, set(bad), newest))
        if sum(_rows(t) for t in batch) >= ITEM_ROWS:
            yield from _hand_on(listing, batch, done)
            batch, done = [], []
    yield from _hand_on(listing, batch, done)


def _rows(item: Any) -> int:
    return item.num_rows if isinstance(item, pa.Table) else item.data.num_rows


def _hand_on(listing: ValuesPass, batch: List[Any], done: List[Any]) -> Iterator[Any]:
    """Yield the gathered tables (the first carrying the hints) and note their pages read."""
    for item in batch:
        if _rows(item):
            yield item
    for stream, records, following, rejected, newest in done:
        listing.advance(stream, records, following, rejected, newest)
