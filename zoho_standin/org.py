"""The stand-in's model of one Zoho CRM org: modules, deleted records, the bin, related records.

It keeps what Zoho keeps and forgets what Zoho forgets: a record in the recycle bin has its
name, deleter, creator and owner; a purged (permanent) one keeps only its id and a new
`deleted_time` (the purge time), which is what makes the purge visible to `If-Modified-Since`.
"""

from __future__ import annotations

import bisect
import heapq
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from zoho_standin.records import LiveRecords


@dataclass
class User:
    name: str
    id: str

    def as_json(self) -> Dict[str, str]:
        return {"name": self.name, "id": self.id}


@dataclass
class DeletedEntry:
    module: str
    id: str
    deleted_time: datetime  # aware; its offset is the deleting user's
    type: str  # "recycle" or "permanent"
    display_name: Optional[str] = None
    deleted_by: Optional[User] = None
    created_by: Optional[User] = None
    owner: Optional[User] = None

    def deleted_json(self) -> Dict[str, object]:
        """The entry as `GET /{module}/deleted` shows it."""
        return {
            "deleted_by": self.deleted_by.as_json() if self.deleted_by else None,
            "id": self.id,
            "display_name": self.display_name,
            "type": self.type,
            "created_by": self.created_by.as_json() if self.created_by else None,
            "deleted_time": self.deleted_time.isoformat(),
        }

    def bin_json(self, module_id: str) -> Dict[str, object]:
        """The entry as `GET /settings/recycle_bin` shows it."""
        return {
            "owner": self.owner.as_json() if self.owner else None,
            "module": {"api_name": self.module, "id": module_id},
            "deleted_by": self.deleted_by.as_json() if self.deleted_by else None,
            "id": self.id,
            "display_name": self.display_name,
            "deleted_time": self.deleted_time.isoformat(),
        }


@dataclass
class RelatedList:
    api_name: str
    module: str  # the related module
    type: str = "default"  # default | multiselectlookup | custom
    fields: Tuple[str, ...] = ("Owner", "Name")


@dataclass
class Module:
    api_name: str
    id: str
    api_supported: bool = True
    deletable: bool = True
    generated_type: str = "default"
    related_lists: Dict[str, RelatedList] = field(default_factory=dict)


class Head(Sequence):
    """The first `length` items of a list, without copying them."""

    def __init__(self, items: List[DeletedEntry], length: int) -> None:
        self._items, self._length = items, length

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self._items[slice(*index.indices(self._length))]
        if not -self._length <= index < self._length:
            raise IndexError(index)
        return self._items[index % self._length]


class BinQuery(NamedTuple):
    """A recycle bin `filters` as the org applies it: `key` names it in the cache, `predicate`
    decides; `module` and `since` (an instant at or before every match), when known, narrow
    what the predicate must see."""

    key: str
    predicate: Callable[[DeletedEntry], bool]
    module: Optional[str] = None
    since: Optional[datetime] = None


class Org:
    """Thread-safe store of one org's deleted records, as the stand-in server serves them."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.modules: Dict[str, Module] = {}
        self.entries: Dict[Tuple[str, str], DeletedEntry] = {}
        # (module, parent id, related list) -> related records (dicts with "id" and fields)
        self.related: Dict[Tuple[str, str, str], List[Dict[str, object]]] = {}
        self._version = 0
        self._sorted: Dict[str, Tuple[int, List[float], List[DeletedEntry]]] = {}
        self.live = LiveRecords()  # live records and their fields (none unless seeded)

    # -- changes -------------------------------------------------------------------------------
    def add_module(self, module: Module) -> Module:
        with self.lock:
            self.modules[module.api_name] = module
            return module

    def delete(
        self,
        module: str,
        record_id: str,
        at: datetime,
        display_name: Optional[str],
        deleted_by: Optional[User],
        created_by: Optional[User] = None,
        owner: Optional[User] = None,
    ) -> DeletedEntry:
        """Move a record to the recycle bin (a live one stops being listed live)."""
        entry = DeletedEntry(
            module, record_id, at, "recycle", display_name, deleted_by, created_by, owner
        )
        self.live.remove(module, record_id)
        self._put(entry)
        return entry

    def purge(self, module: str, record_id: str, at: datetime) -> DeletedEntry:
        """Empty a record from the bin: Zoho keeps only its id and the purge time."""
        with self.lock:
            entry = DeletedEntry(module, record_id, at, "permanent")
            self._put(entry)
            return entry

    def restore(self, module: str, record_id: str) -> None:
        """Restore a record from the bin: it leaves every deleted list."""
        with self.lock:
            self.entries.pop((module, record_id))
            self._version += 1
        self.live.restore(module, record_id)

    def add_related(
        self, module: str, record_id: str, related_list: str, rows: List[Dict[str, object]]
    ) -> None:
        with self.lock:
            self.related[(module, record_id, related_list)] = rows

    def _put(self, entry: DeletedEntry) -> None:
        with self.lock:
            self.entries[(entry.module, entry.id)] = entry
            self._version += 1

    # -- queries -------------------------------------------------------------------------------
    def newest_first(
        self, module: Optional[str], since: Optional[datetime]
    ) -> Sequence[DeletedEntry]:
        """Entries of a module (or all) deleted at or after `since`, newest first: a view of a
        list cached until the org changes, so paging through a large list stays linear."""

        def build() -> List[DeletedEntry]:
            chosen = [e for e in self.entries.values() if module is None or e.module == module]
            chosen.sort(key=_newest_first_order, reverse=True)
            return chosen

        return self._newest_first_view(module or "*", build, since)

    def in_bin(self, oldest_first: bool, where: Optional[BinQuery] = None) -> List[DeletedEntry]:
        """Recycle bin entries by deleted time, optionally those `where` matches; cached until
        the org changes, so paging through a large bin stays cheap. A filter on one module or
        on a time reads only that module's entries, or only those after that time, as an index
        would."""
        key = f"bin-{'asc' if oldest_first else 'desc'}-{where.key if where else ''}"
        with self.lock:
            cached = self._sorted.get(key)
            if cached is None or cached[0] != self._version:
                if where is None:
                    entries = list(self._bin_newest_first(None, None))
                else:
                    chosen = self._bin_newest_first(where.module, where.since)
                    entries = [e for e in chosen if where.predicate(e)]
                if oldest_first:
                    entries.reverse()
                cached = (self._version, [], entries)
                self._sorted[key] = cached
        return cached[2]

    def _bin_newest_first(
        self, module: Optional[str], since: Optional[datetime]
    ) -> Sequence[DeletedEntry]:
        """The bin's entries of a module (or all) deleted at or after `since`, newest first."""
        if module is None and since is not None:  # the whole bin's newest: each module's index
            heads = [self._bin_newest_first(name, since) for name in list(self.modules)]
            return list(heapq.merge(*heads, key=_newest_first_order, reverse=True))

        def build() -> List[DeletedEntry]:
            return [e for e in self.newest_first(module, None) if e.type == "recycle"]

        return self._newest_first_view(f"bin:{module or '*'}", build, since)

    def _newest_first_view(
        self, key: str, build: Callable[[], List[DeletedEntry]], since: Optional[datetime]
    ) -> Sequence[DeletedEntry]:
        """The entries `build` lists newest first (cached as `key` until the org changes), from
        the newest down to `since`."""
        with self.lock:
            cached = self._sorted.get(key)
            if cached is None or cached[0] != self._version:
                chosen = build()
                cached = (self._version, [-e.deleted_time.timestamp() for e in chosen], chosen)
                self._sorted[key] = cached
        _, negated, chosen = cached
        end = len(chosen) if since is None else bisect.bisect_right(negated, -since.timestamp())
        return Head(chosen, end)

    def entry(self, module: str, record_id: str) -> Optional[DeletedEntry]:
        with self.lock:
            return self.entries.get((module, record_id))


def _newest_first_order(entry: DeletedEntry) -> Tuple[float, str]:
    """The key that, reversed, orders entries newest first (ties by id)."""
    return entry.deleted_time.timestamp(), entry.id
