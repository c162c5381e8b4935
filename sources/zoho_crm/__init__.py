"""dlt source for Zoho CRM's deleted records, recycle bin and related records of deleted records.

Config lives in `[sources.zoho_crm]` (see the README); credentials in `.dlt/secrets.toml` or
`SOURCES__ZOHO_CRM__CREDENTIALS__*` environment variables.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Dict, Iterator, List, Optional, Sequence

import dlt
from dlt.extract.resource import DltResource

from sources.zoho_crm.auth import ZohoAuth
from sources.zoho_crm.client import RetryingHttp, ZohoClient
from sources.zoho_crm.config import (
    RelatedListsConfig,
    ZohoCredentials,
    duration_setting,
    modules_setting,
    per_page_setting,
    positive_int,
    related_lists_setting,
    servers,
)
from sources.zoho_crm.errors import ZohoApiError, ZohoConfigError
from sources.zoho_crm.events import EVENTS_HINTS, EventLedger, events_of
from sources.zoho_crm.metadata import (
    RelatedListCheck,
    checked_modules,
    discover_related_lists,
    readable_modules,
    unknown_module_error,
)
from sources.zoho_crm.reconcile import reconcile_resource
from sources.zoho_crm.records import (
    DELETED_RECORDS_SCHEMA,
    RECYCLE_BIN_SCHEMA,
    bin_row,
    deleted_row,
    to_table,
    zoho_time,
)
from sources.zoho_crm.settings import DEFAULT_API_VERSION, MAX_PER_PAGE
from sources.zoho_crm.warehouse import Warehouse

DEFAULT_MAX_CONCURRENCY = 4
DEFAULT_ORG = "default"


class RunReport:
    """What a run did, for the summary: modules read, calls made and modules (or the bin) Zoho
    refused to show."""

    def __init__(self) -> None:
        self.client: Optional[ZohoClient] = None
        self.modules: List[str] = []
        self.failed_modules: Dict[str, ZohoApiError] = {}
        self._lock = threading.Lock()

    def module_failed(self, module: str, error: ZohoApiError) -> None:
        with self._lock:
            self.failed_modules[module] = error

    @property
    def calls(self) -> Counter:
        return self.client.calls if self.client else Counter()


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
    return "deleted_records_" + re.sub(r"[^0-9a-z]+", "_", module.lower()).strip("_")


@dlt.source(name="zoho_crm")
def zoho_crm(
    credentials: ZohoCredentials = dlt.secrets.value,
    data_center: str = "us",
    accounts_server: Optional[str] = None,
    api_domain: Optional[str] = None,
    api_version: str = DEFAULT_API_VERSION,
    modules: Any = "all",
    related_lists: Any = None,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    per_page: int = MAX_PER_PAGE,
    reconcile_every: Any = "1d",
    reconcile: bool = False,
    org: str = DEFAULT_ORG,
    token_retries: int = 2,
    token_retry_delay: float = 15.0,
    report: Optional[RunReport] = None,
) -> Sequence[DltResource]:
    """Zoho CRM's deleted records, recycle bin and related records of binned records.

    Args:
        credentials: OAuth client id, client secret and refresh token.
        data_center: us, eu, in, au, jp, ca, cn or sa; sets the two URLs below.
        accounts_server: explicit accounts server URL (overrides the data center).
        api_domain: explicit API domain URL (overrides the data center and the token's).
        api_version: Zoho CRM API version, `v8` by default.
        modules: `"all"` (every deletable module Zoho lists) or a list of module API names.
        related_lists: module -> {related list -> [field API names]}, or `"auto"`.
        max_concurrency: most API calls in flight at once toward the org (1 to 25).
        per_page: records asked for per call, 1 to 200; 200 (Zoho's maximum) costs fewest calls.
        reconcile_every: how often the full reconciliation pass runs (seconds, or "1d", "12h").
        reconcile: run the reconciliation pass now, whenever the last one was.
        org: the name this org's rows carry in the `org` column (part of every key).
        token_retries: times a token request Zoho throttles is asked again (0 to 5); each
            one prolongs Zoho's block, so few.
        token_retry_delay: seconds between those requests.
        report: filled with calls made and modules that failed, for the caller's summary.

    Returns:
        Per module, a `deleted_records` resource and its `deletion_events` transformer; then
        `recycle_bin`, `deleted_related_records` and `reconcile`.
    """
    accounts, default_api = servers(data_center, accounts_server, None)
    if api_domain:
        servers(data_center, None, api_domain)  # validates the URL
    wanted_modules = modules_setting(modules)
    related = related_lists_setting(related_lists)
    concurrency = positive_int("max_concurrency", max_concurrency, 25)
    page_size = per_page_setting(per_page)
    every = duration_setting("reconcile_every", reconcile_every)
    http = RetryingHttp(max_connections=concurrency)
    auth = ZohoAuth(
        accounts,
        credentials.client_id,
        credentials.client_secret,
        credentials.refresh_token,
        http,
        retries=positive_int("token_retries", token_retries, 5, lower=0),
        retry_delay=duration_setting("token_retry_delay", token_retry_delay).total_seconds(),
    )
    client = ZohoClient(auth, api_domain, default_api, api_version, concurrency, http, page_size)
    report = report if report is not None else RunReport()
    report.client = client

    if wanted_modules == "all":
        module_list = readable_modules(client)
    else:  # before any other check: a misspelt module explains the errors it causes
        module_list = checked_modules(client, wanted_modules)
    report.modules = module_list
    if related == "auto":
        related = discover_related_lists(client, module_list)
    else:
        stray = sorted(set(related) - set(module_list))
        if stray:
            raise ZohoConfigError(
                f"related_lists names module(s) {', '.join(stray)} that are not in modules "
                f"({', '.join(module_list)}): add them to modules or remove them"
            )

    warehouse, ledger = Warehouse(org_name(org)), EventLedger()
    resources: List[DltResource] = []
    for module in module_list:
        records = _deleted_records_resource(client, module, warehouse, report)
        resources += [records, records | _events_transformer(module, ledger)]
    bin_resource = _recycle_bin_resource(client, module_list, warehouse.org, report)
    resources.append(bin_resource)
    if related:
        related_records = _related_records_transformer(client, related, warehouse.org)
        resources.append(bin_resource | related_records)
    resources.append(
        reconcile_resource(client, module_list, warehouse, ledger, report, every, reconcile)
    )
    return resources


def _deleted_records_resource(
    client: ZohoClient, module: str, warehouse: Warehouse, report: RunReport
) -> DltResource:
    @dlt.resource(
        name=resource_name(module),
        table_name="deleted_records",
        primary_key=("org", "module", "id"),
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        columns={"deleted_time": {"dedup_sort": "desc"}},
        parallelized=True,
    )
    def deleted_records(
        deleted_time: dlt.sources.incremental[datetime] = dlt.sources.incremental(
            "deleted_time", range_start="closed"
        ),
    ) -> Iterator[Any]:
        """Every entry of `/{module}/deleted?type=all` changed since the last loaded one.

        `If-Modified-Since` is inclusive, so entries stamped with the high-water mark's second
        come back; the incremental drops the ones already loaded by primary key.
        """
        headers = {}
        if deleted_time.start_value is not None:
            headers["If-Modified-Since"] = zoho_time(deleted_time.start_value)
        observed_at = datetime.now(UTC)
        with _refusal_reported(report, module, deleted_time):
            try:
                for page in client.pages(
                    f"{module}/deleted", "data", {"type": "all"}, headers, module, kind="deleted"
                ):
                    rows = [deleted_row(warehouse.org, module, item, observed_at) for item in page]
                    warehouse.fill_details(module, rows)
                    yield to_table(rows, DELETED_RECORDS_SCHEMA)
            except ZohoApiError as error:
                if error.code == "INVALID_MODULE":
                    raise unknown_module_error(client, module) from None
                raise

    return deleted_records


@contextmanager
def _refusal_reported(report: RunReport, name: str, cursor: Any) -> Iterator[None]:
    """Let the run go on when Zoho refuses `name` for lack of permission, and report it.

    Pages read before the refusal still load, but the cursor goes back to where it was, so the
    next run reads `name` again from there: nothing is skipped.
    """
    state = cursor.get_state()
    before = copy.deepcopy(state)
    try:
        yield
    except ZohoApiError as error:
        if not error.is_permission:
            raise
        state.clear()
        state.update(before)
        report.module_failed(name, error)


def _events_transformer(module: str, ledger: EventLedger) -> DltResource:
    @dlt.transformer(
        name=resource_name(module).replace("deleted_records", "deletion_events"),
        **EVENTS_HINTS,
    )
    def deletion_events(records: Any) -> Iterator[Any]:
        """`binned` / `purged` events of the rows its module loads; a repeat is not inserted."""
        yield ledger.fresh(events_of(records))

    return deletion_events


def _recycle_bin_resource(
    client: ZohoClient, modules: List[str], org: str, report: RunReport
) -> DltResource:
    wanted = set(modules)

    @dlt.resource(name="recycle_bin", primary_key=("org", "id"), write_disposition="merge")
    def recycle_bin(
        deleted_time: dlt.sources.incremental[datetime] = dlt.sources.incremental(
            "deleted_time", range_start="closed"
        ),
    ) -> Iterator[Any]:
        """Entries of `/settings/recycle_bin` binned since the last loaded one, oldest first.

        Zoho's filter only offers `greater_than`, so it is asked for everything after the
        second *before* the high-water mark; the incremental drops what was already loaded.
        The first run, which reads the whole bin, reads each module's part of it in parallel
        (the bin is as large as all modules together); later runs ask once for what is new.
        """
        params: Dict[str, Any] = {"sort_by": "deleted_time", "sort_order": "asc"}
        observed_at = datetime.now(UTC)
        if deleted_time.start_value is None:
            pages = client.interleaved(
                [
                    _bin_pages(client, {**params, "filters": _json_filter("module", "equal", m)})
                    for m in modules
                ]
            )
        else:
            since = deleted_time.start_value - timedelta(seconds=1)
            params["filters"] = _json_filter("deleted_time", "greater_than", zoho_time(since))
            pages = _bin_pages(client, params)
        with _refusal_reported(report, "recycle_bin", deleted_time):
            for page in pages:
                rows = [bin_row(org, item, observed_at) for item in page]
                rows = [row for row in rows if row["module__api_name"] in wanted]
                if rows:
                    yield to_table(rows, RECYCLE_BIN_SCHEMA)

    return recycle_bin


def _bin_pages(client: ZohoClient, params: Dict[str, Any]) -> Iterator[List[Dict[str, Any]]]:
    return client.pages("settings/recycle_bin", "recycle_bin", params, kind="recycle_bin")


def _json_filter(field: str, comparator: str, value: str) -> str:
    condition = {"field": {"api_name": field}, "comparator": comparator, "value": value}
    return json.dumps({"group_operator": "AND", "group": [condition]})


def _related_records_transformer(
    client: ZohoClient, related: RelatedListsConfig, org: str
) -> DltResource:
    check = RelatedListCheck(client, related)

    @dlt.transformer(
        name="deleted_related_records",
        primary_key=("org", "parent_module", "parent_id", "related_list", "id"),
        write_disposition="merge",
    )
    def deleted_related_records(bin_page: Any) -> Iterator[List[Dict[str, Any]]]:
        """Related records of each record newly seen in the bin, once per bin entry."""
        for entry in bin_page.select(["id", "module__api_name"]).to_pylist():
            module, parent_id = entry["module__api_name"], entry["id"]
            lists = related.get(module)
            if not lists:
                continue
            check.ensure(module)
            for name, fields in lists.items():
                path = f"{module}/deleted/{parent_id}/{name}"
                params = {"fields": ",".join(fields)}
                for page in client.pages(path, "data", params, module=module, kind="related"):
                    yield [
                        {
                            "org": org,
                            "parent_module": module,
                            "parent_id": parent_id,
                            "related_list": name,
                            **r,
                        }
                        for r in page
                    ]

    return deleted_related_records
