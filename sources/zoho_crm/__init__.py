"""dlt source for Zoho CRM's deleted records, recycle bin and related records of deleted records.

Config lives in `[sources.zoho_crm]` (see the README); credentials in `.dlt/secrets.toml` or
`SOURCES__ZOHO_CRM__CREDENTIALS__*` environment variables. dlt resolves and types every
argument of `zoho_crm` from there (lists and mappings from TOML, or JSON in a variable).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import dlt
from dlt.sources import DltResource, DltSource

from .auth import ZohoAuth
from .client import ZohoClient
from .config import (
    RelatedListsConfig,
    ZohoCredentials,
    duration_setting,
    modules_setting,
    positive_int,
    related_lists_setting,
    servers,
)
from .errors import ZohoApiError, ZohoConfigError, ZohoMalformedError
from .events import EVENTS_HINTS, EmittedEvents, events_name, events_of
from .metadata import (
    checked_modules,
    lookup_related_lists,
    readable_modules,
    unknown_module_error,
)
from .passes import Batch, ListPass
from .reconcile import reconcile_resource
from .records import (
    DELETED_RECORDS_SCHEMA,
    accepted,
    deleted_row,
    module_slug,
    zoho_time,
)
from .recycle_bin import recycle_bin_resources
from .related import related_lists_check, related_resources
from .run_context import ZohoRun
from .settings import DEFAULT_API_VERSION, MAX_PER_PAGE
from .transport import RetryingHttp
from .values import (
    DEFAULT_VALUES_CALLS_PER_RUN,
    ValueFieldsConfig,
    ValuesRun,
    record_value_fields_setting,
    record_values_setting,
    values_memo_resource,
    values_modules,
    values_resources,
)
from .warehouse import RECORDS_TABLE, Warehouse

__all__ = ["DEFAULT_ORG", "ZohoRun", "org_name", "run_packages", "zoho_client", "zoho_crm"]

DEFAULT_MAX_CONCURRENCY = 4
# Rows of one table per load package: the merge's de-duplication runs over one package's rows,
# so this bounds the load's memory whatever the org's size (measured: see docs/performance.md).
DEFAULT_LOAD_CHUNK_ROWS = 100_000
# A Free org has 5,000 credits a day; hourly runs with nothing new spend about 150 of them.
DEFAULT_RELATED_CALLS_PER_RUN = 1_000
DEFAULT_API_CREDITS_RESERVE = 1_000
DEFAULT_ORG = "default"
MODULES_MEMO = "modules_memo"  # the source state key, and the resource that writes it
RELATED_MEMO = "related_lists_memo"  # the source state key of discovered related lists


def org_name(org: Any) -> str:
    """An org name: letters, digits and underscores (it names a pipeline too)."""
    name = str(org or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise ZohoConfigError(
            f"org {org!r} is not a valid org name: use letters, digits and underscores"
        )
    return name


def resource_name(module: str) -> str:
    """The per-module resource (and incremental state) name, e.g. `deleted_records_price_books`."""
    return "deleted_records_" + module_slug(module)


@dlt.source(name="zoho_crm")
def zoho_crm(
    credentials: ZohoCredentials = dlt.secrets.value,
    data_center: str = "us",
    accounts_server: Optional[str] = None,
    api_domain: Optional[str] = None,
    api_version: str = DEFAULT_API_VERSION,
    modules: Optional[List[str]] = None,
    related_lists: Optional[RelatedListsConfig] = None,
    discover_related_lists: bool = False,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    per_page: int = MAX_PER_PAGE,
    reconcile_every: str = "1d",
    reconcile: bool = False,
    org: str = DEFAULT_ORG,
    token_retries: int = 2,
    token_retry_delay: str = "15s",
    load_chunk_rows: int = DEFAULT_LOAD_CHUNK_ROWS,
    related_calls_per_run: int = DEFAULT_RELATED_CALLS_PER_RUN,
    api_credits_reserve: int = DEFAULT_API_CREDITS_RESERVE,
    record_values: Optional[List[str]] = None,
    record_value_fields: Optional[ValueFieldsConfig] = None,
    values_calls_per_run: int = DEFAULT_VALUES_CALLS_PER_RUN,
    run: Optional[ZohoRun] = None,
) -> Sequence[DltResource]:
    """Zoho CRM's deleted records, recycle bin and related records of binned records.

    Building the source may call Zoho: it resolves the modules (`/settings/modules`) and, with
    `discover_related_lists`, discovers related lists, as dlt's `sql_database` reflects
    tables, because each module gets its own resource. Both are remembered in the source's
    state for `reconcile_every`, so a build within that time makes no call. Build it where it
    runs all the same: the Airflow DAG (`pipelines/airflow_dag.py`) builds it inside its task,
    never while Airflow parses the file, and `make_pipeline` needs no source at all.

    Args:
        credentials: OAuth client id, client secret and refresh token.
        data_center: us, eu, in, au, jp, ca, cn or sa; sets the two URLs below.
        accounts_server: explicit accounts server URL (overrides the data center).
        api_domain: explicit API domain URL (overrides the data center and the token's).
        api_version: Zoho CRM API version, `v8` by default.
        modules: module API names to read; None (left out): every module `/settings/modules`
            lists as API-supported and deletable.
        related_lists: module -> {related list -> [field API names]} whose related records of
            binned records are captured; None: none (unless discovered).
        discover_related_lists: capture every lookup related list of the modules, with up to
            50 fields each, as Zoho's metadata lists them (instead of `related_lists`).
        max_concurrency: most API calls in flight at once toward the org (1 to 25).
        per_page: records asked for per call, 1 to 200; 200 (Zoho's maximum) costs fewest calls.
        reconcile_every: how often the full reconciliation pass runs (seconds, or "1d", "12h").
        reconcile: run the reconciliation pass now, whenever the last one was.
        org: the name this org's rows carry in the `org` column (part of every key).
        token_retries: times a token request Zoho throttles is asked again (0 to 5); each
            one prolongs Zoho's block, so few.
        token_retry_delay: time between those requests (seconds, or e.g. "30s").
        load_chunk_rows: about how many rows of a table one load package takes; a longer pass
            goes on in the next package (see `passes`), so every load and merge stays small.
        related_calls_per_run: most related-records calls one run makes; the backlog goes on
            in the next run (see `related`).
        api_credits_reserve: related records stop once Zoho reports this many API credits left
            for the day (`X-API-CREDITS-REMAINING`), kept for the runs to come; record
            values stop there too.
        record_values: module API names whose live records' field values are copied into
            `values_<module>` (see `values`); None: none.
        record_value_fields: module -> field API names, narrowing `record_values` (default:
            every field Zoho's metadata lists).
        values_calls_per_run: most record-values calls one run makes; a longer pass goes on
            in the next run.
        run: the run this source is a package of (see `run_packages`). Pass the same one to
            every package of a run: it carries the run's Zoho client and resolved modules, so
            one access token serves the whole run, and what the run did.

    Returns:
        Per module, a `deleted_records` resource and its `deletion_events` transformer; then
        the bin's (see `recycle_bin`), `reconcile`, with related lists
        `deleted_related_records`, and with `record_values` a `values_<module>` per module.
    """
    run = run if run is not None else ZohoRun()
    if run.client is None:
        run.client = zoho_client(
            credentials, data_center, accounts_server, api_domain, api_version,
            max_concurrency, per_page, token_retries, token_retry_delay,
        )  # fmt: skip
    client = run.client
    wanted_modules = modules_setting(modules)
    run.modules_config = wanted_modules
    related = related_lists_setting(related_lists)
    if discover_related_lists and related:
        raise ZohoConfigError(
            "discover_related_lists is true and related_lists names lists too: keep one of them"
        )
    every = duration_setting("reconcile_every", reconcile_every)
    chunk_rows = positive_int("load_chunk_rows", load_chunk_rows)
    related_budget = positive_int("related_calls_per_run", related_calls_per_run)
    reserve = positive_int("api_credits_reserve", api_credits_reserve, lower=0)
    if run.modules is None:
        run.modules, run.modules_resolved = _known_modules(client, wanted_modules, every)
    module_list = run.modules
    discovered = None  # related lists discovered by this build, to remember
    if run.related is None:
        if discover_related_lists:
            memo = _remembered(RELATED_MEMO, module_list, every)
            if memo is None:
                related = discovered = lookup_related_lists(client, module_list)
            else:
                related = memo["related"]
        else:
            stray = sorted(set(related) - set(module_list))
            if stray:
                raise ZohoConfigError(
                    f"related_lists names module(s) {', '.join(stray)} that are not in modules "
                    f"({', '.join(module_list)}): add them to modules or remove them from "
                    "related_lists"
                )
        run.related, run.related_calls_left = related, related_budget
    # the modules' lists are read side by side: each gets its share of a package's rows
    chunk_pages = max(1, chunk_rows // (client.per_page * max(1, len(module_list))))

    if run.warehouse is None:
        run.warehouse = Warehouse(org_name(org))
    warehouse, emitted = run.warehouse, EmittedEvents()
    resources: List[DltResource] = []
    for module in module_list:
        records = _deleted_records_resource(client, module, warehouse, run, chunk_pages)
        resources += [records, records | _events_transformer(module, emitted)]
    resources += recycle_bin_resources(client, module_list, warehouse, run, chunk_pages)
    resources.append(
        reconcile_resource(client, module_list, warehouse, emitted, run, every, reconcile)
    )
    resources.append(_modules_memo(run, discovered))
    values_wanted = record_values_setting(record_values)
    if values_wanted and run.values is None:
        modules_checked, resolved = values_modules(client, values_wanted, every)
        run.values = ValuesRun(
            modules_checked,
            resolved,
            values_wanted,
            record_value_fields_setting(record_value_fields, values_wanted),
            positive_int("values_calls_per_run", values_calls_per_run),
            reserve,
        )
    if run.values is not None:
        values_pages = max(1, chunk_rows // (client.per_page * len(run.values.modules)))
        resources.append(values_memo_resource(run.values))
        resources += values_resources(client, run, warehouse, values_pages, every)
    if run.related:
        resources.append(related_lists_check(client, run.related))
        resources.append(related_resources(client, run.related, warehouse, run, reserve))
    return resources


def run_packages(run: ZohoRun, **source_args: Any) -> Iterator[DltSource]:
    """The sources of one run's load packages, in the order `ZohoRun.packages` plans; each is
    built when the package before it has loaded. `source_args` are `zoho_crm`'s; a forced
    `reconcile` pass runs in the first package only."""
    first = zoho_crm(run=run, **source_args)
    later_args = {**source_args, "reconcile": False}
    for number, resources in enumerate(run.packages(list(first.resources))):
        source = first if number == 0 else zoho_crm(run=run, **later_args)
        yield source.with_resources(*resources)


def _known_modules(
    client: ZohoClient, wanted: Optional[List[str]], every: timedelta
) -> Tuple[List[str], bool]:
    """The modules to read: all (None) as `/settings/modules` lists them, or the configured list
    checked against it — before any other check, as a misspelt module explains the errors it
    causes. What a run resolved is remembered for `reconcile_every` (see `_modules_memo`), so
    a run with nothing new makes no metadata call. Returns (modules, resolved by this call)."""
    memo = _remembered(MODULES_MEMO, wanted, every)
    if memo is not None:
        return list(memo["modules"]), False
    if wanted is None:
        return readable_modules(client), True
    return checked_modules(client, wanted), True


def _remembered(key: str, config: Any, every: timedelta) -> Optional[Dict[str, Any]]:
    """What the source state remembers under `key` when it was resolved from `config` less
    than `every` ago; None otherwise (Zoho is asked again)."""
    memo = dlt.current.source_state().get(key) or {}
    at = memo.get("at")
    if memo.get("config") != config or not at:
        return None
    return memo if datetime.now(UTC) - datetime.fromisoformat(at) < every else None


def _modules_memo(
    run: ZohoRun, discovered: Optional[RelatedListsConfig] = None
) -> DltResource:
    """A resource that loads nothing: it remembers, in the source's state (committed with the
    run's first package), which modules the run resolved and from what configuration, and
    the related lists it `discovered` in those modules."""

    @dlt.resource(name=MODULES_MEMO)
    def modules_memo() -> Iterator[Any]:
        state, at = dlt.current.source_state(), datetime.now(UTC).isoformat()
        if run.modules_resolved:
            state[MODULES_MEMO] = {
                "config": run.modules_config,
                "modules": list(run.modules or []),
                "at": at,
            }
        if discovered is not None:
            state[RELATED_MEMO] = {"config": run.modules, "related": discovered, "at": at}
        yield from ()

    return modules_memo


def zoho_client(
    credentials: ZohoCredentials,
    data_center: str = "us",
    accounts_server: Optional[str] = None,
    api_domain: Optional[str] = None,
    api_version: str = DEFAULT_API_VERSION,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    per_page: int = MAX_PER_PAGE,
    token_retries: int = 2,
    token_retry_delay: str = "15s",
) -> ZohoClient:
    """A Zoho client configured as the source's arguments of the same names say (a run's, or
    `zoho-deleted restore`'s), each one checked."""
    retries = positive_int("token_retries", token_retries, 5, lower=0)
    delay = duration_setting("token_retry_delay", token_retry_delay).total_seconds()
    accounts, default_api = servers(data_center, accounts_server, None)
    if api_domain:
        servers(data_center, None, api_domain)  # validates the URL
    concurrency = positive_int("max_concurrency", max_concurrency, 25)
    page_size = positive_int("per_page", per_page, MAX_PER_PAGE)
    http = RetryingHttp(max_connections=concurrency)
    auth = ZohoAuth(
        accounts,
        credentials.client_id,
        credentials.client_secret,
        credentials.refresh_token,
        http,
        retries=retries,
        retry_delay=delay,
    )
    return ZohoClient(auth, api_domain, default_api, api_version, concurrency, http, page_size)


def _deleted_records_resource(
    client: ZohoClient, module: str, warehouse: Warehouse, run: ZohoRun, chunk_pages: int
) -> DltResource:
    @dlt.resource(
        name=resource_name(module),
        table_name=RECORDS_TABLE,
        primary_key=("org", "module", "id"),
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        columns={"deleted_time": {"dedup_sort": "desc"}},
        parallelized=True,
    )
    def deleted_records() -> Iterator[Any]:
        """Entries of `/{module}/deleted?type=all` changed since the last complete pass.

        At most `chunk_pages` pages per load package; `passes` says how a pass goes on, and
        why these resources keep their own high-water mark rather than dlt's `incremental`.
        """
        listing = ListPass(
            dlt.current.resource_state(), {"list": client.first_query({"type": "all"})}
        )
        headers = {"If-Modified-Since": zoho_time(listing.since)} if listing.since else {}
        observed_at = datetime.now(UTC)
        pages = listing.read(
            client, "list", f"{module}/deleted", "data", chunk_pages, headers, module, "deleted"
        )
        def rows_of(page: List[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], Set[int]]:
            rows, rejected = accepted(
                page,
                lambda item: deleted_row(warehouse.org, module, item, observed_at),
                lambda item, error: run.reject(
                    warehouse.org, "deleted", module, observed_at, item, error
                ),
            )
            return warehouse.unseen(module, rows, listing.since), rejected

        def fill_details(rows: List[Dict[str, Any]]) -> None:
            warehouse.fill_details(module, rows)

        try:
            yield from Batch(listing, DELETED_RECORDS_SCHEMA, fill_details).items(pages, rows_of)
        except ZohoMalformedError as error:  # what was read loads; the others go on
            run.module_malformed(module, error)
            listing.save()
            return
        except ZohoApiError as error:
            if error.code == "INVALID_MODULE":
                raise unknown_module_error(client, module) from None
            if not error.is_permission:
                raise
            # What was read loads, and the pass goes on from there once Zoho allows it.
            run.module_failed(module, error)
            listing.save()
            return
        if not listing.save():
            run.unfinished(resource_name(module))

    return deleted_records


def _events_transformer(module: str, emitted: EmittedEvents) -> DltResource:
    @dlt.transformer(
        name=events_name(resource_name(module)),
        **EVENTS_HINTS,
    )
    def deletion_events(records: Any) -> Iterator[Any]:
        """`binned` / `purged` events of the rows its module loads; a repeat is not inserted."""
        yield emitted.fresh(events_of(records))

    return deletion_events
