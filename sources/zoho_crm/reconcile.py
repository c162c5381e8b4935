"""Reconciliation: the full pass that incremental reads cannot make.

A restore is an absence: the record leaves the bin and no incremental answer mentions it. So,
every `reconcile_every` (or on demand), one pass lists the bin in full, re-reads `/deleted`
since the last pass (less a margin), and compares both with what the warehouse holds as
`recycle`. A held record that is neither in the bin nor permanent now was restored in Zoho.
The same pass loads bin entries that incremental paging missed while the bin shifted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Dict, Iterator, List, Set, Tuple

import dlt
from dlt.extract.resource import DltResource

from sources.zoho_crm.client import ZohoClient
from sources.zoho_crm.errors import ZohoApiError
from sources.zoho_crm.events import EVENTS_HINTS, EventLedger, events_of, restored_events
from sources.zoho_crm.records import (
    DELETED_RECORDS_SCHEMA,
    RECYCLE_BIN_SCHEMA,
    bin_row,
    deleted_row,
    to_table,
    zoho_time,
)
from sources.zoho_crm.warehouse import Warehouse

# Re-read a little before the last pass started: clocks and Zoho's indexing are not exact.
MARGIN = timedelta(hours=1)
Key = Tuple[str, str]

RECYCLE_BIN_HINTS = dlt.mark.make_hints(
    table_name="recycle_bin",
    primary_key=("org", "id"),
    write_disposition="merge",
)


def reconcile_resource(
    client: ZohoClient,
    modules: List[str],
    warehouse: Warehouse,
    ledger: EventLedger,
    report: Any,
    every: timedelta,
    force: bool,
) -> DltResource:
    wanted = set(modules)

    @dlt.resource(
        name="reconcile",
        table_name="deleted_records",
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

        in_bin: Dict[Key, Dict[str, Any]] = {}
        params = {"sort_by": "deleted_time", "sort_order": "asc"}
        for page in client.pages("settings/recycle_bin", "recycle_bin", params, kind="reconcile"):
            rows = [bin_row(warehouse.org, item, now) for item in page]
            rows = [row for row in rows if row["module__api_name"] in wanted]
            in_bin.update({(row["module__api_name"], row["id"]): row for row in rows})
            if rows:
                yield _variant(to_table(rows, RECYCLE_BIN_SCHEMA), RECYCLE_BIN_HINTS)

        seen: Set[Key] = set()
        readable = []
        for module in modules:
            try:
                yield from _reread(client, warehouse, ledger, module, since, now, seen)
                readable.append(module)
            except ZohoApiError as error:
                if not error.is_permission:
                    raise
                report.module_failed(module, error)  # no restore is inferred for it

        held = warehouse.binned(readable)
        restored = [r for r in held if (r["module"], r["id"]) not in in_bin.keys() | seen]
        if restored:
            yield to_table([{**r, "restored_at": now} for r in restored], DELETED_RECORDS_SCHEMA)
            yield _variant(ledger.fresh(restored_events(restored, now)), EVENTS_HINTS)

        held_keys = {(r["module"], r["id"]) for r in held}
        missed = [r for key, r in in_bin.items() if key not in held_keys | seen]
        if missed:
            table = to_table([_record_from_bin(r) for r in missed], DELETED_RECORDS_SCHEMA)
            yield table
            yield _variant(ledger.fresh(events_of(table)), EVENTS_HINTS)
        state["last_started_at"] = now.isoformat()

    return reconcile


def _reread(
    client: ZohoClient,
    warehouse: Warehouse,
    ledger: EventLedger,
    module: str,
    since: Any,
    now: datetime,
    seen: Set[Key],
) -> Iterator[Any]:
    headers = {"If-Modified-Since": zoho_time(since)} if since else {}
    for page in client.pages(
        f"{module}/deleted", "data", {"type": "all"}, headers, module, kind="reconcile"
    ):
        rows = [deleted_row(warehouse.org, module, item, now) for item in page]
        warehouse.fill_details(module, rows)
        seen.update((module, row["id"]) for row in rows)
        table = to_table(rows, DELETED_RECORDS_SCHEMA)
        yield table
        yield _variant(ledger.fresh(events_of(table)), EVENTS_HINTS)


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
