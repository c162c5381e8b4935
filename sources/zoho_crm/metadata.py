"""Zoho's metadata: which modules hold deleted records, and which related lists are lookups."""

from __future__ import annotations

import threading
from typing import Dict, List

from sources.zoho_crm.client import ZohoClient
from sources.zoho_crm.config import RelatedListsConfig
from sources.zoho_crm.errors import ZohoConfigError
from sources.zoho_crm.settings import MAX_FIELDS_PER_CALL

LOOKUP_TYPE = "default"  # Zoho's type for lookup relations; the only kind the deleted API reads


def readable_modules(client: ZohoClient) -> List[str]:
    """Modules that the API supports and whose records can be deleted."""
    body = client.get("settings/modules", kind="metadata") or {}
    return [
        m["api_name"]
        for m in body.get("modules", [])
        if m.get("api_supported", True) and m.get("deletable", True)
    ]


def unknown_module_error(client: ZohoClient, module: str) -> ZohoConfigError:
    valid = readable_modules(client)
    return ZohoConfigError(
        f'module {module!r} is not a Zoho module this org can read: set modules to "all" '
        f"or to names among {', '.join(valid) or '(none)'}"
    )


def related_lists_of(client: ZohoClient, module: str) -> Dict[str, dict]:
    body = client.get("settings/related_lists", {"module": module}, module=module, kind="metadata")
    return {r["api_name"]: r for r in (body or {}).get("related_lists", [])}


def field_names(client: ZohoClient, module: str) -> List[str]:
    body = client.get("settings/fields", {"module": module}, module=module, kind="metadata")
    names = [f["api_name"] for f in (body or {}).get("fields", []) if f.get("api_name") != "id"]
    return names[:MAX_FIELDS_PER_CALL]


def discover_related_lists(client: ZohoClient, modules: List[str]) -> RelatedListsConfig:
    """Each module's lookup related lists, with up to 50 fields of the related module."""
    found: RelatedListsConfig = {}
    for module in modules:
        for name, meta in related_lists_of(client, module).items():
            related_module = (meta.get("module") or {}).get("api_name")
            if meta.get("type") != LOOKUP_TYPE or not related_module:
                continue
            fields = field_names(client, related_module)
            if fields:
                found.setdefault(module, {})[name] = fields
    return found


class RelatedListCheck:
    """Checks configured related lists against Zoho's metadata, once per module per run."""

    def __init__(self, client: ZohoClient, configured: RelatedListsConfig) -> None:
        self._client = client
        self._configured = configured
        self._checked: set = set()
        self._lock = threading.Lock()

    def ensure(self, module: str) -> None:
        with self._lock:
            if module in self._checked:
                return
            known = related_lists_of(self._client, module)
            lookups = sorted(n for n, meta in known.items() if meta.get("type") == LOOKUP_TYPE)
            for name in self._configured.get(module, {}):
                meta = known.get(name)
                if meta is None or meta.get("type") != LOOKUP_TYPE:
                    what = (
                        "is not a related list of"
                        if meta is None
                        else (f"is a {meta.get('type')} relation, not a lookup, in")
                    )
                    raise ZohoConfigError(
                        f"related_lists.{module}.{name} {what} {module}: Zoho reads related "
                        f"records of deleted records only through lookups; use one of "
                        f"{', '.join(lookups) or '(none)'}"
                    )
            self._checked.add(module)
