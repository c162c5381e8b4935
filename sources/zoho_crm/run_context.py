"""One run of the source across its load packages, and what a runner may use of it.

A run loads in several packages (bounded passes, then record values and related records a
package at a time), and `zoho_crm` is built anew for each; they share one `ZohoRun`, which
holds the run's Zoho client, its resolved modules and related lists, what Zoho refused or sent
malformed, the passes left unfinished and the run's budgets.

A runner (`pipelines/run.py`) uses only this, and never the attributes the source's resources
keep their bookkeeping in:

- `ZohoRun()`, one per run, and `run_packages(run, **source_args)` (`sources.zoho_crm`), the
  sources of the run's packages in order; each is built, and planned by `ZohoRun.packages`,
  once the package before it has loaded;
- while it runs: `calls` (Zoho calls by kind), `calls_made`, `last_module`, `max_concurrency`
  (the calls that may be in flight, for dlt's extract workers);
- after it: `modules`, `failed_modules`, `malformed`, `rejected_rows()`, `rejected_lines()`,
  `refused_by_name()`, `summary()`, `related_lists()`, `related_stop`, `values_modules`,
  `values_stop`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from datetime import datetime
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from .client import ZohoClient
from .errors import ZohoApiError, ZohoMalformedError
from .events import events_name
from .records import MISSING, MalformedEntryError, entry_id, shown
from .related import RELATED_BACKLOG, RELATED_TABLE, configured_lists
from .values import VALUES_PREFIX
from .warehouse import BIN_TABLE, Warehouse

REJECTED_TABLE = "rejected_records"
SOURCES = {
    "deleted": "/deleted",
    "recycle_bin": "recycle bin",
    "related": "related records",
    "values": "record values",
}


class ZohoRun:
    """Calls made, what Zoho refused, passes left unfinished and the related-records budget.

    A run builds its Zoho client and resolves its modules and related lists once (see
    `zoho_crm`); every package of the run reuses them, so one access token serves the run,
    and its `Warehouse`, which knows which tables the destination had when the run began.
    """

    def __init__(self) -> None:
        self.client: Optional[ZohoClient] = None
        self.modules: Optional[List[str]] = None
        self.modules_config: Optional[List[str]] = None  # `modules` as configured (None: all)
        self.modules_resolved = False  # asked Zoho this run (else remembered from an earlier)
        self.related: Optional[Dict[str, Dict[str, List[str]]]] = None
        self.failed_modules: Dict[str, ZohoApiError] = {}
        # (module, related list) -> the refusal; those lists are left for a later run
        self.refused_lists: Dict[Tuple[str, str], ZohoApiError] = {}
        # modules (or `recycle_bin`) whose list Zoho answered with a malformed page
        self.malformed: Dict[str, ZohoMalformedError] = {}
        # entries Zoho sent malformed, set aside: (source, module, key) -> rejected_records row
        self.rejected: Dict[Tuple[str, str, str], Dict[str, Any]] = {}
        # (module, parent id, related list) fetched malformed: left for the next run
        self.related_again: Set[Tuple[str, str, str]] = set()
        self.unfinished_passes: Set[str] = set()
        self.related_calls_left: Optional[int] = None
        self.related_stop: Optional[str] = None  # why related records stopped, if they did
        self.warehouse: Optional[Warehouse] = None  # what earlier runs loaded, as the run began
        self.values: Any = None  # the record values part of the run (`values.ValuesRun`)
        self._lock = threading.Lock()

    def module_failed(self, module: str, error: ZohoApiError) -> None:
        with self._lock:
            self.failed_modules[module] = error

    def module_malformed(self, module: str, error: ZohoMalformedError) -> None:
        with self._lock:
            self.malformed[module] = error

    def reject(
        self,
        org: str,
        source: str,
        module: Optional[str],
        at: datetime,
        item: Any,
        error: MalformedEntryError,
    ) -> None:
        """Set aside an entry of `source` (`deleted`, `recycle_bin` or `related`) that Zoho
        sent malformed: a `rejected_records` row, keyed by the entry's id (or, without one,
        by its content) so a repeat replaces it."""
        raw = json.dumps(item, sort_keys=True, default=str)
        rid = entry_id(item)
        key = rid or "sha1:" + hashlib.sha1(raw.encode()).hexdigest()[:16]
        where = module or BIN_TABLE
        erased = self.warehouse is not None and rid in {i for _, i in self.warehouse.erased()}
        if erased:  # erased on request (`zoho-deleted forget`): nothing of the entry is kept
            raw, error = None, MalformedEntryError(error.field, MISSING, error.reason)
        row = {
            "org": org,
            "source": source,
            "module": where,
            "entry_key": key,
            "id": rid,
            "field": error.field,
            "value": None if error.value is MISSING else shown(error.value),
            "reason": f"{error.field} {error.reason}" if erased else str(error),
            "entry": raw,
            "rejected_at": at,
        }
        with self._lock:
            self.rejected[(source, where, key)] = row

    def list_refused(self, module: str, related_list: str, error: ZohoApiError) -> None:
        with self._lock:
            self.refused_lists[(module, related_list)] = error

    def unfinished(self, resource: str) -> None:
        """`resource` stopped at its package's page limit: the run makes another package."""
        with self._lock:
            self.unfinished_passes.add(resource)

    def take_related_call(self, credits_reserve: int) -> bool:
        """Whether one more related-records call fits this run's budget (and takes it)."""
        with self._lock:
            if self.related_stop:
                return False
            remaining = self.client.credits_remaining if self.client else None
            if remaining is not None and remaining <= credits_reserve:
                self.related_stop = (
                    f"Zoho reports {remaining} API credits left today, at or below "
                    f"api_credits_reserve ({credits_reserve})"
                )
                return False
            if self.related_calls_left is not None and self.related_calls_left <= 0:
                self.related_stop = "this run's related_calls_per_run budget is spent"
                return False
            if self.related_calls_left is not None:
                self.related_calls_left -= 1
            return True

    def stop_related(self, why: str) -> None:
        with self._lock:
            self.related_stop = self.related_stop or why


    def refused_by_name(self) -> Dict[str, ZohoApiError]:
        """Refused related lists by their `Module.List` name."""
        return {f"{m}.{name}": e for (m, name), e in self.refused_lists.items()}

    def rejected_ids(self) -> Set[str]:
        """Ids of the entries set aside so far (those that have one)."""
        with self._lock:
            return {row["id"] for row in self.rejected.values() if row["id"]}

    def rejected_lines(self) -> List[str]:
        """One line per entry set aside: where, which id, the field, its value, what is wrong."""
        return [
            f"{row['module']} {row['id'] or '(no id)'} ({SOURCES[row['source']]}): {row['reason']}"
            for row in sorted(self.rejected.values(), key=lambda r: (r["module"], r["entry_key"]))
        ]

    def summary(self) -> Dict[str, Any]:
        """Refusals as (name -> Zoho code), for the `runs` table."""
        failed = {**self.failed_modules, **self.refused_by_name()}
        return {name: error.code for name, error in failed.items()}

    # What a runner uses (see the module's docstring); the source's resources use the rest.

    def packages(self, resources: Sequence[str]) -> Iterator[List[str]]:
        """The resources of each of the run's load packages, in order, from the `resources` of
        the run's first source. Each next list is planned from what the package before did,
        so take it once that package has loaded.

        First everything but record values and related records; then the passes that package
        left unfinished (and their events), until none is; then the record values, a package
        at a time while their passes go on within the run's budget; then the related-records
        backlog, a package at a time, until its budget is spent or a package makes no call
        (nothing left in the backlog, or nothing it may ask for).
        """
        values = [n for n in resources if n.startswith(VALUES_PREFIX)]
        selected = [n for n in resources if n not in (RELATED_TABLE, RELATED_BACKLOG, *values)]
        while selected:
            self.unfinished_passes.clear()
            yield selected
            selected = sorted(self.unfinished_passes)
            selected += [events_name(n) for n in selected if events_name(n) != n]
        while values:
            self.values.unfinished.clear()
            yield values
            values = sorted(self.values.unfinished)
        while self.related and not self.related_stop:
            calls_before = self.calls_made
            yield [RELATED_TABLE]
            if self.calls_made == calls_before:
                return

    @property
    def calls(self) -> Counter:
        """Zoho calls answered so far, by kind (`deleted`, `recycle_bin`, `related`, ...)."""
        return self.client.calls if self.client else Counter()

    @property
    def calls_made(self) -> int:
        return sum(self.calls.values())

    @property
    def last_module(self) -> Optional[str]:
        """The module of the latest call (None before the first)."""
        return self.client.last_module if self.client else None

    @property
    def max_concurrency(self) -> int:
        """Most calls in flight at once (`max_concurrency`); known once the source is built."""
        assert self.client is not None, "the source is built (and its client made) first"
        return self.client.max_concurrency

    def rejected_rows(self) -> List[Dict[str, Any]]:
        """The `rejected_records` rows of the entries set aside so far."""
        with self._lock:
            return list(self.rejected.values())

    def related_lists(self) -> List[Tuple[str, str]]:
        """The run's (module, related list) pairs: configured or discovered."""
        return configured_lists(self.related or {})

    @property
    def values_modules(self) -> Optional[List[str]]:
        """The modules whose record values the run reads; None when it reads none."""
        return self.values.modules if self.values is not None else None

    @property
    def values_stop(self) -> Optional[str]:
        """Why the record values stopped short this run, if they did."""
        return self.values.stop if self.values is not None else None
