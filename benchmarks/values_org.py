"""The record-values benchmark's org: one module of live records with 30 fields of Zoho's usual
types, made on demand by the stand-in (a million cost it no memory), and the changes an hour
brings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Tuple

if TYPE_CHECKING:
    from zoho_standin import StandinServer

VALUES_MODULE = "Leads"
VALUES_RECORDS = (1_000_000,)  # the org sizes `make bench` measures
CHANGED_FRACTION = 0.01  # records an hour changes
# the newest record was modified this long before the benchmark began (an org at rest)
AT_REST = timedelta(hours=2)


def values_fields() -> list:
    """30 fields: the standard ones (text, email, phone, picklist, multi-select, date, datetime,
    currency, decimal, boolean, lookup, owner, subform, formula, auto-number) and custom ones."""
    from zoho_standin.records import STANDARD_FIELDS, Field

    custom = [
        Field("Company", "text"),
        Field("Website", "website"),
        Field("Mobile", "phone"),
        Field("Secondary_Email", "email"),
        Field("Industry", "picklist"),
        Field("Description", "textarea"),
        Field("No_of_Employees", "integer"),
        Field("Expected_Close", "date", custom_field=True),
        Field("Budget", "currency", custom_field=True),
        Field("Probability", "percent", custom_field=True),
        Field("Partner", "lookup", custom_field=True, lookup_module="Accounts"),
        Field("Reviewed", "boolean", custom_field=True),
        Field("Region", "picklist", custom_field=True),
    ]
    fields = [*STANDARD_FIELDS, *custom]
    assert len(fields) == 30
    return fields


def seeded_values_server(records: int) -> Tuple[StandinServer, datetime]:
    """A started stand-in whose `VALUES_MODULE` holds `records` live records, a second apart,
    the newest modified AT_REST ago; and that newest time."""
    from zoho_standin import Org, StandinServer
    from zoho_standin.seed import add_standard_modules

    org = Org()
    add_standard_modules(org, (VALUES_MODULE,), live_records=0)
    org.live.define(VALUES_MODULE, values_fields())
    newest = (datetime.now(UTC) - AT_REST).replace(microsecond=0)
    org.live.generate(VALUES_MODULE, records, newest)
    return StandinServer(org).start(), newest


def change_an_hour(server: StandinServer, records: int) -> int:
    """An hour's edits: CHANGED_FRACTION of the records (spread over the org) modified over the
    last hour, the newest two minutes ago. Returns how many changed."""
    live = server.org.live
    changed = max(1, int(records * CHANGED_FRACTION))
    now = datetime.now(UTC).replace(microsecond=0)
    step = timedelta(hours=1) / changed
    made = live.generated[VALUES_MODULE]
    for k in range(changed):
        n = k * (records // changed)
        record = made.record(n)
        at = (now - timedelta(hours=1) + k * step).replace(microsecond=0)
        at = min(at, now - timedelta(minutes=2))
        live.put(VALUES_MODULE, {**record, "Company": f"Changed {k}", "Modified_Time": at})
    return changed
