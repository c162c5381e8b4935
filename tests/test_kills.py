"""A run killed at the worst moment of a load job doubles nothing.

dlt records a load job's outcome in its package only after the job's rows are in the database.
A run killed between the two (SIGKILL, power loss) leaves the job "started": the next run loads
the package again and dlt runs that job a second time, copying its rows once more. These tests
kill the run at exactly that point (not by a timer): a child process makes dlt's recording of
the chosen table's first copy job (or merge job) kill the process, then a clean run follows.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dlt
import pytest
from conftest import ANALYST_FILE, NOW, analyst, delete, env_for, query, run_once
from test_cli import cli
from test_postgres import URL as PG_URL
from test_postgres import pg_pipeline  # noqa: F401  (the fixture)

from pipelines.ledger import record_restores
from pipelines.run import load

DS = "zoho_crm_deleted"

# The child: `zoho-deleted ARGS...`, killed with SIGKILL once dlt has run the first load job of
# table KILL_AT (its copy job; its merge job with KILL_MERGE set), the job's work committed,
# and is about to write down that it did.
KILLED_RUN = """
import os, signal, sys
from dlt.common.storages.load_package import PackageStorage
from pipelines.cli import main

table, merge = os.environ["KILL_AT"], "KILL_MERGE" in os.environ
saved = PackageStorage.save_pending_transition

def save_or_die(self, load_id, file_name, state, failed_message=None):
    job_table, ext = file_name.split(".")[0], file_name.split(".")[3]
    if state == "completed" and job_table == table and (ext == "sql") == merge:
        os.kill(os.getpid(), signal.SIGKILL)
    return saved(self, load_id, file_name, state, failed_message)

PackageStorage.save_pending_transition = save_or_die
sys.exit(main(sys.argv[1:]))
"""

RECORDS = 1_500  # per module
STATE = "_dlt_pipeline_state"  # dlt's state row, one a package that changed the state
KEYS = {
    "deleted_records": "org, module, id",
    "recycle_bin": "org, id",
    "deletion_events": "org, module, id, event, event_time",
    "related_fetches": "org, parent_module, parent_id, related_list",
    "deleted_related_records": "org, parent_module, parent_id, related_list, id",
    "runs": "org, started_at",
    "incident_reviews": "org, incident_id",
    "restore_requests": "org, module, id, requested_at",
}
RELATED = {  # a few related lists a run (exit 6 with the rest left for the next runs)
    "SOURCES__ZOHO_CRM__RELATED_LISTS": '{"Leads": {"Campaigns": ["Campaign_Name"]}}',
    "SOURCES__ZOHO_CRM__RELATED_CALLS_PER_RUN": "40",
}


def killed(server, tmp_path: Path, table: str, *argv: str, merge: bool = False, **env: str) -> None:
    """`zoho-deleted ARGV` killed right after `table`'s first copy (or merge) job landed."""
    at = {"KILL_AT": table, **({"KILL_MERGE": "1"} if merge else {})}
    child = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, *argv],
        cwd=tmp_path,
        env=env_for(server, tmp_path, **at, **RELATED, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr


def zoho_deleted(server, tmp_path: Path, *argv: str, **env: str) -> subprocess.CompletedProcess:
    done = cli(server, tmp_path, *argv, **RELATED, **env)
    assert done.returncode in (0, 6), done.stderr  # 6: related records left for later runs
    return done


def counts(tmp_path: Path) -> dict:
    """Rows and distinct keys of each table the dataset holds."""
    with analyst(tmp_path / ANALYST_FILE) as db:
        held = {
            name
            for (name,) in db.sql(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'zoho_crm_deleted'"
            ).fetchall()
        }
        return {
            table: db.sql(
                f"SELECT count(*), count(DISTINCT ({key})) FROM zoho_crm_deleted.{table}"
            ).fetchall()[0]
            for table, key in KEYS.items()
            if table in held
        }


def state_rows(tmp_path: Path) -> tuple:
    """Rows of dlt's state table and its distinct load ids."""
    with analyst(tmp_path / ANALYST_FILE) as db:
        return db.sql(
            f"SELECT count(*), count(DISTINCT _dlt_load_id) FROM zoho_crm_deleted.{STATE}"
        ).fetchall()[0]


def seed(org) -> None:
    for module in ("Leads", "Contacts"):
        for n in range(RECORDS):
            delete(org, module, f"{module[0]}{n:05d}", NOW - timedelta(minutes=n + 1))
    for n in range(RECORDS - 10, RECORDS):  # the oldest: the first the backlog fetches
        org.add_related("Leads", f"L{n:05d}", "Campaigns", [{"id": f"c{n}", "Campaign_Name": "C"}])
    for n in range(3):
        org.purge("Contacts", f"C{n:05d}", NOW - timedelta(seconds=n + 1))


def one_row_per_key(tmp_path: Path, table: str) -> dict:
    """Rows of each table, after checking that `table` has some and no table repeats a key."""
    found = counts(tmp_path)
    assert found[table][0] > 0
    assert {t: rows for t, (rows, _) in found.items()} == {
        t: keys for t, (_, keys) in found.items()
    }
    return {t: rows for t, (rows, _) in found.items()}


@pytest.mark.parametrize(
    "table, merge",
    [
        ("deletion_events", False),
        ("deletion_events", True),
        ("deleted_records", False),
        ("recycle_bin", False),
        ("deleted_related_records", False),
        ("related_fetches", False),
        ("runs", False),
        ("runs", True),
        (STATE, False),
    ],
)
def test_a_run_killed_after_a_load_job_landed_doubles_nothing(org, server, tmp_path, table, merge):
    seed(org)
    killed(server, tmp_path, table, "run", merge=merge)
    zoho_deleted(server, tmp_path, "run")
    rows = one_row_per_key(tmp_path, "deletion_events" if table == STATE else table)
    assert state_rows(tmp_path)[0] == state_rows(tmp_path)[1]  # one state row a package
    # and nothing is lost: every record, bin entry and event of the killed run is there
    assert rows["deleted_records"] == rows["deletion_events"] == 2 * RECORDS
    assert rows["recycle_bin"] == 2 * RECORDS - 3
    assert rows["runs"] == 2 if table == "runs" else rows["runs"] in (1, 2)


def test_a_restore_killed_after_its_requests_landed_records_each_once(org, server, tmp_path):
    seed(org)
    zoho_deleted(server, tmp_path, "run")
    killed(server, tmp_path, "restore_requests", "restore", "--ids", "L00001,L00002", "--yes")
    assert ("Leads", "L00001") not in org.entries  # Zoho restored them
    zoho_deleted(server, tmp_path, "run")
    assert one_row_per_key(tmp_path, "restore_requests")["restore_requests"] == 2


def test_an_acknowledgement_killed_after_it_landed_records_one_review(org, server, tmp_path):
    seed(org)
    zoho_deleted(server, tmp_path, "run")
    with analyst(tmp_path / ANALYST_FILE) as db:
        (incident,) = db.sql(
            "SELECT incident_id FROM zoho_crm_deleted.deletion_incidents LIMIT 1"
        ).fetchone()
    killed(server, tmp_path, "incident_reviews", "incidents", "ack", incident)
    zoho_deleted(server, tmp_path, "run")
    assert one_row_per_key(tmp_path, "incident_reviews")["incident_reviews"] == 1


def test_runs_and_restore_requests_appended_by_earlier_versions_keep_loading(org, server, pipeline):
    """Earlier versions appended these tables without a key: their rows stay, new ones merge."""
    earlier = datetime(2026, 1, 1, tzinfo=UTC)
    load(
        pipeline,
        dlt.resource(
            [{"org": "default", "started_at": earlier, "succeeded": True, "api_calls": 1}],
            name="runs",
            write_disposition="append",
        ),
    )
    request = {"org": "default", "module": "Leads", "id": "L1", "code": "SUCCESS"}
    load(
        pipeline,
        dlt.resource(
            [{**request, "requested_at": earlier}],
            name="restore_requests",
            write_disposition="append",
        ),
    )
    delete(org, "Leads", "L00001", NOW - timedelta(minutes=1))
    run_once(server, pipeline)
    record_restores(pipeline, [{**request, "requested_at": NOW, "message": None}])
    record_restores(pipeline, [{**request, "requested_at": NOW, "message": None}])  # a retry
    assert query(pipeline, f"SELECT count(*) FROM {DS}.runs") == [(2,)]
    assert query(pipeline, f"SELECT requested_at FROM {DS}.restore_requests ORDER BY 1") == [
        (earlier,),
        (NOW,),
    ]


@pytest.mark.skipif(not PG_URL, reason="no PostgreSQL server (see tests/test_postgres.py)")
@pytest.mark.parametrize("table", ["deletion_events", STATE])
def test_a_run_killed_after_a_load_job_landed_doubles_nothing_on_postgres(
    org,
    server,
    tmp_path,
    pg_pipeline,  # noqa: F811
    table,
):
    """On PostgreSQL (no ADBC driver) dlt loads the events from CSV files, in parallel jobs.
    Its state table keeps `_dlt_id` unique: a state job run again would fail the package for
    good, so the state row that landed before the kill is not copied again either."""
    seed(org)
    on_postgres = {"DESTINATION__POSTGRES__CREDENTIALS": PG_URL}
    killed(server, tmp_path, table, "run", "--destination", "postgres", **on_postgres)
    zoho_deleted(server, tmp_path, "run", "--destination", "postgres", **on_postgres)
    keys = {**KEYS, STATE: "_dlt_load_id"}
    counted = {
        name: query(
            pg_pipeline, f"SELECT count(*), count(DISTINCT ({keys[name]})) FROM {DS}.{name}"
        )
        for name in ("deleted_records", "deletion_events", "runs", STATE)
    }
    ((state_rows, state_packages),) = counted.pop(STATE)
    assert state_rows == state_packages  # one state row a package
    assert counted == {
        "deleted_records": [(2 * RECORDS, 2 * RECORDS)],
        "deletion_events": [(2 * RECORDS, 2 * RECORDS)],
        "runs": [(1, 1)],
    }
