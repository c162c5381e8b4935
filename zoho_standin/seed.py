"""Seeded, realistic data for the stand-in: the demo org and the benchmark's bulk org."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Optional, Sequence

from zoho_standin.org import Module, Org, RelatedList, User
from zoho_standin.records import add_live_records

# Deleting users sit in different time zones, so Zoho's timestamps mix offsets.
USERS = (
    (User("Patricia Boyle", "410888000000086001"), timezone(timedelta(hours=5, minutes=30))),
    (User("Marco Ruiz", "410888000000086017"), timezone(timedelta(hours=-8))),
    (User("Aiko Tanaka", "410888000000086033"), timezone(timedelta(hours=9))),
    (User("Lena Fischer", "410888000000086049"), UTC),
)
DEMO_MODULES = ("Leads", "Contacts", "Deals", "Accounts")
_FIRST = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas")
_LAST = ("Okafor", "Silva", "Novak", "Haddad", "Kim", "Larsen", "Moreau", "Patel", "Rossi")


def module_id(index: int) -> str:
    return f"4108880000000021{index:02d}"


def add_standard_modules(org: Org, names: Sequence[str], live_records: int = 3) -> None:
    """Modules as `/settings/modules` lists them; Leads and Contacts get related lists, and
    `live_records` live records each, with the standard fields (see `records`)."""
    for index, name in enumerate(names):
        org.add_module(Module(name, module_id(index)))
    # Modules Zoho lists but that hold no deletable records, as real orgs have.
    org.add_module(Module("Home", module_id(90), api_supported=False, deletable=False))
    org.add_module(Module("Visits", module_id(91), deletable=False))
    if "Leads" in org.modules:
        org.modules["Leads"].related_lists = {
            "Campaigns": RelatedList("Campaigns", "Campaigns", fields=("Owner", "Campaign_Name")),
            "Products": RelatedList("Products", "Products", fields=("Owner", "Product_Name")),
            "Tags": RelatedList("Tags", "Tags", type="multiselectlookup"),
        }
    if "Contacts" in org.modules:
        org.modules["Contacts"].related_lists = {
            "Deals": RelatedList("Deals", "Deals", fields=("Owner", "Deal_Name", "Amount")),
        }
    for index, name in enumerate(names):
        if name in ("Leads", "Contacts") and live_records:
            ids = [live_record_id(index, n) for n in range(live_records)]
            add_live_records(org.live, name, ids, datetime.now(UTC))


def live_record_id(module_index: int, n: int) -> str:
    """The id of a seeded live record (apart from the seeded deleted ones' ids)."""
    return f"4108880005{module_index:02d}{n:08d}"


def record_id(module_index: int, n: int) -> str:
    return f"4108880000{module_index:02d}{n:08d}"


def seed_demo(org: Org, now: Optional[datetime] = None, per_module: int = 260) -> None:
    """A demo org: four modules, >200 entries in Leads, bin and permanent entries, related lists.

    Contacts' last entries share one second, and every user deletes in their own offset.
    """
    now = now or datetime.now(UTC)
    rng = random.Random(20261122)
    add_standard_modules(org, DEMO_MODULES)
    sizes = {"Leads": per_module, "Contacts": per_module // 4, "Deals": per_module // 8}
    for module_index, module in enumerate(DEMO_MODULES):
        for n in range(sizes.get(module, 0)):  # Accounts stays empty: Zoho answers 204
            user, tz = USERS[n % len(USERS)]
            creator, _ = USERS[(n + 1) % len(USERS)]
            rid = record_id(module_index, n)
            at = (now - timedelta(days=rng.uniform(0.5, 55))).replace(microsecond=0)
            name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
            org.delete(module, rid, at.astimezone(tz), name, user, creator, creator)
            if n % 5 == 4:  # one in five was purged from the bin later
                purged = min(now, at + timedelta(days=rng.uniform(0.1, 3))).replace(microsecond=0)
                org.purge(module, rid, purged.astimezone(tz))
            elif module in ("Leads", "Contacts"):
                add_demo_related(org, module, rid, n)
    # Records deleted within the same second, in different offsets.
    same_second = (now - timedelta(hours=1)).replace(microsecond=0)
    for k, (user, tz) in enumerate(USERS):
        rid = record_id(1, 9000 + k)
        org.delete(
            "Contacts", rid, same_second.astimezone(tz), f"Same Second {k}", user, user, user
        )


def add_demo_related(org: Org, module: str, rid: str, n: int) -> None:
    owner = {"name": "Patricia Boyle", "id": "410888000000086001", "email": "patricia@example.com"}
    if module == "Leads":
        org.add_related(
            module,
            rid,
            "Campaigns",
            [
                {"id": f"5{rid[1:]}{k}", "Owner": owner, "Campaign_Name": f"Campaign {n % 7}-{k}"}
                for k in range(n % 3)
            ],
        )
        org.add_related(
            module,
            rid,
            "Products",
            [{"id": f"6{rid[1:]}0", "Owner": owner, "Product_Name": f"Product {n % 11}"}],
        )
    else:
        org.add_related(
            module,
            rid,
            "Deals",
            [
                {
                    "id": f"7{rid[1:]}0",
                    "Owner": owner,
                    "Deal_Name": f"Deal {n}",
                    "Amount": 1000.0 + n,
                }
            ],
        )


def seed_bulk(
    org: Org,
    records: int,
    modules: Sequence[str] = ("Leads", "Contacts", "Deals", "Accounts", "Cases"),
    purged_fraction: float = 0.2,
    now: Optional[datetime] = None,
) -> None:
    """`records` deleted records spread evenly over `modules`, a fraction of them purged.

    Each module's purged records share one instant, the newest of the org (a minute ago), as
    when an admin empties the bin: Zoho stamps them all with that second, which becomes the
    high-water mark. The others were deleted over the 55 days before the last hour.
    """
    now = now or datetime.now(UTC)
    purged_at = (now - timedelta(minutes=1)).replace(microsecond=0)
    add_standard_modules(org, modules)
    purge_every = round(1 / purged_fraction) if purged_fraction else 0
    per_module = records // len(modules)
    span = timedelta(days=55).total_seconds()
    for module_index, module in enumerate(modules):
        for n in range(per_module):
            user, tz = USERS[n % len(USERS)]
            ago = timedelta(hours=1, seconds=span * (n + 1) / per_module)
            at = (now - ago).replace(microsecond=0)
            rid = record_id(module_index, n)
            if purge_every and n % purge_every == purge_every - 1:
                org.purge(module, rid, purged_at.astimezone(tz))
            else:
                org.delete(module, rid, at.astimezone(tz), f"Record {n}", user, user, user)
