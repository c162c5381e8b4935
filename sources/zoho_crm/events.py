"""`deletion_events`: binned, purged and restored, one row per (org, module, id, event, event_time).

`event_time` is in the key so that each deletion of a record is its own `binned` event: a
record deleted, restored and deleted again has two, at Zoho's two deleted times.

The table is loaded with dlt's insert-only merge, so an event already in the warehouse is never
inserted again. That MERGE does not de-duplicate within one load, though, so each run keeps a
ledger of the events it has emitted (incremental reads and reconciliation overlap, and a page
can repeat a record while the bin shifts) and drops repeats before they are yielded.
"""

from __future__ import annotations

import threading
from array import array
from datetime import datetime
from typing import Any, Dict, List

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


class HashSet:
    """A set of 64-bit hashes in one flat array (open addressing, linear probing), at most half
    full: 8-16 bytes an entry where a Python set of ints takes about 65, which matters for a
    run that emits an event for each of a million records."""

    def __init__(self, capacity: int = 1024) -> None:
        self._slots = array("q", bytes(8 * capacity))  # 0 marks an empty slot
        self._count = 0

    def add(self, value: int) -> bool:
        """Add `value`; False when it was there already."""
        if 2 * (self._count + 1) > len(self._slots):
            self._grow()
        if _place(self._slots, value or 1):
            self._count += 1
            return True
        return False

    def __len__(self) -> int:
        return self._count

    def _grow(self) -> None:
        slots = array("q", bytes(16 * len(self._slots)))
        for value in self._slots:
            if value:
                _place(slots, value)
        self._slots = slots


def _place(slots: array, value: int) -> bool:
    """Put `value` (not 0) in `slots` (a power of two long); False when it is there."""
    mask = len(slots) - 1
    index = value & mask
    while slots[index]:
        if slots[index] == value:
            return False
        index = (index + 1) & mask
    slots[index] = value
    return True


class EventLedger:
    """The events one run (of one org) has emitted, as one hash each; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen = HashSet()

    def fresh(self, events: pa.Table) -> pa.Table:
        """`events` without the ones this run already emitted (or repeated within it)."""
        with self._lock:
            keep = [
                self._seen.add(hash(key))
                for key in zip(
                    events["module"].to_pylist(),
                    events["id"].to_pylist(),
                    events["event"].to_pylist(),
                    events["event_time"].to_pylist(),
                    strict=True,
                )
            ]
        return events.filter(pa.array(keep, pa.bool_()))
