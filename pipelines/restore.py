"""`zoho-deleted restore`: bring entries back from Zoho's recycle bin, dry run first.

The selection is read from the warehouse (an incident, a module / deleter / time window, or
ids). Without `yes` nothing changes: the plan is printed. With it, the ids still restorable go
to `POST /settings/recycle_bin/actions/restore`, at most 200 a call, and each id's outcome is
appended to `restore_requests`. The next reconciliation marks restored entries `restored_at`.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple

import dlt
from requests.exceptions import RequestException

from pipelines.errors import EXIT_AUTH, EXIT_OK, EXIT_PARTIAL, EXIT_ZOHO
from pipelines.exceptions import PipelineConfigError
from pipelines.incidents import BINNED_JOIN, DELETED_AT, read_incidents, utc
from pipelines.ledger import RESTORE_REQUESTS, record_restores, who
from pipelines.orgs import org_settings
from pipelines.run import exclusive
from pipelines.sql import query_rows
from sources.zoho_crm import zoho_client
from sources.zoho_crm.client import ZohoClient
from sources.zoho_crm.errors import ZohoApiError, ZohoResponseError
from sources.zoho_crm.warehouse import Queryable, existing_tables

MAX_IDS = 200  # Zoho's limit per restore call
RESTORE_PATH = "settings/recycle_bin/actions/restore"
SCOPE = "ZohoCRM.settings.recycle_bin.UPDATE"
DONE = ("SUCCESS", "SCHEDULED")
SAMPLE_NAMES = 3

SELECT = f"""
SELECT r.module, r.id, r.type, r.display_name, r.expires_at, r.restored_at, {{requested}}
FROM {{ds}}.deleted_records r
{BINNED_JOIN.format(events="{ds}.deletion_events")}
WHERE r.org = %s AND {{where}}
ORDER BY r.module, {DELETED_AT}, r.id
"""
# Sent before, and Zoho said done: the next reconciliation will mark it; not sent again.
REQUESTED = f"""EXISTS (
  SELECT 1 FROM {{ds}}.{RESTORE_REQUESTS} q
  WHERE q.org = r.org AND q.module = r.module AND q.id = r.id
    AND q.code IN ('SUCCESS', 'SCHEDULED') AND q.requested_at >= r.deleted_time)"""
# Why an entry is not sent, in the order they are checked.
NOT_SENT = {
    "restored": "already restored in Zoho (a reconciliation saw them leave the bin)",
    "requested": "already restored by an earlier `zoho-deleted restore`; the next "
    "`zoho-deleted run --reconcile` marks them",
    "purged": "purged from the bin: Zoho cannot restore a purged record",
    "expired": "past their expiry (60 days in the bin): Zoho has emptied them from the bin",
}


@dataclass
class Selection:
    """What to restore, as given on the command line (one way of the three)."""

    incident: Optional[str] = None
    module: Optional[str] = None
    deleted_by: Optional[str] = None
    since: Optional[str] = None
    until: Optional[str] = None
    ids: Optional[str] = None


@dataclass
class Entry:
    module: str
    id: str
    display_name: Optional[str]
    expires_at: Optional[datetime]


@dataclass
class Plan:
    """Entries to send, and those left out by kind (see NOT_SENT); `gone`: the purged and
    expired ones, which only `--recreate` can bring back."""

    send: List[Entry] = field(default_factory=list)
    left_out: Dict[str, int] = field(default_factory=lambda: defaultdict(int))
    gone: List[Entry] = field(default_factory=list)


# the forms --since and --until take, as their help and their errors say
TIME_FORMS = "2026-11-30T14:00 (UTC), 2026-11-30T14:00+01:00 or 2026-11-30"


def parse_instant(name: str, value: str) -> datetime:
    """An ISO 8601 time; UTC when it has no offset."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PipelineConfigError(
            f"{name} {value!r} is not a time: write it as {TIME_FORMS}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _where(pipeline: Queryable, org: str, chosen: Selection) -> Tuple[str, List[Any]]:
    """The WHERE clause of the selection, checked: a bad selection is a one-line error."""
    window = (chosen.module, chosen.deleted_by, chosen.since, chosen.until)
    ways = [chosen.incident is not None, any(v is not None for v in window), chosen.ids is not None]
    if sum(ways) != 1:
        raise PipelineConfigError(
            "choose what to restore in one way: --incident ID, or --module / --deleted-by / "
            "--since / --until, or --ids ID[,ID...]"
        )
    if chosen.incident is not None:
        found = read_incidents(pipeline, org, incident_id=chosen.incident)
        if not found:
            raise PipelineConfigError(
                f"no incident {chosen.incident!r} in org {org}: `zoho-deleted incidents` lists "
                "their ids"
            )
        incident = found[0]
        return (
            f"r.module = %s AND r.deleted_by__id = %s AND {DELETED_AT} BETWEEN %s AND %s",
            [incident["module"], incident["deleted_by__id"], incident["started_at"],
             incident["ended_at"]],
        )  # fmt: skip
    if chosen.ids is not None:
        ids = [i.strip() for i in chosen.ids.split(",") if i.strip()]
        if not ids:
            raise PipelineConfigError(f"--ids {chosen.ids!r} names no id: give ID[,ID...]")
        return f"r.id IN ({', '.join(['%s'] * len(ids))})", ids
    clauses: List[str] = []
    args: List[Any] = []
    if chosen.module is not None:
        _known(pipeline, org, "--module", "r.module = %s", [chosen.module])
        clauses.append("r.module = %s")
        args.append(chosen.module)
    if chosen.deleted_by is not None:
        by = "(r.deleted_by__id = %s OR lower(r.deleted_by__name) = lower(%s))"
        _known(pipeline, org, "--deleted-by", by, [chosen.deleted_by] * 2)
        clauses.append(by)
        args += [chosen.deleted_by] * 2
    for name, value, op in (("--since", chosen.since, ">="), ("--until", chosen.until, "<")):
        if value is not None:
            clauses.append(f"{DELETED_AT} {op} %s")
            args.append(parse_instant(name, value))
    return " AND ".join(clauses), args


def _known(pipeline: Queryable, org: str, name: str, where: str, args: List[Any]) -> None:
    sql = f"SELECT count(*) FROM {{ds}}.deleted_records r WHERE r.org = %s AND {where}"
    if not query_rows(pipeline, sql, org, *args)[0][0]:
        raise PipelineConfigError(
            f"{name} {args[0]!r} matches no deleted record of org {org}: check the spelling "
            "(module API names, e.g. Leads; a user's name or id)"
        )


def plan(pipeline: Queryable, org: str, chosen: Selection, now: Optional[datetime] = None) -> Plan:
    """The entries the selection finds, sorted into sent and left out."""
    now = now or datetime.now(UTC)
    tables = existing_tables(pipeline)
    if "deleted_records" not in tables:
        raise PipelineConfigError("nothing is captured yet: run `zoho-deleted run` first")
    where, args = _where(pipeline, org, chosen)
    requested = REQUESTED if RESTORE_REQUESTS in tables else "FALSE"
    select = SELECT.format(requested=requested, where=where, ds="{ds}")
    rows = query_rows(pipeline, select, org, *args)
    if chosen.ids is not None:
        unknown = sorted(set(args) - {row[1] for row in rows})
        if unknown:
            raise PipelineConfigError(
                f"--ids {', '.join(unknown)}: not deleted records of org {org} that the "
                "warehouse holds (run `zoho-deleted run` first, or check the ids)"
            )
    result = Plan()
    for module, rid, kind, name, expires_at, restored_at, was_requested in rows:
        if restored_at is not None:
            result.left_out["restored"] += 1
        elif was_requested:
            result.left_out["requested"] += 1
        elif kind != "recycle":
            result.left_out["purged"] += 1
            result.gone.append(Entry(module, rid, name, expires_at))
        elif expires_at is not None and expires_at <= now:
            result.left_out["expired"] += 1
            result.gone.append(Entry(module, rid, name, expires_at))
        else:
            result.send.append(Entry(module, rid, name, expires_at))
    return result


def describe_plan(found: Plan) -> List[str]:
    """The dry run: per module how many, a few names, the earliest expiry; what is left out."""
    if not found.send:
        return ["Nothing to restore from Zoho's recycle bin.", *not_sent_lines(found)]
    lines = [f"Would restore {len(found.send)} entries from Zoho's recycle bin:"]
    by_module: Dict[str, List[Entry]] = defaultdict(list)
    for entry in found.send:
        by_module[entry.module].append(entry)
    for module, entries in sorted(by_module.items()):
        names = ", ".join(e.display_name or e.id for e in entries[:SAMPLE_NAMES])
        more = ", ..." if len(entries) > SAMPLE_NAMES else ""
        lines.append(f"  {module:<16}{len(entries):>6}  e.g. {names}{more}")
    expiries = [e.expires_at for e in found.send if e.expires_at]
    if expiries:
        lines.append(f"Earliest expiry: {utc(min(expiries))} (Zoho can restore them until then)")
    return lines + not_sent_lines(found)


def not_sent_lines(found: Plan) -> List[str]:
    return [f"Not sent: {found.left_out[k]} {NOT_SENT[k]}" for k in NOT_SENT if found.left_out[k]]


def org_client(org: str) -> ZohoClient:
    """A client for one org, configured as `zoho-deleted run` is (its calls go one by one)."""
    settings = org_settings(org)
    client_args = ("credentials", "data_center", "accounts_server", "api_domain", "api_version")
    return zoho_client(
        *(settings[key] for key in client_args),
        max_concurrency=1,
        token_retries=settings["token_retries"],
        token_retry_delay=settings["token_retry_delay"],
    )


def outcomes_of(body: Optional[Dict[str, Any]], ids: Sequence[str]) -> Dict[str, Tuple[str, str]]:
    """id -> (code, message) from a restore answer. An entry without an id (Zoho's 202 for a
    scheduled batch) stands for every id without its own; an id Zoho did not mention failed."""
    results = (body or {}).get("recycle_bin") or []
    by_id: Dict[str, Tuple[str, str]] = {}
    batch: Optional[Tuple[str, str]] = None
    for result in results:
        outcome = (str(result.get("code", "")), str(result.get("message", "")))
        rid = (result.get("details") or {}).get("id")
        if rid is None:
            batch = outcome
        else:
            by_id[str(rid)] = outcome
    missing = batch or ("NO_RESULT", "Zoho's answer named no outcome for this id")
    return {rid: by_id.get(rid, missing) for rid in ids}


class Recreation(Protocol):
    """`--recreate` (see `pipelines.recreate_send.Recreation`): what it does with the entries
    the bin no longer holds."""

    def dry_run(self, pipeline: Queryable, org: str, gone: List[Entry]) -> Tuple[List[str], int]:
        """The lines of the dry run, and how many records would be recreated."""

    def run(self, pipeline: dlt.Pipeline, org: str, gone: List[Entry]) -> int:
        """Recreate them; the exit code."""


def restore(
    pipeline: Queryable,
    org: str,
    chosen: Selection,
    yes: bool,
    say: Callable[[str], None],
    recreate: Optional[Recreation] = None,
) -> int:
    """The command: a dry run, or (with `yes`, on a dlt pipeline) the restore; returns the
    exit code. The restore reads what to send holding the locks a run takes (`exclusive`).
    With `recreate`, the entries the bin no longer holds are recreated (after the bin's)."""
    if not yes:
        found = plan(pipeline, org, chosen)
        for line in describe_plan(found):
            say(line)
        extra, recreated = recreate.dry_run(pipeline, org, found.gone) if recreate else ([], 0)
        for line in extra:
            say(line)
        if found.send or recreated:
            say("Nothing was changed: run the same command with --yes to restore them.")
        return EXIT_OK
    with exclusive(pipeline):
        found = plan(pipeline, org, chosen)
        for line in not_sent_lines(found):
            say(line)
        code = EXIT_OK
        if found.send:
            code = _send(pipeline, org, found.send, say)
        elif not (recreate and found.gone):
            say("Nothing to restore.")
        if recreate and found.gone:
            code = max(code, recreate.run(pipeline, org, found.gone))
        return code


def _send(
    pipeline: dlt.Pipeline, org: str, entries: List[Entry], say: Callable[[str], None]
) -> int:
    client = org_client(org)
    module_of = {e.id: e.module for e in entries}
    outcomes: List[Dict[str, Any]] = []
    requested_by = who()

    def note(ids: Sequence[str], results: Dict[str, Tuple[str, str]]) -> None:
        now = datetime.now(UTC)
        outcomes.extend(
            {
                "org": org,
                "module": module_of[rid],
                "id": rid,
                "requested_at": now,
                "requested_by": requested_by,
                "code": results[rid][0],
                "message": results[rid][1],
            }
            for rid in ids
        )

    ids = list(module_of)
    error_line, code = None, EXIT_OK
    try:
        for start in range(0, len(ids), MAX_IDS):
            batch = ids[start : start + MAX_IDS]
            try:
                body = client.post(RESTORE_PATH, {"ids": batch}, kind="restore")
            except ZohoApiError as error:
                note(batch, {rid: (error.code, str(error)) for rid in batch})
                left = len(ids) - start
                if error.code == "OAUTH_SCOPE_MISMATCH":
                    error_line, code = _scope_line(), EXIT_AUTH
                else:
                    error_line = f"{error}; {left} entries were not restored: run it again"
                    code = EXIT_ZOHO
                break
            note(batch, outcomes_of(body, batch))
    except (ZohoResponseError, RequestException) as error:
        left = len(ids) - len(outcomes)
        error_line = (
            f"could not reach Zoho after retries ({type(error).__name__}); {left} entries were "
            "not sent: run the same restore again"
        )
        code = EXIT_ZOHO
    finally:
        record_restores(pipeline, outcomes)
    return _summarise(outcomes, error_line, code, say)


def _scope_line() -> str:
    return (
        f"Zoho refused the restore (401 OAUTH_SCOPE_MISMATCH): the refresh token lacks the "
        f"scope {SCOPE}; grant it again with scopes ZohoCRM.modules.ALL,ZohoCRM.settings.ALL "
        "(README step 2; ZohoCRM.settings.ALL includes it) and set the new refresh token"
    )


def _summarise(
    outcomes: List[Dict[str, Any]], error_line: Optional[str], code: int, say: Callable[[str], None]
) -> int:
    counts: Dict[str, int] = defaultdict(int)
    for outcome in outcomes:
        counts[outcome["code"] if outcome["code"] in DONE else "failed"] += 1
    say(
        f"Restore: {counts['SUCCESS']} restored, {counts['SCHEDULED']} scheduled by Zoho, "
        f"{counts['failed']} failed (each recorded in {RESTORE_REQUESTS})"
    )
    failed = [o for o in outcomes if o["code"] not in DONE]
    if error_line is None:
        for outcome in failed:
            say(f"  FAILED {outcome['module']} {outcome['id']}: {outcome['code']} - "
                f"{outcome['message']}")  # fmt: skip
    if counts["SUCCESS"] or counts["SCHEDULED"]:
        say(
            "Run `zoho-deleted run --reconcile` to mark them restored in the warehouse (the "
            "daily reconciliation does it otherwise)."
        )
    if error_line is not None:
        print(f"zoho-deleted: {error_line}", file=sys.stderr, flush=True)
        return code
    return EXIT_PARTIAL if failed else EXIT_OK
