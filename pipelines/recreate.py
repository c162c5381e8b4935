"""`zoho-deleted restore --recreate`: bring back records the bin no longer holds, from their last
captured values (`record_values`), with Create Records. Dry run first.

The selection is `restore`'s; the entries it finds purged (or past their bin expiry) are sorted
here: recreated (their last values, the fields `recreate_fields` lets through), or not, and why
(erased on request, no values captured, already recreated). With `yes` they are sent, at most
100 a call, with Zoho's `trigger` list (empty unless `--trigger` says: no workflow fires).

Nothing is created twice (`recreate_send`): each batch's intent is written to
`recreated_records` (code `SENDING`, with a fingerprint of the values sent) before the call,
and Zoho's per-record answers replace it after. A batch still `SENDING` when a command starts
was sent by one that was killed, or whose answer was lost: the records it made are looked for in
Zoho (Get Records since the intent, matched by fingerprint) and recorded before anything is
sent again; what is not found is sent again.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from pipelines.record_values import VIEW as VALUES_VIEW
from pipelines.recreate_fields import FieldPlan, field_plan, payload
from pipelines.restore import SAMPLE_NAMES, Entry
from pipelines.sql import query_rows
from pipelines.words import counted
from sources.zoho_crm.warehouse import ERASURES_TABLE, Queryable, existing_tables

RECREATED = "recreated_records"
TRIGGERS = ("workflow", "approval", "blueprint", "pathfinder", "orchestration")
SENDING = "SENDING"  # a batch's intent, written before the call
UNRESOLVED = "UNRESOLVED"  # sent by an interrupted command, and not told apart in Zoho
NAME_FIELDS = ("Full_Name", "Name", "Deal_Name", "Account_Name", "Last_Name", "Subject")
CANNOT = {
    "erased": "erased on request (`zoho-deleted forget`): never recreated",
    "no_values": "without captured values (deleted before `record_values` captured them, or "
    "their module is not in record_values)",
    "unresolved": f"sent by an interrupted command and not found again in Zoho by their values "
    f"(code {UNRESOLVED} in {RECREATED}): check Zoho for them; they are not sent again",
}
FieldsReader = Callable[[str], Optional[List[Dict[str, Any]]]]


@dataclass
class Candidate:
    module: str
    old_id: str
    name: str
    values: Dict[str, Any]


@dataclass
class RecreatePlan:
    """What `--recreate` finds among the gone entries of a selection."""

    send: Dict[str, List[Candidate]] = field(default_factory=lambda: defaultdict(list))
    cannot: Dict[str, Dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    already: Dict[str, List[Tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    interrupted: List[Dict[str, Any]] = field(default_factory=list)  # SENDING rows
    waiting: Dict[Tuple[str, str], Candidate] = field(default_factory=dict)  # their records
    fields: Dict[str, FieldPlan] = field(default_factory=dict)
    deleted: Set[Tuple[str, str]] = field(default_factory=set)
    recreated: Dict[Tuple[str, str], str] = field(default_factory=dict)  # (module, old) -> new

    def count(self) -> int:
        return sum(len(c) for c in self.send.values())

    def payload(self, candidate: Candidate) -> Tuple[Dict[str, Any], List[str]]:
        fields = self.fields[candidate.module]
        return payload(fields, candidate.values, self.deleted, self.recreated)


def display_name(entry: Entry, values: Dict[str, Any]) -> str:
    if entry.display_name:
        return entry.display_name
    for name in NAME_FIELDS:
        if isinstance(values.get(name), str) and values[name]:
            return str(values[name])
    return entry.id


def _values(pipeline: Queryable, org: str, tables: Set[str]) -> Dict[Tuple[str, str], Dict]:
    if VALUES_VIEW not in tables:
        return {}
    rows = query_rows(
        pipeline, f'SELECT module, id, "values" FROM {{ds}}.{VALUES_VIEW} WHERE org = %s', org
    )
    return {(m, i): (v if isinstance(v, dict) else json.loads(v)) for m, i, v in rows if v}


def audit_rows(pipeline: Queryable, org: str, tables: Set[str]) -> Dict[Tuple[str, str], Dict]:
    """The latest `recreated_records` row of each (module, old id)."""
    if RECREATED not in tables:
        return {}
    rows = query_rows(
        pipeline,
        f"SELECT module, old_id, new_id, code, requested_at, fingerprint "
        f"FROM {{ds}}.{RECREATED} WHERE org = %s AND action = 'create' ORDER BY requested_at",
        org,
    )
    keys = ("module", "old_id", "new_id", "code", "requested_at", "fingerprint")
    return {(r[0], r[1]): dict(zip(keys, r, strict=True)) for r in rows}


def relinked(pipeline: Queryable, org: str) -> Set[Tuple[str, str, str]]:
    """(related module, related id, new parent id) of the links relinked before."""
    if RECREATED not in existing_tables(pipeline):
        return set()
    sql = (
        f"SELECT module, old_id, new_id FROM {{ds}}.{RECREATED} "
        "WHERE org = %s AND action = 'relink' AND code = 'SUCCESS'"
    )
    return {(m, o, n) for m, o, n in query_rows(pipeline, sql, org)}


def recreate_plan(
    pipeline: Queryable, org: str, gone: Sequence[Entry], read_fields: FieldsReader
) -> RecreatePlan:
    """Sort the gone entries; `read_fields` gives a module's `/settings/fields` (None: unknown)."""
    tables = existing_tables(pipeline)
    values = _values(pipeline, org, tables)
    audit = audit_rows(pipeline, org, tables)
    erased: Set[Tuple[str, str]] = set()
    if ERASURES_TABLE in tables:
        sql = f"SELECT module, id FROM {{ds}}.{ERASURES_TABLE} WHERE org = %s"
        erased = {(m, i) for m, i in query_rows(pipeline, sql, org)}
    found = RecreatePlan()
    found.deleted = {
        (m, i)
        for m, i in query_rows(
            pipeline,
            "SELECT module, id FROM {ds}.deleted_records WHERE org = %s AND restored_at IS NULL",
            org,
        )
    }
    found.recreated = {k: r["new_id"] for k, r in audit.items() if r["code"] == "SUCCESS"}
    for entry in gone:
        key = (entry.module, entry.id)
        last = audit.get(key)
        why = None
        if key in erased:
            why = "erased"
        elif last is not None and last["code"] == "SUCCESS":
            found.already[entry.module].append((entry.id, last["new_id"]))
            continue
        elif last is not None and last["code"] == SENDING:
            found.interrupted.append(last)
            if key in values:
                found.waiting[key] = Candidate(*key, display_name(entry, values[key]), values[key])
            continue
        elif last is not None and last["code"] == UNRESOLVED:
            why = "unresolved"
        elif key not in values:
            why = "no_values"
        if why is not None:
            found.cannot[entry.module][why] = found.cannot[entry.module].get(why, 0) + 1
            continue
        captured = values[key]
        found.send[entry.module].append(
            Candidate(entry.module, entry.id, display_name(entry, captured), captured)
        )
    waiting = list(found.waiting.values())
    for module in sorted(set(found.send) | {c.module for c in waiting}):
        captured = [c.values for c in found.send.get(module, []) + waiting if c.module == module]
        found.fields[module] = field_plan(read_fields(module), captured)
    return found


def describe_recreate(found: RecreatePlan, triggers: Sequence[str]) -> List[str]:
    """The dry run of `--recreate`: per module how many, a few names, the fields written and
    skipped, lookups left out; what cannot be recreated, and why."""
    many = counted(found.count(), "purged record from its", "purged records from their")
    lines = [
        f"Would recreate {many} "
        "last captured values (Create Records: each gets a new id and a new creation "
        f"time; the old id stays in {RECREATED}):"
    ]
    for module, candidates in sorted(found.send.items()):
        names = ", ".join(c.name for c in candidates[:SAMPLE_NAMES])
        more = ", ..." if len(candidates) > SAMPLE_NAMES else ""
        lines.append(f"  {module:<16}{len(candidates):>6}  e.g. {names}{more}")
        lines += _field_lines(found, module, candidates)
    if found.interrupted:
        lines.append(
            f"{counted(len(found.interrupted), 'was', 'were')} sent by an interrupted command: "
            "--yes looks in Zoho first and sends only what it does not find there"
        )
    for module, pairs in sorted(found.already.items()):
        shown = ", ".join(f"{old} -> {new}" for old, new in pairs[:SAMPLE_NAMES])
        lines.append(
            f"Not recreated again: {len(pairs)} {module} already recreated by an earlier command "
            f"(old id -> new id: {shown}{', ...' if len(pairs) > SAMPLE_NAMES else ''})"
        )
    for module, reasons in sorted(found.cannot.items()):
        for why, count in sorted(reasons.items()):
            lines.append(f"Cannot recreate: {count} {module} {CANNOT[why]}")
    if found.count():
        fired = ", ".join(triggers) if triggers else "none (trigger [])"
        lines.append(
            f"Workflows, approvals and blueprints fired: {fired}; --trigger "
            "workflow,approval,... fires them"
        )
    return lines


def _field_lines(found: RecreatePlan, module: str, candidates: List[Candidate]) -> List[str]:
    fields = found.fields[module]
    lines = [f"    fields written: {', '.join(fields.written) or 'none'}"]
    if fields.skipped:
        why = ", ".join(f"{n} ({r})" for n, r in sorted(fields.skipped.items()))
        lines.append(f"    fields skipped: {why}")
    if fields.meta is None:
        lines.append(
            "    (Zoho's /settings/fields not read here: --yes reads it and also skips "
            "read-only, formula and auto-number fields)"
        )
    dropped: Dict[str, int] = defaultdict(int)
    for candidate in candidates:
        for name in found.payload(candidate)[1]:
            dropped[name] += 1
    for name, count in sorted(dropped.items()):
        lines.append(f"    {name} left empty on {count}: it points at a deleted record")
    return lines
