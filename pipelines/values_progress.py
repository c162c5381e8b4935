"""How far each module's record values have got, as runs leave it (see `sources.zoho_crm.values`).

A module's values pass keeps its progress in its resource's dlt state (`pass` while unfinished;
`since`/`completed` once a pass has read to its end). After its data, each run writes, per
module in `record_values`, what that state says and what the run added into the `runs` column
`values_progress` (JSON), carrying an unfinished pass's start, runs and records read over from
the run before. `status` and the report read it from there, so they show it whatever they read
(the pipeline's file, the analyst file, PostgreSQL) without the pipeline's working folder.

`values_progress`: module -> {`rows`: rows landed this run; `first_pass_complete`; `mark`: the
last complete pass's high-water mark (Zoho's `Modified_Time`); `pass`: None, or the unfinished
pass: {`started_at`, `runs`, `records_read`, `reached` (the newest `Modified_Time` read),
`advanced`: whether this run moved `reached`}}.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Dict, List, Optional, Tuple

import dlt
from dlt.destinations.exceptions import DatabaseTerminalException

from pipelines.incidents import utc
from pipelines.sql import query_rows
from sources.zoho_crm.values import values_name
from sources.zoho_crm.warehouse import Queryable

PROGRESS_COLUMN = "values_progress"
SOURCE_STATE = "zoho_crm"  # the source's name: its resources' state is kept under it
Progress = Dict[str, Dict[str, Any]]
# The latest run that said where values stand: one that finished (a run failing before its end
# writes no progress; a run without `record_values` writes none and captures none).
LAST_PROGRESS = f"""
SELECT {PROGRESS_COLUMN}, values_stop FROM {{ds}}.runs
WHERE org = %s AND ({PROGRESS_COLUMN} IS NOT NULL OR succeeded)
ORDER BY finished_at DESC LIMIT 1
"""


def last_progress(reading: Queryable, org: str) -> Tuple[Progress, Optional[str]]:
    """The values progress the org's latest run wrote, and why its values stopped short (if
    they did); nothing before a run has written it (or from a `runs` table older than it)."""
    try:
        rows = query_rows(reading, LAST_PROGRESS, org)
    except DatabaseTerminalException:  # a `runs` table from before record values
        return {}, None
    if not rows or rows[0][0] is None:
        return {}, None
    value, stop = rows[0]
    return (json.loads(value) if isinstance(value, str) else dict(value)), stop


def run_progress(
    pipeline: dlt.Pipeline,
    modules: List[str],
    read: Dict[str, int],
    landed: Dict[str, int],
    started_at: datetime,
    previous: Progress,
) -> Progress:
    """Each module's progress once the run's packages are loaded (their state committed):
    `read`/`landed` are the run's rows by table, `previous` the progress of the run before."""
    resources = pipeline.state.get("sources", {}).get(SOURCE_STATE, {}).get("resources", {})
    progress: Progress = {}
    for module in modules:
        table = values_name(module)
        state = resources.get(table) or {}
        unfinished = state.get("pass")
        entry: Dict[str, Any] = {
            "rows": landed.get(table, 0),
            "first_pass_complete": bool(state.get("since") or state.get("completed")),
            "mark": state.get("since"),
            "pass": None,
        }
        if unfinished:
            before = (previous.get(module) or {}).get("pass") or {}
            reached = unfinished.get("newest")
            entry["pass"] = {
                "started_at": before.get("started_at") or started_at.isoformat(),
                "runs": before.get("runs", 0) + 1,
                "records_read": before.get("records_read", 0) + read.get(table, 0),
                "reached": reached,
                "advanced": reached is not None and reached != before.get("reached"),
            }
        progress[module] = entry
    return progress


def unfinished(progress: Progress) -> List[str]:
    """The modules whose values pass goes on in the next runs."""
    return sorted(m for m, p in progress.items() if p.get("pass"))


def catch_up(stop: str) -> str:
    """How values that stopped for `stop` (`ValuesRun.stop`) catch up."""
    if "credits" in stop:
        return "once Zoho's daily credits refill; a bigger budget would not help"
    return "to catch up sooner, raise values_calls_per_run or run more often"


def pass_words(entry: Dict[str, Any]) -> str:
    """Where a module's values stand, in words: its first pass complete or going on, and how
    far an unfinished pass has read (`entry`: a module's `values_progress`)."""
    if entry.get("first_pass_complete") is None:  # captured by earlier runs only
        return "not in record_values any more (its values are those last captured)"
    going = entry.get("pass")
    if not going:
        mark = entry.get("mark")
        upto = f"; changes read up to Modified_Time {_time(mark)}" if mark else ""
        return f"first pass complete{upto}"
    what = "first pass" if not entry.get("first_pass_complete") else "pass over changes"
    reached = f", up to Modified_Time {_time(going['reached'])}" if going.get("reached") else ""
    return (
        f"{what} going on since {_time(going['started_at'])} ({going['runs']} run(s), "
        f"{going['records_read']} records read{reached})"
    )


def _time(value: str) -> str:
    return utc(datetime.fromisoformat(value))
