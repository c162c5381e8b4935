"""What one run did, shared by every load package the run makes (and by their threads)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Dict, List, Optional, Set, Tuple

from sources.zoho_crm.client import ZohoClient
from sources.zoho_crm.errors import ZohoApiError
from sources.zoho_crm.warehouse import Warehouse


class RunReport:
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
        self.unfinished_passes: Set[str] = set()
        self.related_calls_left: Optional[int] = None
        self.related_stop: Optional[str] = None  # why related records stopped, if they did
        self.warehouse: Optional[Warehouse] = None  # what earlier runs loaded, as the run began
        self.values: Any = None  # the record values part of the run (`values.ValuesRun`)
        self._lock = threading.Lock()

    def module_failed(self, module: str, error: ZohoApiError) -> None:
        with self._lock:
            self.failed_modules[module] = error

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

    @property
    def calls(self) -> Counter:
        return self.client.calls if self.client else Counter()

    def refused_by_name(self) -> Dict[str, ZohoApiError]:
        """Refused related lists by their `Module.List` name."""
        return {f"{m}.{name}": e for (m, name), e in self.refused_lists.items()}

    def summary(self) -> Dict[str, Any]:
        """Refusals as (name -> Zoho code), for the `runs` table."""
        failed = {**self.failed_modules, **self.refused_by_name()}
        return {name: error.code for name, error in failed.items()}
