"""The orgs the benchmark measures: the stand-in's modules, the org sizes, the purged fraction,
the latency run's shape, and seeding a stand-in with them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Tuple

if TYPE_CHECKING:
    from zoho_standin import StandinServer

MODULES = ("Leads", "Contacts", "Deals", "Accounts", "Cases")
RECORDS = (100_000, 200_000, 1_000_000)  # the org sizes `make bench` measures
PURGED_FRACTION = 0.2
PER_PAGE = 200
LATENCY = 0.15  # seconds added to every API call of the latency run
LATENCY_PAGES_PER_MODULE = 8


def seeded_server(records: int, latency: float = 0.0) -> Tuple[StandinServer, int]:
    """A started stand-in holding `records` deleted records (a fifth purged)."""
    from zoho_standin import Org, StandinServer
    from zoho_standin.seed import seed_bulk

    org = Org()
    seed_bulk(org, records, modules=MODULES, purged_fraction=PURGED_FRACTION)
    return StandinServer(org, latency=latency).start(), len(org.entries)
