"""`status`: what the warehouse holds per module, what is at risk, and whether runs are healthy.

Healthy means: a run has succeeded, the last success is more recent than `max_run_gap`
(`[sources.zoho_crm] max_run_gap`, default 2 days), the last run failed for no module and set
aside no entry Zoho sent malformed, no mass-deletion incident is open (see
pipelines/incidents.py), and (on DuckDB) the analyst file is not older than the last
successful load. Backlogs (related records, record values still being read, even a values pass
that got no further in the last run) are notices: runs work them off within their budgets
after the deleted lists and the bin, which always land first (docs/record-values-status.md).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import dlt
from dlt.destinations.exceptions import DatabaseTerminalException

from pipelines.config import command_settings
from pipelines.incidents import describe_incident, read_incidents
from pipelines.reading import Reading, reading_of
from pipelines.record_values import values_coverage
from pipelines.report_page import org_flag
from pipelines.run import RUNS_TABLE
from pipelines.sql import query_rows
from pipelines.values_progress import catch_up, last_progress, pass_words
from pipelines.words import counted
from sources.zoho_crm import DEFAULT_ORG
from sources.zoho_crm.run_context import SOURCES

EXPIRY_HORIZON = timedelta(days=7)
COUNTS = (
    "recycle",
    "permanent",
    "expiring_within_7d",
    "details_missing",
    "restored",
    "purged_between_runs",
)
TABLE_COUNTS = COUNTS[:-1]  # the plain output's columns; its words tell purges between runs

# details_missing: purged records whose details no table holds (a run reading one again takes
# the name and deleter `recycle_bin` holds: see `Warehouse.fill_details`); purged_between_runs:
# those of them deleted after the first successful run started, so a run sooner would have
# seen them in the bin (the others were gone before any run: no schedule could have kept them)
MODULE_COUNTS = """
SELECT d.module,
  count(*) FILTER (WHERE d.type = 'recycle' AND d.restored_at IS NULL),
  count(*) FILTER (WHERE d.type = 'permanent'),
  count(*) FILTER (WHERE d.type = 'recycle' AND d.restored_at IS NULL
                   AND d.expires_at >= %s AND d.expires_at < %s),
  count(*) FILTER (WHERE {lost}),
  count(*) FILTER (WHERE d.restored_at IS NOT NULL),
  count(*) FILTER (WHERE {lost} AND d.deleted_time > %s)
FROM {ds}.deleted_records d
LEFT JOIN ({named_in_bin}) b ON b.org = d.org AND b.id = d.id
WHERE d.org = %s
GROUP BY d.module ORDER BY d.module
"""
LOST = """d.type = 'permanent' AND d.display_name IS NULL
                   AND d.deleted_by__name IS NULL AND d.created_by__name IS NULL
                   AND b.id IS NULL"""
NAMED_IN_BIN = (
    "SELECT org, id FROM {ds}.recycle_bin "
    "WHERE display_name IS NOT NULL OR deleted_by__name IS NOT NULL"
)
NO_BIN = "SELECT org, id FROM {ds}.deleted_records WHERE 1 = 0"  # no recycle_bin table yet
RECREATED_COUNTS = """SELECT module, count(DISTINCT id) FROM {ds}.deletion_events
WHERE org = %s AND event = 'recreated' GROUP BY module ORDER BY module"""
LAST_RUNS = f"""
SELECT max(CASE WHEN succeeded THEN finished_at END), max(finished_at),
  min(CASE WHEN succeeded THEN started_at END)
FROM {{ds}}.{RUNS_TABLE} WHERE org = %s
"""
LAST_RUN = f"""
SELECT succeeded, failed_modules, error, related_backlog, related_calls
FROM {{ds}}.{RUNS_TABLE} WHERE org = %s
ORDER BY finished_at DESC LIMIT 1
"""
# Entries Zoho sent malformed that the org's last run to load anything still met so: each run
# reads them again until they load (see `passes`), so older ones were corrected (or left Zoho).
OPEN_REJECTED = f"""
SELECT source, module, count(*) FROM {{ds}}.rejected_records
WHERE org = %s AND rejected_at >= (
  SELECT max(started_at) FROM {{ds}}.{RUNS_TABLE} WHERE org = %s AND rejected_records IS NOT NULL
)
GROUP BY source, module ORDER BY source, module
"""

# the progress of a module whose values tables hold rows but which the last run did not read
NOT_CAPTURED = {"rows": 0, "first_pass_complete": None, "mark": None, "pass": None}


@dataclass
class Problem:
    """One thing `status` reports: a stable `code` monitoring can tell apart, its numbers (e.g.
    `count`, `hours`), and the words a person reads (`text`, what the plain output prints)."""

    code: str
    text: str
    numbers: Dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text

    def as_json(self) -> Dict[str, Any]:
        return {"code": self.code, **self.numbers, "text": self.text}


@dataclass
class Status:
    org: str
    last_success_at: Optional[datetime]
    last_run_at: Optional[datetime]
    healthy: bool
    problems: List[Problem] = field(default_factory=list)  # each makes it unhealthy
    last_run_failed_modules: Optional[str] = None
    last_run_error: Optional[str] = None
    max_run_gap_hours: float = 48.0
    modules: Dict[str, Dict[str, int]] = field(default_factory=dict)
    related_backlog: int = 0  # (bin entry, related list) pairs the last run left to fetch
    related_backlog_runs: Optional[int] = None  # runs it takes at the last run's pace
    captures_stopped: Optional[str] = None  # a package the destination has not taken
    incidents: List[Dict[str, Any]] = field(default_factory=list)  # the open ones
    analyst_file: Optional[str] = None  # the copy analysts open; None when not on DuckDB
    read_from: Optional[Dict[str, str]] = None  # the analyst file, read while a run loads
    analyst_file_stale: bool = False  # published before the last successful load, or never
    # module -> its deleted records with captured values (`with_values`) and deleted before
    # any capture, and where its values pass stands (`values_progress`: `first_pass_complete`,
    # `mark`, `pass` while one goes on, `rows` the last run landed)
    record_values: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    values_stop: Optional[str] = None  # why the last run's record values stopped short
    # entries Zoho sends malformed, set aside, by where: "Leads (/deleted)" -> how many
    rejected_records: Dict[str, int] = field(default_factory=dict)
    notices: List[Problem] = field(default_factory=list)  # worth knowing, not unhealthy
    # module -> purged records recreated from their captured values (`restore --recreate`)
    recreated: Dict[str, int] = field(default_factory=dict)

    def as_json(self) -> Dict[str, Any]:
        data = {k: _iso(v) for k, v in asdict(self).items()}
        data["problems"] = [p.as_json() for p in self.problems]
        data["notices"] = [n.as_json() for n in self.notices]
        data["incidents"] = [{k: _iso(v) for k, v in i.items()} for i in self.incidents]
        return data


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def read_status(
    source: Union[dlt.Pipeline, Reading], org: str = DEFAULT_ORG, now: Optional[datetime] = None
) -> Status:
    """The status of one org's runs and records."""
    pipeline = reading_of(source)
    now = now or datetime.now(UTC)
    gap = command_settings().run_gap()
    runs = query_rows(pipeline, LAST_RUNS, org)
    last_success, last_run, first_success = runs[0] if runs else (None, None, None)
    last = _older_runs(pipeline, LAST_RUN, ("related_backlog", "related_calls"), org)
    succeeded, failed_modules, error, backlog, related_calls = last[0] if last else (None,) * 5
    progress, values_stop = last_progress(pipeline, org)
    status = Status(
        org=org,
        last_success_at=last_success,
        last_run_at=last_run,
        healthy=True,
        last_run_failed_modules=failed_modules,
        last_run_error=error,
        max_run_gap_hours=_in_hours(gap),
        modules={
            module: dict(zip(COUNTS, counts, strict=True))
            for module, *counts in _module_counts(pipeline, now, org, first_success)
        },
        related_backlog=int(backlog or 0),
        captures_stopped=_unloaded_package(pipeline.local),
        incidents=read_incidents(pipeline, org, open_only=True),
        analyst_file=pipeline.analyst_file,
        read_from=pipeline.read_from,
        record_values=_record_values(values_coverage(pipeline, org), progress),
        values_stop=values_stop,
        rejected_records=_open_rejected(pipeline, org),
        recreated=dict(query_rows(pipeline, RECREATED_COUNTS, org)),
    )
    if status.related_backlog:
        status.related_backlog_runs = -(-status.related_backlog // max(1, related_calls or 0))
    status.analyst_file_stale = _published_at(status.analyst_file) < (
        status.last_success_at or datetime.min.replace(tzinfo=UTC)
    )
    blocked = [Problem("runs_blocked", b) for b in pipeline.blockers]
    status.problems = [*blocked, *_problems(status, now, gap, succeeded)]
    status.notices = list(_notices(status))
    status.healthy = not status.problems
    return status


def _older_runs(pipeline: Reading, sql: str, newer: Tuple[str, ...], *args: Any) -> List[tuple]:
    """Rows of `sql`; of `sql` with NULL for its `newer` columns (or conditions on them) when
    the `runs` table is older than them (the next run adds them)."""
    try:
        return query_rows(pipeline, sql, *args)
    except DatabaseTerminalException:
        for column in newer:
            sql = sql.replace(column, "NULL", 1)
        return query_rows(pipeline, sql, *args)


def _record_values(
    coverage: Dict[str, Dict[str, int]], progress: Dict[str, Any]
) -> Dict[str, Dict[str, Any]]:
    """Per module whose values are captured (now, or by earlier runs): coverage and progress."""
    return {
        module: {
            "with_values": 0,
            "deleted_before_capture": 0,
            **coverage.get(module, {}),
            **progress.get(module, NOT_CAPTURED),
        }
        for module in sorted({*coverage, *progress})
    }


def _module_counts(
    pipeline: dlt.Pipeline, now: datetime, org: str, first_success: Optional[datetime]
) -> List[tuple]:
    # no successful run yet: nothing was purged between runs
    after = first_success or datetime.max.replace(tzinfo=UTC)
    args = (now, now + EXPIRY_HORIZON, after, org)
    query = MODULE_COUNTS.replace("{lost}", LOST)
    counts = query_rows(pipeline, query.replace("{named_in_bin}", NAMED_IN_BIN), *args)
    return counts or query_rows(pipeline, query.replace("{named_in_bin}", NO_BIN), *args)


def _published_at(analyst_file: Optional[str]) -> datetime:
    """When the analyst file was last published (its mtime); the latest time there is when
    there is no analyst file to publish, the earliest when it has not been published yet."""
    if analyst_file is None:
        return datetime.max.replace(tzinfo=UTC)
    try:
        return datetime.fromtimestamp(os.path.getmtime(analyst_file), UTC)
    except FileNotFoundError:
        return datetime.min.replace(tzinfo=UTC)


def _open_rejected(pipeline: Reading, org: str) -> Dict[str, int]:
    """Entries set aside, by where (none counted from a `runs` table older than the column)."""
    found = _older_runs(pipeline, OPEN_REJECTED, ("rejected_records IS NOT NULL",), org, org)
    return {f"{module} ({SOURCES[source]})": int(n) for source, module, n in found}


def _unloaded_package(pipeline: Optional[dlt.Pipeline]) -> Optional[str]:
    """Why captures have stopped, when a package a run read is still not loaded (None without
    a working folder, or while a run is loading)."""
    if pipeline is None or not pipeline.has_pending_data:
        return None
    trace = pipeline.last_trace
    failed = [s for s in (trace.steps if trace else []) if s.step_exception]
    why = next(iter(failed[-1].step_exception.splitlines()), "") if failed else "interrupted"
    return (
        "captures have stopped: a load package a run read is not in the destination yet "
        f"({why[:300]}); `zoho-deleted run` loads it first and says what to do if it cannot"
    )


def _problems(status: Status, now: datetime, gap: timedelta, succeeded: Any) -> Iterator[Problem]:
    if status.captures_stopped:
        yield Problem("captures_stopped", status.captures_stopped)
    if status.last_success_at is None:
        text = "no run has succeeded yet: run `zoho-deleted run` and schedule it (hourly)"
        yield Problem("no_successful_run", text)
        return
    age = now - status.last_success_at
    if age > gap:
        text = (
            f"the last successful run was {_hours(age)} ago, more than max_run_gap "
            f"({_hours(gap)}): check the scheduler; deletions purged in between lose their "
            "names and deleters, and after 120 days Zoho forgets them entirely"
        )
        hours = {"hours": _round(age), "max_run_gap_hours": _round(gap)}
        yield Problem("run_overdue", text, hours)
    if status.last_run_failed_modules:
        text = (
            f"the last run could not read {status.last_run_failed_modules}: grant the Zoho user "
            "and token read access to those modules, or remove them from modules"
        )
        yield Problem("modules_refused", text, {"modules": _modules_of(status)})
    elif succeeded is False:
        yield Problem("last_run_failed", f"the last run failed: {status.last_run_error}")
    if status.analyst_file_stale:
        text = (
            f"the analyst file {status.analyst_file} is older than the last successful load, "
            "so analysts read stale data: the run could not publish it (its line said why: "
            "disk space, or the folder's permissions); fix that and run `zoho-deleted run`, "
            "which publishes it again"
        )
        yield Problem("analyst_file_stale", text, {"path": status.analyst_file})
    if status.rejected_records:
        count = sum(status.rejected_records.values())
        where = ", ".join(f"{w} {n}" for w, n in status.rejected_records.items())
        text = (
            f"{count} entries Zoho sent malformed are set aside "
            f"({where}): table rejected_records says what is wrong with each; every run reads "
            "them again and loads them once Zoho sends them whole (if it never does, ask Zoho "
            "support about those records)"
        )
        yield Problem("records_rejected", text, {"count": count})
    if status.incidents:
        on_org = org_flag(status.org)
        kind = "open mass-deletion incident"
        text = (
            f"{counted(len(status.incidents), kind, kind + 's')} (listed above): restore "
            f"with `zoho-deleted restore{on_org} --incident ID` (a dry run; add --yes to "
            f"restore), or acknowledge with `zoho-deleted incidents ack ID{on_org}`"
        )
        ids = [i["incident_id"] for i in status.incidents]
        yield Problem("incident_open", text, {"count": len(ids), "incidents": ids})


def _notices(status: Status) -> Iterator[Problem]:
    """What is worth knowing but not unhealthy: bin entries about to leave Zoho, records whose
    details are lost (and whether a run more often would have kept them), backlogs."""
    total = {k: sum(c[k] for c in status.modules.values()) for k in COUNTS}
    if total["expiring_within_7d"]:
        text = (
            f"{total['expiring_within_7d']} bin entries leave Zoho's bin within 7 days; they "
            "are captured here, and a restore in Zoho is only possible until then."
        )
        yield Problem("expiring_soon", text, {"count": total["expiring_within_7d"]})
    between = total["purged_between_runs"]
    before = total["details_missing"] - between
    if between:
        text = (
            f"{counted(between, 'record was', 'records were')} deleted and purged between two "
            "runs, so no run saw them "
            "in the bin and their names and deleters are lost: run more often (hourly "
            "recommended) to catch them in the bin."
        )
        yield Problem("purged_between_runs", text, {"count": between})
    if before:
        text = (
            f"{counted(before, 'record was', 'records were')} purged before the first run, so "
            "their names and deleters "
            "were gone before any run could read them (Zoho keeps only their ids and times)."
        )
        yield Problem("purged_before_first_run", text, {"count": before})
    if status.related_backlog:
        text = (
            f"{status.related_backlog} related lists of bin entries are still to fetch; at the "
            f"last run's pace about {status.related_backlog_runs} more run(s) fetch them."
        )
        numbers = {"count": status.related_backlog, "runs": status.related_backlog_runs}
        yield Problem("related_backlog", text, numbers)
    yield from _values_notices(status)


def _values_notices(status: Status) -> Iterator[Problem]:
    """Record values still being read, and passes that got no further in the last run (the
    sign of one going on longer than it should: at that pace it never ends)."""
    going = [m for m, v in status.record_values.items() if v.get("pass")]
    if not going:
        return
    stalled = [m for m in going if not status.record_values[m]["pass"]["advanced"]]
    stop = status.values_stop
    why = f"{stop}; {catch_up(stop)}" if stop else None
    text = (
        f"record values of {', '.join(going)} are still being read (how far: below); the next "
        "runs go on, after the deleted lists and the bin, within values_calls_per_run; a "
        "record deleted before its pass reaches it keeps no values."
    )
    if why and not stalled:
        text += f" The last run stopped short: {why}."
    yield Problem("values_backlog", text, {"count": len(going), "modules": going})
    if stalled:
        why = why or (
            "runs more than a day apart find Zoho's page token of an unfinished listing "
            "expired (they live 24 hours) and read that listing again from its start; run at "
            "least daily"
        )
        text = f"the record values of {', '.join(stalled)} got no further in the last run: {why}."
        yield Problem("values_pass_stalled", text, {"count": len(stalled), "modules": stalled})


def _modules_of(status: Status) -> List[str]:
    """The module names of the last run's `failed_modules` ("Leads (NO_PERMISSION), …")."""
    failed = status.last_run_failed_modules or ""
    return [part.split(" (")[0].strip() for part in failed.split(", ") if part.strip()]


def _in_hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def _round(delta: timedelta) -> float:
    return round(_in_hours(delta), 1)


def _hours(delta: timedelta) -> str:
    hours = _in_hours(delta)
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"


def describe(status: Status) -> List[str]:
    """The human form: counts, then in words what is at risk and what to do."""
    if status.last_success_at is None:
        unhealthy = [f"Org {status.org}: UNHEALTHY: {p.text}" for p in status.problems]
        return unhealthy + _analyst(status)
    lines = [
        f"Org {status.org}: last successful run {status.last_success_at:%Y-%m-%d %H:%M:%S} UTC"
    ]
    header = ("module", "in bin", "permanent", "exp.<7d", "no details", "restored")
    row = "  {:<16}{:>8}{:>11}{:>9}{:>12}{:>10}"
    lines.append(row.format(*header))
    for module, c in sorted(status.modules.items()):
        lines.append(row.format(module, *(c[k] for k in TABLE_COUNTS)))
    lines += [n.text for n in status.notices]
    if status.record_values:
        lines += ["Record values:", *map(_values_line, sorted(status.record_values.items()))]
    if status.recreated:
        counts = ", ".join(f"{m} {n}" for m, n in sorted(status.recreated.items()))
        lines.append(f"Recreated from captured values (restore --recreate): {counts}")
    lines += [f"Open incident {describe_incident(i)}" for i in status.incidents]
    lines += [f"UNHEALTHY: {p.text}" for p in status.problems] or ["Healthy."]
    return lines + _analyst(status)


def _values_line(item: Tuple[str, Dict[str, Any]]) -> str:
    """A module's record values: its coverage, and where its pass stands."""
    module, values = item
    kept = counted(values["with_values"], "deleted record with its", "deleted records with their")
    lost = counted(values["deleted_before_capture"], "deleted before its", "deleted before their")
    return f"  {module}: {kept} last values, {lost} values were captured; {pass_words(values)}"


def _analyst(status: Status) -> List[str]:
    if status.analyst_file is None:
        return []
    if not os.path.exists(status.analyst_file):
        return [f"Analysts open {status.analyst_file} once a run has published it."]
    if status.analyst_file_stale:
        return [f"Analysts open {status.analyst_file} (read-only; an older load, see above)."]
    return [f"Analysts open {status.analyst_file} (read-only; the last successful load)."]
