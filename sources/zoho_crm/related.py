"""Related records of binned records, fetched from a backlog the warehouse keeps.

Zoho serves a deleted record's related records only while the record is in the bin, one call
per related list per record: for a large bin, more calls than a day's credits. So they are not
fetched while the bin is read but afterwards, from a backlog: every (bin entry, related list)
the warehouse holds without a `related_fetches` row, soonest-expiring first. The run fetches
them in parallel (a dlt transformer with `parallelized=True`, calls capped by
`max_concurrency`), in load packages of `RELATED_CHUNK` lists each, so what it fetched is
committed as it goes; it stops when its budget is spent (`related_calls_per_run`, or Zoho's
`X-API-CREDITS-REMAINING` at `api_credits_reserve`), and the next run goes on from there.

A list Zoho refuses (permission, scope) gets no `related_fetches` row, so a later run that is
allowed fetches it; a parent that left the bin before its call (404 / 400 `INVALID_DATA`, 204)
is noted as `gone` and never asked for again, and so is a parent erased on request (`erased`,
without a call; related records that are themselves erased records are dropped too).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Tuple

import dlt
from dlt.sources import DltResource

from .client import ZohoClient
from .config import RelatedListsConfig
from .errors import ZohoApiError, ZohoMalformedError
from .metadata import RelatedListCheck
from .records import MalformedEntryError, accepted, checked_entry
from .warehouse import FETCHES_TABLE, Warehouse

if TYPE_CHECKING:  # the run imports this module's names
    from .run_context import ZohoRun

logger = logging.getLogger(__name__)
RELATED_TABLE = "deleted_related_records"
RELATED_BACKLOG = "related_backlog"
RELATED_CHECK = "related_lists_check"
RELATED_CHUNK = 500  # (entry, related list) pairs per load package
FETCHES_HINTS = dlt.mark.make_hints(
    table_name=FETCHES_TABLE,
    primary_key=("org", "parent_module", "parent_id", "related_list"),
    write_disposition="merge",
    columns={
        "fetched_at": {"data_type": "timestamp"},
        "outcome": {"data_type": "text"},  # fetched | gone | erased
        "records": {"data_type": "bigint"},
    },
)


def configured_lists(related: RelatedListsConfig) -> List[Tuple[str, str]]:
    """Every configured (module, related list)."""
    return [(module, name) for module, names in related.items() for name in names]


def parent_gone(error: ZohoApiError) -> bool:
    """Zoho's answers for a parent that left the bin (purged or restored) before the call."""
    if error.code != "INVALID_DATA":
        return False
    return error.status == 404 or "relation" not in str(error).lower()


def related_lists_check(client: ZohoClient, related: RelatedListsConfig) -> DltResource:
    """A resource that loads nothing: it checks the configured related lists against Zoho's
    metadata before anything loads (with the run's first package), once per configuration."""

    @dlt.resource(name=RELATED_CHECK)
    def related_lists_check() -> Iterator[Any]:
        state = dlt.current.resource_state()
        configured = json.dumps(related, sort_keys=True)
        if state.get("checked") != configured:
            check = RelatedListCheck(client, related)
            for module in related:
                check.ensure(module)
            state["checked"] = configured
        yield from ()

    return related_lists_check


def related_resources(
    client: ZohoClient,
    related: RelatedListsConfig,
    warehouse: Warehouse,
    run: ZohoRun,
    credits_reserve: int,
) -> DltResource:
    """The backlog and the transformer that fetches it: `backlog | deleted_related_records`."""
    @dlt.resource(name=RELATED_BACKLOG, selected=False)
    def related_backlog() -> Iterator[Dict[str, str]]:
        """The next (entry, related list) pairs to fetch, one item each (fetched in parallel)."""
        lists = [pair for pair in configured_lists(related) if pair not in run.refused_lists]
        for pair in warehouse.related_backlog(lists, RELATED_CHUNK):
            key = (pair["module"], pair["parent_id"], pair["related_list"])
            if key not in run.related_again:  # fetched malformed: once a run
                yield pair

    @dlt.transformer(
        name=RELATED_TABLE,
        primary_key=("org", "parent_module", "parent_id", "related_list", "id"),
        write_disposition="merge",
        parallelized=True,
    )
    def deleted_related_records(pair: Dict[str, str]) -> Iterator[Any]:
        """Every page of one related list of one bin entry, then a `related_fetches` row."""
        module, parent_id, name = pair["module"], pair["parent_id"], pair["related_list"]
        if (module, name) in run.refused_lists:
            return
        erased = warehouse.erased()
        if (module, parent_id) in erased:
            rows, outcome = [], "erased"  # erased on request: never asked for
        else:
            rows, outcome = _fetch(client, run, credits_reserve, warehouse, pair)
        erased_ids = {rid for _, rid in erased}  # Zoho's ids are unique across an org's modules
        rows = [r for r in rows if str(r.get("id")) not in erased_ids]
        base = {"org": warehouse.org, "parent_module": module, "parent_id": parent_id}
        if rows:
            yield [{**base, "related_list": name, **r} for r in rows]
        if outcome is None:
            return  # refused, out of budget or malformed: left in the backlog
        fetch = {
            **base,
            "related_list": name,
            "fetched_at": datetime.now(UTC),
            "outcome": outcome,
            "records": len(rows),
        }
        yield dlt.mark.with_hints([fetch], FETCHES_HINTS, create_table_variant=True)

    return related_backlog | deleted_related_records


def _fetch(
    client: ZohoClient,
    run: ZohoRun,
    credits_reserve: int,
    warehouse: Warehouse,
    pair: Dict[str, str],
) -> Tuple[List[Dict[str, Any]], Any]:
    """(records, outcome): outcome `fetched` or `gone`, None when nothing may be noted.

    A malformed page, or records Zoho sent malformed (set aside in `rejected_records`; the
    others are returned), leave the list to fetch again in the next run."""
    module, parent_id, name = pair["module"], pair["parent_id"], pair["related_list"]
    fields = run.related[module][name] if run.related else []
    query: Any = client.first_query({"fields": ",".join(fields)})
    path = f"{module}/deleted/{parent_id}/{name}"
    rows: List[Dict[str, Any]] = []
    at = datetime.now(UTC)
    again = False

    def reject(item: Any, error: MalformedEntryError) -> None:
        run.reject(warehouse.org, "related", f"{module}.{name}", at, item, error)

    while query is not None:
        if not run.take_related_call(credits_reserve):
            return [], None
        try:
            page, query = client.page(path, "data", query, module=module, kind="related")
        except ZohoMalformedError as error:
            run.module_malformed(f"{module}.{name}", error)
            run.related_again.add((module, parent_id, name))
            return rows, None
        except ZohoApiError as error:
            if error.is_permission:
                run.list_refused(module, name, error)
                return [], None
            if parent_gone(error):
                logger.info("%s %s left the bin before its %s were read", module, parent_id, name)
                return [], "gone"
            if error.status == 429:  # the day's credits are spent: the next runs go on
                run.stop_related(f"Zoho's daily API credits are spent ({error.code})")
                return [], None
            raise
        good, rejected = accepted(page, checked_entry, reject)
        rows.extend(good)
        again = again or bool(rejected)
    if again:
        run.related_again.add((module, parent_id, name))
        return rows, None
    return rows, "fetched"
