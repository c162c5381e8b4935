"""`restore --recreate --yes`: Create Records, at most 100 a call, each outcome audited in
`recreated_records`, and nothing created twice (see `pipelines.recreate`).

A call is sent once (`once`: the transport does not repeat it). When its answer does not come
(connection lost, 5xx) or the command was killed before the answer was written down, the batch's
rows stay `SENDING`: the records it made are looked for with Get Records (`If-Modified-Since` a
few minutes before the intent, sorted by `Modified_Time`) and matched by the fingerprint of the
values sent (`recreate_fields.fingerprint`), one Zoho record per sent record; found ones are
recorded `SUCCESS`, the rest `NOT_CREATED` and sent again. A batch whose values cannot tell its
records apart (no text field written) is recorded `UNRESOLVED` and never sent again.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import dlt
import pyarrow as pa
from requests.exceptions import RequestException

from pipelines.errors import EXIT_AUTH, EXIT_OK, EXIT_PARTIAL, EXIT_ZOHO
from pipelines.exceptions import PipelineConfigError
from pipelines.ledger import load_audit, who
from pipelines.recreate import (
    RECREATED,
    SENDING,
    UNRESOLVED,
    Candidate,
    RecreatePlan,
    describe_recreate,
    recreate_plan,
    relinked,
)
from pipelines.recreate_fields import fingerprint, fingerprint_fields
from pipelines.relink import captured_links, relink
from pipelines.restore import Entry, org_client
from pipelines.run import load
from pipelines.sql import query_rows
from pipelines.words import counted
from sources.zoho_crm.client import ZohoClient
from sources.zoho_crm.errors import ZohoApiError, ZohoError, ZohoResponseError
from sources.zoho_crm.events import EVENTS_HINTS, EVENTS_SCHEMA, EVENTS_TABLE
from sources.zoho_crm.metadata import fields_of
from sources.zoho_crm.records import zoho_time

MAX_RECORDS = 100  # Zoho's limit per Create Records call
OWNER = "Owner"
OWNERLESS = f"without its captured {OWNER}: no longer a user of the org"
CLOCK_SLACK = timedelta(minutes=5)  # this machine's clock against Zoho's, when searching
SHOWN = 20  # failures named one per line; the rest are in the table
AUDIT_COLUMNS = {
    "org": {"data_type": "text", "nullable": False},
    "module": {"data_type": "text", "nullable": False},
    "old_id": {"data_type": "text", "nullable": False},
    "new_id": {"data_type": "text", "nullable": True},
    "requested_at": {"data_type": "timestamp", "nullable": False},
    "requested_by": {"data_type": "text"},
    "code": {"data_type": "text"},
    "message": {"data_type": "text", "nullable": True},
    "field": {"data_type": "text", "nullable": True},
    "fingerprint": {"data_type": "text", "nullable": True},
    "action": {"data_type": "text", "nullable": True},  # create | relink
}


def record_outcomes(pipeline: dlt.Pipeline, rows: List[Dict[str, Any]]) -> None:
    """Write rows of `recreated_records`, merged on (org, module, old_id, requested_at): a
    batch's outcome replaces its intent. The caller holds the pipeline's lock."""
    load_audit(pipeline, RECREATED, rows, ("org", "module", "old_id", "requested_at"),
               AUDIT_COLUMNS)  # fmt: skip


EVENTS_MISSING = f"""
SELECT r.module, r.old_id, r.new_id, r.requested_at FROM {{ds}}.{RECREATED} r
WHERE r.org = %s AND r.action = 'create' AND r.code = 'SUCCESS' AND NOT EXISTS (
  SELECT 1 FROM {{ds}}.{EVENTS_TABLE} e
  WHERE e.org = r.org AND e.module = r.module AND e.id = r.old_id AND e.event = 'recreated')
"""


def record_events(pipeline: dlt.Pipeline, org: str) -> None:
    """A `recreated` event (with `new_id`) in `deletion_events` for each record recreated that
    has none yet: also those of a command killed between its audit rows and its events."""
    found = query_rows(pipeline, EVENTS_MISSING, org)
    if not found:
        return
    now = datetime.now(UTC)
    rows = [
        {"org": org, "module": module, "id": old_id, "event": "recreated", "event_time": at,
         "observed_at": now, "new_id": new_id}
        for module, old_id, new_id, at in found
    ]  # fmt: skip
    # Arrow, as runs load the table (dlt adds no row ids to it); `new_id` only on these rows
    events = pa.Table.from_pylist(rows, EVENTS_SCHEMA.append(pa.field("new_id", pa.string())))
    load(pipeline, dlt.resource([dlt.mark.with_hints(events, EVENTS_HINTS)], name=EVENTS_TABLE))


class Sender:
    """Sends one plan's records; `outcomes` gathers every final row written."""

    def __init__(
        self,
        pipeline: dlt.Pipeline,
        client: ZohoClient,
        org: str,
        found: RecreatePlan,
        triggers: Sequence[str],
    ) -> None:
        self.pipeline, self.client, self.org, self.found = pipeline, client, org, found
        self.triggers = list(triggers)
        self.requested_by = who()
        self.outcomes: List[Dict[str, Any]] = []
        self.error: Optional[Tuple[int, str]] = None

    def row(self, module: str, old_id: str, at: datetime, **values: Any) -> Dict[str, Any]:
        return {
            "org": self.org, "module": module, "old_id": old_id, "new_id": None,
            "requested_at": at, "requested_by": self.requested_by, "code": SENDING,
            "message": None, "field": None, "fingerprint": None, "action": "create", **values,
        }  # fmt: skip

    def settle(self, rows: List[Dict[str, Any]]) -> None:
        """Write final rows; successes join `found.recreated` (lookups to them follow)."""
        record_outcomes(self.pipeline, rows)
        self.outcomes += rows
        for row in rows:
            if row["code"] == "SUCCESS" and row["action"] == "create":
                self.found.recreated[(row["module"], row["old_id"])] = row["new_id"]

    # -- what an interrupted command sent --------------------------------------------------------
    def resolve(self, pending: List[Dict[str, Any]]) -> List[Tuple[str, str]]:
        """Find the records `SENDING` rows made; returns (module, old id) not found (to send)."""
        again: List[Tuple[str, str]] = []
        by_module: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
        for row in pending:
            by_module[row["module"]].append(row)
        for module, rows in sorted(by_module.items()):
            found = self._search(module, rows)
            settled = []
            for row in rows:
                new_id = found.get(row["old_id"])
                if new_id is not None:
                    code, message = "SUCCESS", "found in Zoho after an interrupted command"
                elif not fingerprint_fields(row["fingerprint"] or ""):
                    code, message = UNRESOLVED, "sent by an interrupted command; its values " \
                        "cannot tell it apart in Zoho: check Zoho before recreating it"  # fmt: skip
                else:
                    code, message = "NOT_CREATED", "sent by an interrupted command; not in Zoho"
                    again.append((module, row["old_id"]))
                settled.append(self.row(module, row["old_id"], row["requested_at"], new_id=new_id,
                                        code=code, message=message,
                                        fingerprint=row["fingerprint"]))  # fmt: skip
            self.settle(settled)
        return again

    def _search(self, module: str, rows: List[Dict[str, Any]]) -> Dict[str, str]:
        """old id -> new id of the records Zoho made from `rows` (one record each at most)."""
        taken = set(self.found.recreated.values())
        names = sorted({n for r in rows for n in fingerprint_fields(r["fingerprint"] or "")})
        if not names:
            return {}
        since = min(r["requested_at"] for r in rows) - CLOCK_SLACK
        params = {"fields": ",".join(names[:49]), "sort_by": "Modified_Time", "sort_order": "asc"}
        made: Dict[str, List[str]] = defaultdict(list)  # fingerprint -> new ids
        pages = self.client.pages(module, "data", params, {"If-Modified-Since": zoho_time(since)},
                                  module, kind="search")  # fmt: skip
        for page in pages:
            for record in page:
                if str(record.get("id")) in taken:
                    continue
                for mark in {r["fingerprint"] for r in rows}:
                    if fingerprint(fingerprint_fields(mark), record) == mark:
                        made[mark].append(str(record["id"]))
        return {r["old_id"]: made[r["fingerprint"]].pop(0) for r in rows if made[r["fingerprint"]]}

    # -- sending ----------------------------------------------------------------------------------
    def send(self, module: str, candidates: List[Candidate]) -> None:
        for start in range(0, len(candidates), MAX_RECORDS):
            if self.error is not None:
                return
            self._batch(module, candidates[start : start + MAX_RECORDS])

    def _batch(self, module: str, batch: List[Candidate], ownerless: bool = False) -> None:
        """Send one batch; records refused only for their owner (a user no longer in the org:
        `INVALID_DATA` on `Owner`) are sent again without it, owned by the token's user."""
        at = datetime.now(UTC)
        fields = self.found.fields[module]
        matched = [n for n in fields.matched if n]
        records, intents = [], []
        for candidate in batch:
            record, _ = self.found.payload(candidate)
            if ownerless:
                record.pop(OWNER, None)
            names = [n for n in matched if record.get(n) is not None][:49]
            records.append(record)
            intents.append(self.row(module, candidate.old_id, at,
                                    fingerprint=fingerprint(names, record)))  # fmt: skip
        record_outcomes(self.pipeline, intents)
        body = {"data": records, "trigger": self.triggers}
        try:
            answer = self.client.post(module, body, module=module, kind="create", once=True)
        except ZohoApiError as error:
            if error.status >= 500:
                self._lost(intents, f"{error}")
                return
            self.settle([{**i, "code": error.code, "message": str(error)} for i in intents])
            self.error = _call_error(error, module, len(batch))
            return
        except (RequestException, ZohoResponseError) as error:
            self._lost(intents, type(error).__name__)
            return
        results = (answer or {}).get("data") or []
        settled = [_outcome(i, results[n] if n < len(results) else None)
                   for n, i in enumerate(intents)]  # fmt: skip
        if ownerless:
            for row in settled:
                row["message"] += f"; {OWNERLESS}"
        self.settle(settled)
        no_owner = [c for c, row in zip(batch, settled, strict=True)
                    if row["code"] == "INVALID_DATA" and row["field"] == OWNER]  # fmt: skip
        if no_owner and not ownerless:
            self._batch(module, no_owner, ownerless=True)

    def _lost(self, intents: List[Dict[str, Any]], why: str) -> None:
        """No answer to a batch: find what it made; stop (exit 4), the rest for a next run."""
        again = self.resolve(intents)
        found = len(intents) - len(again)
        self.error = (
            EXIT_ZOHO,
            f"Zoho's answer to Create Records was lost ({why}); {found} of its "
            f"{counted(len(intents), 'record', 'records')} {'was' if found == 1 else 'were'} "
            "found in Zoho and recorded, the rest were not created: run the same command again",
        )


def _outcome(intent: Dict[str, Any], result: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    if not isinstance(result, dict):
        return {**intent, "code": "NO_RESULT", "message": "Zoho's answer named no outcome"}
    details = result.get("details") if isinstance(result.get("details"), dict) else {}
    code = str(result.get("code", ""))
    return {
        **intent,
        "code": code,
        "message": str(result.get("message", "")),
        "new_id": str(details["id"]) if code == "SUCCESS" and details.get("id") else None,
        "field": details.get("api_name"),
    }


def _call_error(error: ZohoApiError, module: str, count: int) -> Tuple[int, str]:
    if error.code == "OAUTH_SCOPE_MISMATCH":
        return (
            EXIT_AUTH,
            f"Zoho refused to create {module} records (401 OAUTH_SCOPE_MISMATCH): the refresh "
            f"token lacks the scope ZohoCRM.modules.{module}.CREATE; grant it again with scopes "
            "ZohoCRM.modules.ALL,ZohoCRM.settings.ALL (README step 2) and set the new refresh "
            "token",
        )
    lost = counted(count, f"{module} record was", f"{module} records were")
    return EXIT_ZOHO, f"{error}; {lost} not created: run it again"


def summarise(sender: Sender, say: Callable[[str], None]) -> int:
    """Print the outcome per kind, name the failures; the exit code."""
    latest = {(r["module"], r["old_id"]): r for r in sender.outcomes}  # a record's last attempt
    counts: Dict[str, int] = defaultdict(int)
    for row in latest.values():
        counts[row["code"]] += 1
    kinds = ", ".join(f"{n} {code}" for code, n in sorted(counts.items()) if code != "SUCCESS")
    say(
        f"Recreate: {counts['SUCCESS']} recreated with new ids"
        f"{', ' + kinds if kinds else ''} (each recorded in {RECREATED})"
    )
    ownerless = [r for r in latest.values() if OWNERLESS in (r["message"] or "")]
    if ownerless:
        say(f"  {len(ownerless)} of them {OWNERLESS.replace('its', 'their')}")
    failed = [r for r in latest.values() if r["code"] not in ("SUCCESS", "NOT_CREATED")]
    for row in failed[:SHOWN]:
        on = f" {row['field']}" if row["field"] else ""
        say(f"  FAILED {row['module']} {row['old_id']}: {row['code']}{on} - {row['message']}")
    if len(failed) > SHOWN:
        say(f"  ... and {len(failed) - SHOWN} more in {RECREATED}")
    if sender.error is not None:
        print(f"zoho-deleted: {sender.error[1]}", file=sys.stderr, flush=True)
        return sender.error[0]
    return EXIT_PARTIAL if failed else EXIT_OK


def recreate_all(sender: Sender) -> None:
    """Resolve what interrupted commands sent, then send the plan (with what they had sent
    that Zoho does not hold), module by module."""
    found = sender.found
    again = sender.resolve(found.interrupted) if found.interrupted else []
    retry: Dict[str, List[Candidate]] = defaultdict(list)
    for key in again:
        if key in found.waiting:
            retry[key[0]].append(found.waiting[key])
    for module in sorted(set(found.send) | set(retry)):
        sender.send(module, found.send.get(module, []) + retry[module])
        if sender.error is not None:
            return


class Recreation:
    """`restore --recreate [--trigger ...] [--relink]`: the `Recreation` `restore` takes."""

    def __init__(self, triggers: Sequence[str], relink: bool, say: Callable[[str], None]) -> None:
        self.triggers, self.relink, self.say = list(triggers), relink, say

    def dry_run(self, pipeline: Any, org: str, gone: List[Entry]) -> Tuple[List[str], int]:
        read = _fields_if_reachable(org)
        found = recreate_plan(pipeline, org, gone, read)
        lines = describe_recreate(found, self.triggers)
        parents = {(c.module, c.old_id) for cs in found.send.values() for c in cs}
        parents |= {(m, old) for m, pairs in found.already.items() for old, _ in pairs}
        links = captured_links(pipeline, org, parents)
        if links:
            how = "--yes points" if self.relink else "--relink would point"
            lines.append(
                f"Links: {counted(len(links), 'related record', 'related records')} captured "
                f"{'points' if len(links) == 1 else 'point'} at these records; {how} "
                "those still in Zoho at the new records (Update Records)"
            )
        return lines, found.count() + len(found.waiting)

    def run(self, pipeline: dlt.Pipeline, org: str, gone: List[Entry]) -> int:
        client = org_client(org)
        found = recreate_plan(pipeline, org, gone, lambda module: fields_of(client, module))
        for line in describe_recreate(found, self.triggers)[1:]:
            if not line.startswith(" "):
                self.say(line)
        sender = Sender(pipeline, client, org, found, self.triggers)
        if found.count() or found.interrupted:
            recreate_all(sender)
            code = summarise(sender, self.say)
        else:
            self.say("Nothing to recreate.")
            code = EXIT_OK
        record_events(pipeline, org)
        if self.relink and sender.error is None:
            code = max(code, self._relink(sender, gone))
        return code

    def _relink(self, sender: Sender, gone: List[Entry]) -> int:
        parents = {(e.module, e.id) for e in gone} & set(sender.found.recreated)
        links = captured_links(sender.pipeline, sender.org, parents)
        if not links:
            return EXIT_OK
        done = relinked(sender.pipeline, sender.org)
        rows, left = relink(sender.client, links, sender.found.recreated, done,
                            self.triggers, sender.row)  # fmt: skip
        record_outcomes(sender.pipeline, rows)
        ok = sum(1 for r in rows if r["code"] == "SUCCESS")
        alone = "; ".join(f"{n} {why}" for why, n in sorted(left.items()))
        self.say(
            f"Relink: {ok} related records pointed at their new records, {len(rows) - ok} "
            f"failed{' (left alone: ' + alone + ')' if alone else ''}"
        )
        for r in rows:
            if r["code"] != "SUCCESS":
                self.say(f"  FAILED {r['module']} {r['old_id']}: {r['code']} - {r['message']}")
        return EXIT_OK if ok == len(rows) else EXIT_PARTIAL


def _fields_if_reachable(org: str) -> Callable[[str], Optional[List[Dict[str, Any]]]]:
    """A dry run reads `/settings/fields` when the org's Zoho is configured and answers; else
    it goes on without (the demo's org, whose stand-in has stopped)."""
    client: List[Optional[ZohoClient]] = []

    def read(module: str) -> Optional[List[Dict[str, Any]]]:
        try:
            if not client:
                client.append(org_client(org))
            return fields_of(client[0], module) if client[0] else None
        except (ZohoError, PipelineConfigError, RequestException):
            client[:] = [None]
            return None

    return read
