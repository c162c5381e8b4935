"""`deletion_events`: binned, purged and restored, one row per (org, module, id, event, event_time).

`event_time` is in the key so that each deletion of a record is its own `binned` event: a
record deleted, restored and deleted again has two, at Zoho's two deleted times.

The table is loaded with dlt's insert-only merge, so an event already in the warehouse is never
inserted again. That MERGE does not de-duplicate within one load, though, so each run keeps a
record of the events it has emitted, `EmittedEvents` (incremental reads and reconciliation
overlap, and a page can repeat a record while the bin shifts), and drops repeats before they
are yielded. Nor does it take a load job twice well, which dlt does when a run was killed
after the job's rows landed: `pipelines.landed_jobs` records such a job as done instead, which
relies on `EmittedEvents` putting each event in one job of a package at most.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any, Dict, List, Set

import dlt
import pyarrow as pa
import pyarrow.compute as pc

EVENTS_TABLE = "deletion_events"
EVENTS_SCHEMA = pa.schema(
    [
        pa.field("org", pa.string(), nullable=False),
        pa.field("module", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("event", pa.string(), nullable=False),  # binned | purged | restored
        # Zoho's time (deleted_time; for a purge the purge time); for a restore, which Zoho
        # does not date, when a run noticed it
        pa.field("event_time", pa.timestamp("us", tz="UTC"), nullable=False),
        ("observed_at", pa.timestamp("us", tz="UTC")),  # when a run saw it
    ]
)
EVENTS_HINTS = dlt.mark.make_hints(
    table_name=EVENTS_TABLE,
    primary_key=("org", "module", "id", "event", "event_time"),
    write_disposition={"disposition": "merge", "strategy": "insert-only"},
)


def events_name(resource: str) -> str:
    """The events transformer of a module's `deleted_records` resource (others: itself)."""
    return resource.replace("deleted_records_", "deletion_events_", 1)


def events_of(records: pa.Table) -> pa.Table:
    """A `binned` or `purged` event for each `deleted_records` row, at Zoho's deleted_time."""
    event = pc.if_else(pc.equal(records["type"], "recycle"), "binned", "purged")
    return pa.Table.from_arrays(
        [
            records["org"],
            records["module"],
            records["id"],
            event,
            records["deleted_time"],
            records["observed_at"],
        ],
        schema=EVENTS_SCHEMA,
    )


def restored_events(rows: List[Dict[str, Any]], observed_at: datetime) -> pa.Table:
    """Zoho does not say when a record was restored: its event time is when a run noticed."""
    return pa.Table.from_pylist(
        [
            {
                "org": r["org"],
                "module": r["module"],
                "id": r["id"],
                "event": "restored",
                "event_time": observed_at,
                "observed_at": observed_at,
            }
            for r in rows
        ],
        schema=EVENTS_SCHEMA,
    )


class EmittedEvents:
    """The events one load package has emitted, as one hash each; thread-safe.

    A run makes a new one for each package (a new source), so it holds at most one
    package's events (`load_chunk_rows`); across packages dlt's insert-only merge keeps an
    event from being inserted twice.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: Set[int] = set()

    def fresh(self, events: pa.Table) -> pa.Table:
        """`events` without the ones this run already emitted (or repeated within it)."""
        with self._lock:
            keep = [
                self._first(hash(key))
                for key in zip(
                    events["module"].to_pylist(),
                    events["id"].to_pylist(),
                    events["event"].to_pylist(),
                    events["event_time"].to_pylist(),
                    strict=True,
                )
            ]
        return events.filter(pa.array(keep, pa.bool_()))

    def _first(self, key: int) -> bool:
        if key in self._seen:
            return False
        self._seen.add(key)
        return True
