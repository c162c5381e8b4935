"""`deletion_events`: binned, purged and restored, one row per (org, module, id, event).

The table is loaded with dlt's insert-only merge, so an event already in the warehouse is never
inserted again. That MERGE does not de-duplicate within one load, though, so each run keeps a
ledger of the events it has emitted (incremental reads and reconciliation overlap, and a page
can repeat a record while the bin shifts) and drops repeats before they are yielded.
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
        ("event_time", pa.timestamp("us", tz="UTC")),  # Zoho's time where it gives one
        ("observed_at", pa.timestamp("us", tz="UTC")),  # when a run saw it
    ]
)
EVENTS_HINTS = dlt.mark.make_hints(
    table_name=EVENTS_TABLE,
    primary_key=("org", "module", "id", "event"),
    write_disposition={"disposition": "merge", "strategy": "insert-only"},
)


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
    """Zoho does not say when a record was restored: only when a run noticed."""
    return pa.Table.from_pylist(
        [
            {
                "org": r["org"],
                "module": r["module"],
                "id": r["id"],
                "event": "restored",
                "observed_at": observed_at,
            }
            for r in rows
        ],
        schema=EVENTS_SCHEMA,
    )


class EventLedger:
    """The events one run (of one org) has emitted; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: Set[int] = set()

    def fresh(self, events: pa.Table) -> pa.Table:
        """`events` without the ones this run already emitted (or repeated within it)."""
        keep = []
        with self._lock:
            for module, rid, event in zip(
                events["module"].to_pylist(),
                events["id"].to_pylist(),
                events["event"].to_pylist(),
                strict=True,
            ):
                key = hash((module, rid, event))
                keep.append(key not in self._seen)
                self._seen.add(key)
        return events.filter(pa.array(keep, pa.bool_()))
