"""`zoho-deleted forget`: a record erased on request leaves no personal value in any text column
of the pipeline's DuckDB file or of the analyst file, even after Zoho sends it again."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Dict, List, Set

import dlt
import pytest
from conftest import ANALYST_FILE, DUCKDB_FILE, NOW, analyst, delete, query, run_once
from test_cli import cli
from test_postgres import URL as POSTGRES_URL
from test_postgres import pg_pipeline  # noqa: F401  (the fixture)

from pipelines.duckdb_file import duckdb_destination
from pipelines.forget import forget
from pipelines.names import DATASET_NAME
from sources.zoho_crm.records import NOT_A_TIME
from zoho_standin.org import User

RELATED = {"Leads": {"Campaigns": ["Owner", "Campaign_Name"], "Products": ["Product_Name"]}}
ERASED, LATER, KEPT = "1001", "1003", "1002"
DELETER = User("Dora Deleter", "990001")
CREATOR = User("Cory Creator", "990002")
OWNER = User("Olga Owner", "990003")
# what the warehouse must never hold again of ERASED and LATER
PERSONAL = {
    "Jane Erasable",
    "Dora Deleter",
    "Cory Creator",
    "Olga Owner",
    "Rita Related",
    "Jane Campaign",
    "Jane Widget",
    "jane@erase.me",
    "vip-jane",
    "Liam Later",
    "Liam Campaign",
}


def related_env(**more: str) -> Dict[str, str]:
    return {"SOURCES__ZOHO_CRM__RELATED_LISTS": json.dumps(RELATED), **more}


def bin_lead(org, rid: str, at, name: str, campaign: str, product: str) -> None:
    org.delete("Leads", rid, at, name, DELETER, CREATOR, OWNER)
    rita = {"name": "Rita Related", "id": "990004"}
    org.add_related(
        "Leads", rid, "Campaigns", [{"id": f"c{rid}", "Owner": rita, "Campaign_Name": campaign}]
    )
    org.add_related("Leads", rid, "Products", [{"id": f"p{rid}", "Product_Name": product}])


def add_values_tables(tmp_path: Path) -> None:
    """A `values_leads` table with a child table, as dlt lands a module's values (the capture
    of values is built apart from erasure)."""
    stub = dlt.pipeline(
        "values_stub",
        destination=duckdb_destination(str(tmp_path / DUCKDB_FILE)),
        dataset_name=DATASET_NAME,
        pipelines_dir=str(tmp_path / "stub"),
    )
    rows = [
        {"org": "default", "id": ERASED, "email": "jane@erase.me", "tags": ["vip-jane", "x"]},
        {"org": "default", "id": KEPT, "email": "kept@example.com", "tags": ["vip-kept"]},
    ]
    stub.run(rows, table_name="values_leads", primary_key=("org", "id"), write_disposition="merge")


def text_values(path: Path) -> Set[str]:
    """Every value of every text column of every table, in every schema of a DuckDB file."""
    found: Set[str] = set()
    with analyst(path) as db:
        columns = db.sql(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE data_type = 'VARCHAR' AND table_catalog = current_database()"
        ).fetchall()
        for schema, table, column in columns:
            sql = (
                f'SELECT DISTINCT "{column}" FROM "{schema}"."{table}" WHERE "{column}" IS NOT NULL'
            )
            found.update(str(v) for (v,) in db.sql(sql).fetchall())
    return found


def personal_left(tmp_path: Path) -> List[str]:
    """The personal values of the erased records found in either DuckDB file."""
    left = []
    for name in (DUCKDB_FILE, ANALYST_FILE):
        values = text_values(tmp_path / name)
        left += [f"{name}: {p}" for p in sorted(PERSONAL) if any(p in v for v in values)]
    return left


def personal_files(tmp_path: Path) -> List[str]:
    """Files in dlt's folders (load packages kept after loading) holding a personal value."""
    found = []
    for path in (tmp_path / "dlt").rglob("*"):
        if path.is_file() and any(p.encode() in path.read_bytes() for p in PERSONAL):
            found.append(path.name)
    return found


def rows_of(tmp_path: Path, sql: str) -> list:
    with analyst(tmp_path / ANALYST_FILE) as db:
        return db.sql(sql).fetchall()


def test_forget_erases_every_personal_value_and_later_runs_store_none(org, server, tmp_path):
    first = NOW - timedelta(minutes=30)
    bin_lead(org, ERASED, first, "Jane Erasable", "Jane Campaign", "Jane Widget")
    bin_lead(org, LATER, first + timedelta(minutes=1), "Liam Later", "Liam Campaign", "Liam W")
    delete(org, "Leads", KEPT, first, "Kept Lead")
    # related records of ERASED only (soonest-expiring first); LATER's stay in the backlog
    run = cli(server, tmp_path, "run", **related_env(SOURCES__ZOHO_CRM__RELATED_CALLS_PER_RUN="2"))
    assert run.returncode == 6, run.stderr
    add_values_tables(tmp_path)
    assert cli(server, tmp_path, "run").returncode == 0  # publishes them in the analyst file
    before = personal_left(tmp_path)
    assert f"{ANALYST_FILE}: Jane Erasable" in before and f"{DUCKDB_FILE}: vip-jane" in before

    dry = cli(server, tmp_path, "forget", "--module", "Leads", "--ids", f"{ERASED},{LATER}")
    assert dry.returncode == 0, dry.stderr
    assert "Would erase 2 record(s) of Leads in org default:" in dry.stdout
    assert "deleted_records                  2 row(s) display_name, deleted_by__name" in dry.stdout
    assert "deleted_related_records          2 row(s) deleted" in dry.stdout
    assert "values_leads                     1 row(s) deleted" in dry.stdout
    assert "values_leads__tags               2 row(s) deleted" in dry.stdout
    assert "Nothing was changed" in dry.stdout
    assert personal_left(tmp_path) == before

    done = cli(
        server, tmp_path, "forget", "--module", "Leads", "--ids", f"{ERASED},{LATER}", "--yes"
    )
    assert done.returncode == 0, done.stderr
    assert "Erased 2 record(s) of Leads" in done.stdout and "published again" in done.stdout
    assert personal_left(tmp_path) == [] and personal_files(tmp_path) == []

    # Zoho still sends them with their names: restored and deleted again (new deletion
    # times, read incrementally from /deleted and the bin), and re-read by reconciliation
    for rid in (ERASED, LATER):
        org.restore("Leads", rid)
    bin_lead(
        org, ERASED, NOW - timedelta(minutes=5), "Jane Erasable", "Jane Campaign", "Jane Widget"
    )
    bin_lead(org, LATER, NOW - timedelta(minutes=4), "Liam Later", "Liam Campaign", "Liam W")
    server.reset_counts()
    again = cli(server, tmp_path, "run", "--reconcile", **related_env())
    assert again.returncode == 0, again.stderr
    assert server.calls["related"] == 2  # KEPT's two lists; none of LATER's
    assert personal_files(tmp_path) == []
    fetches = f"SELECT parent_id, outcome FROM {DATASET_NAME}.related_fetches WHERE parent_id = %r"
    assert rows_of(tmp_path, fetches % LATER) == [(LATER, "erased")] * 2
    assert personal_left(tmp_path) == []
    kept = rows_of(
        tmp_path,
        "SELECT id, type, deleted_time IS NOT NULL, display_name, deleted_by__id "
        f"FROM {DATASET_NAME}.deleted_records ORDER BY id",
    )
    assert kept == [
        (ERASED, "recycle", True, None, DELETER.id),
        (KEPT, "recycle", True, "Kept Lead", "410888000000086033"),
        (LATER, "recycle", True, None, DELETER.id),
    ]
    assert "Kept Lead" in text_values(tmp_path / DUCKDB_FILE)
    assert rows_of(tmp_path, f"SELECT id, email FROM {DATASET_NAME}.values_leads") == [
        (KEPT, "kept@example.com")
    ]
    tombstones = rows_of(
        tmp_path,
        f"SELECT org, module, id, erased_at IS NOT NULL, erased_by IS NOT NULL "
        f"FROM {DATASET_NAME}.erasures ORDER BY id",
    )
    assert tombstones == [
        ("default", "Leads", ERASED, True, True),
        ("default", "Leads", LATER, True, True),
    ]

    twice = cli(server, tmp_path, "forget", "--module", "Leads", "--ids", ERASED, "--yes")
    assert twice.returncode == 0, twice.stderr
    assert "nothing personal of them is left" in twice.stdout
    assert rows_of(tmp_path, f"SELECT count(*) FROM {DATASET_NAME}.erasures") == [(2,)]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--module", "Leeds", "--ids", "1001"], "--module 'Leeds' has no captured record"),
        (["--module", "Leads", "--ids", " , "], "--ids ' , ' names no id"),
        (["--module", "Leads", "--ids", "1001,42"], "--ids 42: not records of Leads"),
        (["--ids", "1001"], "forget needs --module"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(org, server, tmp_path, argv, words):
    delete(org, "Leads", "1001", NOW - timedelta(hours=1))
    assert cli(server, tmp_path, "run").returncode == 0
    result = cli(server, tmp_path, "forget", *argv)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().count("\n") == 0 and words in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not POSTGRES_URL, reason="no PostgreSQL server: set ZOHO_TEST_POSTGRES")
def test_forget_on_postgres(org, server, pg_pipeline):  # noqa: F811
    bin_lead(org, ERASED, NOW - timedelta(minutes=30), "Jane Erasable", "Jane Campaign", "J W")
    delete(org, "Leads", KEPT, NOW - timedelta(minutes=30), "Kept Lead")
    run_once(server, pg_pipeline, related_lists=RELATED)
    said: List[str] = []
    assert forget(pg_pipeline, "default", "Leads", ERASED, True, said.append) == 0
    assert "  deleted_related_records          2 row(s) deleted" in said
    org.restore("Leads", ERASED)
    bin_lead(org, ERASED, NOW - timedelta(minutes=5), "Jane Erasable", "Jane Campaign", "J W")
    run_once(server, pg_pipeline, related_lists=RELATED, reconcile=True)

    columns = query(
        pg_pipeline,
        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
        f"WHERE table_schema IN ('{DATASET_NAME}', '{DATASET_NAME}_staging') "
        "AND data_type IN ('text', 'character varying')",
    )
    values: Set[str] = set()
    for schema, table, column in columns:
        sql = f'SELECT DISTINCT "{column}" FROM "{schema}"."{table}" WHERE "{column}" IS NOT NULL'
        values.update(str(v) for (v,) in query(pg_pipeline, sql))
    assert "Kept Lead" in values
    assert [p for p in PERSONAL if any(p in v for v in values)] == []
    assert query(pg_pipeline, f"SELECT id FROM {DATASET_NAME}.erasures") == [(ERASED,)]


def test_an_erased_entry_zoho_sends_malformed_is_set_aside_without_its_values(
    org, server, tmp_path
):
    org.delete("Leads", ERASED, NOW - timedelta(hours=1), "Jane Erasable", DELETER, CREATOR, OWNER)
    delete(org, "Leads", KEPT, NOW - timedelta(hours=1), "Kept Lead")
    server.faults.add(
        r"/Leads/deleted$", "corrupt", times=None, record=ERASED, field="deleted_time",
        value="yesterday",
    )  # fmt: skip
    assert cli(server, tmp_path, "run").returncode == 1  # set aside; the bin has it whole
    assert f"{DUCKDB_FILE}: Jane Erasable" in personal_left(tmp_path)

    dry = cli(server, tmp_path, "forget", "--module", "Leads", "--ids", ERASED)
    assert "  rejected_records                 1 row(s) deleted" in dry.stdout, dry.stderr
    done = cli(server, tmp_path, "forget", "--module", "Leads", "--ids", ERASED, "--yes")
    assert done.returncode == 0, done.stderr
    assert personal_left(tmp_path) == []

    again = cli(server, tmp_path, "run")  # still malformed: set aside again, nothing of it kept
    assert again.returncode == 1 and f"REJECTED Leads {ERASED}" in again.stdout
    assert personal_left(tmp_path) == [] and personal_files(tmp_path) == []
    reasons = rows_of(
        tmp_path, f"SELECT id, field, value, reason, entry FROM {DATASET_NAME}.rejected_records"
    )
    assert reasons == [(ERASED, "deleted_time", None, "deleted_time " + NOT_A_TIME, None)]


def test_a_record_erased_on_request_has_no_values_captured_again(org, server, pipeline):
    """`record_values`: forget deletes the record's values, and a later run reading it live
    again (restored in Zoho, then edited) stores none of them."""
    from zoho_standin.seed import live_record_id

    rid = live_record_id(0, 1)
    run_once(server, pipeline, record_values=["Leads"])
    delete(org, "Leads", rid, NOW - timedelta(minutes=1), name="Person 1")
    run_once(server, pipeline, record_values=["Leads"])
    values = f"SELECT id FROM {DATASET_NAME}.values_leads WHERE id = '{rid}'"
    assert query(pipeline, values) == [(rid,)]

    assert forget(pipeline, "default", "Leads", rid, True, lambda line: None) == 0
    assert query(pipeline, values) == []
    org.restore("Leads", rid)
    org.live.edit_all("Leads", NOW)
    run_once(server, pipeline, record_values=["Leads"])
    assert query(pipeline, values) == []
    kept = query(pipeline, f"SELECT count(*) FROM {DATASET_NAME}.values_leads")
    assert kept[0][0] >= 2  # the other leads' values, edited, still land
