"""Zoho's metadata: which modules hold deleted records, and which related lists are lookups."""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, List

from .client import ZohoClient
from .config import RelatedListsConfig
from .errors import ZohoApiError, ZohoConfigError
from .settings import MAX_FIELDS_PER_CALL

logger = logging.getLogger(__name__)

LOOKUP_TYPE = "default"  # Zoho's type for lookup relations; the only kind the deleted API reads


def readable_modules(client: ZohoClient) -> List[str]:
    """Modules that the API supports and whose records can be deleted."""
    body = client.get("settings/modules", kind="metadata") or {}
    return [
        m["api_name"]
        for m in body.get("modules", [])
        if m.get("api_supported", True) and m.get("deletable", True)
    ]


def checked_modules(client: ZohoClient, wanted: List[str]) -> List[str]:
    """`wanted`, checked against `/settings/modules` (one call) before anything is read.

    Every name Zoho does not list as readable is reported at once, with the valid ones. When
    the token may not read Zoho's settings, the names go unchecked (a wrong one is still caught
    when Zoho answers INVALID_MODULE for it).
    """
    try:
        valid = readable_modules(client)
    except ZohoApiError as error:
        if not error.is_permission:
            raise
        logger.warning("modules not checked against Zoho's module list: %s", error.code)
        return wanted
    unknown = [m for m in wanted if m not in valid]
    if unknown:
        raise unknown_modules_error(unknown, valid)
    return wanted


def unknown_modules_error(unknown: List[str], valid: List[str]) -> ZohoConfigError:
    names = ", ".join(repr(m) for m in unknown)
    what = (
        f"module {names} is not a Zoho module"
        if len(unknown) == 1
        else (f"modules {names} are not Zoho modules")
    )
    return ZohoConfigError(
        f"{what} this org can read: leave modules out (every module) or list names among "
        f"{', '.join(valid) or '(none)'}"
    )


def unknown_module_error(client: ZohoClient, module: str) -> ZohoConfigError:
    return unknown_modules_error([module], readable_modules(client))


def related_lists_of(client: ZohoClient, module: str) -> Dict[str, dict]:
    body = client.get("settings/related_lists", {"module": module}, module=module, kind="metadata")
    return {r["api_name"]: r for r in (body or {}).get("related_lists", [])}


def fields_of(client: ZohoClient, module: str) -> List[Dict[str, Any]]:
    """A module's fields as `/settings/fields` lists them."""
    body = client.get("settings/fields", {"module": module}, module=module, kind="metadata")
    return [f for f in (body or {}).get("fields", []) if isinstance(f, dict) and "api_name" in f]


def field_names(client: ZohoClient, module: str) -> List[str]:
    names = [f["api_name"] for f in fields_of(client, module) if f["api_name"] != "id"]
    return names[:MAX_FIELDS_PER_CALL]


def lookup_related_lists(client: ZohoClient, modules: List[str]) -> RelatedListsConfig:
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
