"""Which captured values a recreated record is written with, from `/settings/fields`.

A captured record is the JSON Zoho answered Get Records with (`field_values`). Create Records
takes what a user could type: not system fields, not read-only, formula or auto-number ones
(Zoho computes them), not fields the module no longer has. A lookup is written as its `id`,
unless it points at a record the warehouse knows deleted (then it is skipped for that record),
or at one this command (or an earlier one) recreated (then at the new record). Subform rows are
written without their own row ids. Without the metadata (the dry run of an org whose Zoho is
not configured here), the system fields are told apart by name and the rest is checked once
`--yes` reads the metadata.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

SYSTEM_FIELDS = frozenset(
    {"id", "Created_Time", "Modified_Time", "Created_By", "Modified_By", "Last_Activity_Time",
     "Tag", "Record_Image", "Locked__s", "Unsubscribed_Time", "Unsubscribed_Mode"}
)  # fmt: skip
SKIPPED_TYPES = {"formula": "formula", "autonumber": "auto-number"}
UNWRITABLE_TYPES = {"fileupload", "imageupload", "multiselectlookup"}  # not by Create Records
LOOKUPS = ("lookup", "ownerlookup", "userlookup")
# field types whose values come back from Get Records exactly as they were sent: what a
# record created by an interrupted command is recognised by (see `fingerprint`)
MATCHED_TYPES = frozenset({"text", "email", "phone", "picklist", "website", "textarea"})


@dataclass
class FieldPlan:
    """One module's fields: those written, those skipped (name -> why), and their metadata
    (None: not read, the dry run of an org whose Zoho is not configured)."""

    meta: Optional[Dict[str, Dict[str, Any]]]
    written: List[str] = field(default_factory=list)
    skipped: Dict[str, str] = field(default_factory=dict)

    @property
    def matched(self) -> List[str]:
        """The written fields a record is recognised by, in a fixed order."""
        if not self.meta:
            return []
        return sorted(n for n in self.written if self.meta[n].get("data_type") in MATCHED_TYPES)


def field_plan(
    meta: Optional[Sequence[Dict[str, Any]]], captured: Sequence[Mapping[str, Any]]
) -> FieldPlan:
    """Sort the fields the captured records hold into written and skipped."""
    names = sorted({name for values in captured for name in values})
    plan = FieldPlan({m["api_name"]: m for m in meta} if meta is not None else None)
    for name in names:
        why = _skipped(name, plan.meta)
        if why is None:
            plan.written.append(name)
        else:
            plan.skipped[name] = why
    return plan


def _skipped(name: str, meta: Optional[Dict[str, Dict[str, Any]]]) -> Optional[str]:
    if name in SYSTEM_FIELDS or name.startswith("$"):
        return "system"
    if meta is None:
        return None
    found = meta.get(name)
    if found is None:
        return "no longer a field of the module"
    kind = found.get("data_type", "")
    if kind in SKIPPED_TYPES:
        return SKIPPED_TYPES[kind]
    if kind in UNWRITABLE_TYPES:
        return f"{kind}: Create Records cannot write it"
    if found.get("read_only") or found.get("field_read_only"):
        return "read-only"
    return None


def lookup_module(meta: Dict[str, Any]) -> Optional[str]:
    """The module a lookup field points at (Zoho: `lookup.module.api_name`)."""
    target = (meta.get("lookup") or {}).get("module") or {}
    return target.get("api_name") if isinstance(target, dict) else None


def payload(
    plan: FieldPlan,
    values: Mapping[str, Any],
    deleted: Set[Tuple[str, str]],
    recreated: Mapping[Tuple[str, str], str],
) -> Tuple[Dict[str, Any], List[str]]:
    """The record to send, and the lookups left out because they point at deleted records.
    `deleted`: (module, id) the warehouse knows deleted; `recreated`: (module, old id) -> new."""
    record: Dict[str, Any] = {}
    dropped: List[str] = []
    for name in plan.written:
        value = values.get(name)
        if value is None:
            continue
        meta = (plan.meta or {}).get(name, {})
        kind = meta.get("data_type")
        if kind in LOOKUPS and isinstance(value, dict):
            target = (lookup_module(meta) or "", str(value.get("id")))
            if target in recreated:
                value = {"id": recreated[target]}
            elif target in deleted:
                dropped.append(name)
                continue
            else:
                value = {"id": target[1]}
        elif kind == "subform" and isinstance(value, list):
            value = [{k: v for k, v in row.items() if k != "id"} for row in value]
        record[name] = value
    return record, dropped


def fingerprint(names: Sequence[str], record: Mapping[str, Any]) -> str:
    """`names` and a hash of the record's values of them: what a record created from `record`
    is found by in Get Records (no personal value is kept in the audit table)."""
    values = json.dumps([record.get(n) for n in names], sort_keys=True, default=str)
    return f"{','.join(names)}:{hashlib.sha256(values.encode()).hexdigest()[:32]}"


def fingerprint_fields(mark: str) -> List[str]:
    return [n for n in mark.split(":", 1)[0].split(",") if n]
