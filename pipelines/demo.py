"""`zoho-deleted demo`: the whole pipeline against the built-in Zoho stand-in, twice."""

from __future__ import annotations

import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Dict

import dlt
import duckdb

from pipelines.duckdb_file import NEWER_DUCKDB_FILE, duckdb_destination, duckdb_file
from pipelines.exceptions import PipelineConfigError
from pipelines.incidents import describe_incident, read_incidents
from pipelines.names import DATASET_NAME, old_pipeline_name, pipeline_name
from pipelines.recreate_send import Recreation
from pipelines.report import write_report
from pipelines.restore import Selection, restore
from pipelines.run import RunResult, make_pipeline, run
from pipelines.sql import query_rows
from zoho_standin import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, Org, StandinServer
from zoho_standin.seed import DEMO_MODULES, USERS, live_record_id, record_id, seed_demo

DEMO_ORG = "demo"  # its own pipeline state, and org = 'demo' on every row it loads
ON_DEMO = f"--org {DEMO_ORG}"  # in each command the demo prints: they read the demo's rows
DEMO_STATE_DIR = ".zoho-demo"
DEMO_REPORT = str(Path(DEMO_STATE_DIR) / "report.html")  # never a report the user wrote
MASS_DELETION = 120  # Deals one user deletes between the runs: above incident_threshold
DEMO_RELATED_LISTS = {
    "Leads": {"Campaigns": ["Owner", "Campaign_Name"], "Products": ["Owner", "Product_Name"]},
    "Contacts": {"Deals": ["Owner", "Deal_Name", "Amount"]},
}
DEMO_RECORD_VALUES = ["Leads", "Contacts"]  # whose live records' field values are kept
PURGED_LEAD = live_record_id(0, 1)  # captured by run 1, then deleted and purged: recreatable
# records as `status` counts them (in the bin, or purged); restored ones apart: back in Zoho
SAMPLE_QUERY = """SELECT module, type,
       count(*) FILTER (WHERE restored_at IS NULL) AS records,
       count(display_name) FILTER (WHERE restored_at IS NULL) AS with_details,
       count(*) FILTER (WHERE restored_at IS NOT NULL) AS restored,
       min(deleted_time) AS oldest, max(deleted_time) AS newest
FROM zoho_crm_deleted.deleted_records
GROUP BY module, type ORDER BY module, type"""


DELETED_LEAD_VALUES = (
    "SELECT \"values\" FROM {ds}.deleted_record_values WHERE module = 'Leads' ORDER BY id"
)


def demo_source_args(server: StandinServer) -> Dict[str, Any]:
    return {
        "credentials": {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
        },
        "accounts_server": server.url,
        "api_domain": server.url,
        "modules": list(DEMO_MODULES),
        "related_lists": DEMO_RELATED_LISTS,
        "record_values": DEMO_RECORD_VALUES,
    }


def change_between_runs(org: Org) -> str:
    """What happens in Zoho between the two demo runs: new deletions and purges, and a live
    lead whose values the first run captured is deleted and purged (`PURGED_LEAD`)."""
    now = datetime.now(UTC).replace(microsecond=0)
    user, tz = USERS[0]
    org.delete("Leads", PURGED_LEAD, now.astimezone(tz), "Person 1", user, user, user)
    org.purge("Leads", PURGED_LEAD, now + timedelta(seconds=1))
    for k in range(3):
        user, tz = USERS[k]
        org.delete(
            "Deals", record_id(2, 5000 + k), now.astimezone(tz), f"New Deal {k}", user, user, user
        )
    binned = sorted(
        e.id for e in org.entries.values() if e.module == "Leads" and e.type == "recycle"
    )
    for rid in binned[:2]:
        org.purge("Leads", rid, now + timedelta(seconds=1))
    org.restore("Leads", binned[2])
    user, tz = USERS[1]
    start = now - timedelta(minutes=30)
    for k in range(MASS_DELETION):  # one every 3 seconds: a mass-deletion incident
        at = (start + timedelta(seconds=3 * k)).astimezone(tz)
        org.delete("Deals", record_id(2, 6000 + k), at, f"Bulk Deal {k}", user, user, user)
    return (
        f"3 new Deals deleted, 2 Leads purged from the bin, 1 Lead restored, live Lead "
        f"Person 1 deleted and purged, and {user.name} "
        f"deleted {MASS_DELETION} Deals in {3 * MASS_DELETION // 60} minutes"
    )


def act_on(pipeline: dlt.Pipeline, say: Callable[[str], None]) -> None:
    """What an admin does next: list incidents, dry-run a restore, look at the report."""
    say(
        f"\nThe demo's rows are org {DEMO_ORG}: the commands below read them with {ON_DEMO}, "
        "from this folder."
    )
    say(f"Mass-deletion incidents (zoho-deleted incidents {ON_DEMO}):")
    incidents = read_incidents(pipeline, DEMO_ORG)
    for incident in incidents:
        say(f"  {describe_incident(incident)}")
    if incidents:
        first = incidents[0]["incident_id"]
        say(f"\nDry run (zoho-deleted restore {ON_DEMO} --incident {first}):")
        restore(pipeline, DEMO_ORG, Selection(incident=first), False, lambda line: say(f"  {line}"))
        say("  (--yes asks Zoho itself: the demo's stand-in has stopped, so try it on your org.)")
    try:
        written = write_report(pipeline, DEMO_ORG, DEMO_REPORT)
        say(f"\nReport (zoho-deleted report {ON_DEMO} --output {DEMO_REPORT}): {written}")
    except PipelineConfigError as error:  # installed without the extra
        say(f"\nNo report: {error}")


def recreate_purged_lead(pipeline: dlt.Pipeline, say: Callable[[str], None]) -> None:
    """The demo's last step: the dry run of recreating the Lead purged between its runs from
    its captured values (docs/recreate.md)."""
    say(
        "\nThe purged Lead, recreated from its last captured values (zoho-deleted restore "
        f"{ON_DEMO} --ids {PURGED_LEAD} --recreate):"
    )

    def indented(line: str) -> None:
        say(f"  {line}")

    recreate = Recreation([], False, indented)
    restore(pipeline, DEMO_ORG, Selection(ids=PURGED_LEAD), False, indented, recreate)


def holds_only_demo_data(path: Path) -> bool:
    """True when nothing but an earlier demo (of this version or an earlier one) loaded into
    the DuckDB file at `path`."""
    try:
        with duckdb.connect(str(path), read_only=True) as conn:
            schemas = {
                schema
                for (schema,) in conn.execute("SELECT schema_name FROM duckdb_tables()").fetchall()
            }
            if not schemas:
                return True
            if not schemas <= {DATASET_NAME, f"{DATASET_NAME}_staging"}:  # dlt's merge staging
                return False
            loaders = conn.execute(
                f"SELECT DISTINCT pipeline_name FROM {DATASET_NAME}._dlt_pipeline_state"
            ).fetchall()
    except duckdb.Error as error:  # locked by a run, not a DuckDB file, no dlt state
        if NEWER_DUCKDB_FILE in str(error):
            raise  # nothing can be told of it here; the command says what to do
        return False
    demo = pipeline_name(DEMO_ORG)
    return {name for (name,) in loaders} <= {demo, old_pipeline_name(demo)}


def fresh_demo_file() -> Path:
    """The configured DuckDB file, emptied of an earlier demo; never one holding real data."""
    path = Path(duckdb_file())
    if path.exists() and not holds_only_demo_data(path):
        raise PipelineConfigError(
            f"{path} holds data the demo did not load, and the demo will not replace it: run "
            "the demo in another directory, or point DESTINATION__DUCKDB__CREDENTIALS elsewhere"
        )
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)
    shutil.rmtree(DEMO_STATE_DIR, ignore_errors=True)
    return path


def demo(say: Callable[[str], None], print_result: Callable[[RunResult], None]) -> dlt.Pipeline:
    """Run against a fresh stand-in into the DuckDB file (recreated); returns the pipeline."""
    path = fresh_demo_file()
    pipeline = make_pipeline(
        destination=duckdb_destination(str(path)),
        pipelines_dir=str(Path(DEMO_STATE_DIR) / "pipelines"),
        org=DEMO_ORG,
        progress=True,
    )
    org = Org()
    seed_demo(org)
    with StandinServer(org) as server:
        args = {"org": DEMO_ORG, **demo_source_args(server)}
        say(f"Zoho stand-in listening on {server.url} ({len(org.entries)} deleted records)")
        say(f"\nRun 1: pipeline {pipeline.pipeline_name} (org {DEMO_ORG}) into {path.name}")
        print_result(run(pipeline, **args))
        say(f"\nIn Zoho meanwhile: {change_between_runs(org)}")
        say("Run 2, with --reconcile: what changed, plus the full pass for restores")
        result = run(pipeline, reconcile=True, **args)
        print_result(result)
    say("\nLast values of the deleted Lead (view deleted_record_values):")
    for values in query_rows(pipeline, DELETED_LEAD_VALUES):
        say(f"  {values[0]}")
    analyst = from_here(Path(str(result.analyst_file)))
    say(
        f"\nAnalysts open {analyst}, the read-only copy each run publishes, never "
        f"{path.name} itself: {duckdb_shell()} -readonly {analyst}"
    )
    return pipeline


def duckdb_shell() -> str:
    """The DuckDB shell to start from here: the one installed beside this Python (the `cli`
    extra; its virtual environment need not be active), else how to install it."""
    beside = Path(sys.executable).parent / "duckdb"
    if beside.is_file():
        shell = from_here(beside)
        return shell if "/" in shell else f"./{shell}"  # a path, never looked up in PATH
    return f"duckdb (not installed here: pip install duckdb-cli=={duckdb.__version__})"


def from_here(path: Path) -> str:
    """`path` as typed in the current folder: relative when under it, else absolute."""
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path.absolute())
