"""Names, deleters and creators of purged records are Zoho's no longer: the warehouse keeps
them through everyday operations — dlt's own `drop` (state only, or the `deleted_records`
table) and a pass read again from its top — as long as `deleted_records` or `recycle_bin` still
holds them."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import List

import duckdb
from conftest import DUCKDB_FILE, NOW, analyst, delete, env_for
from test_cli import cli
from test_names import BIN

from pipelines.errors import EXIT_ZOHO


def dlt_cli(server, tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    """dlt's own command line on the project's pipeline, as an operator types it (`-y`: no
    prompt)."""
    return subprocess.run(
        [str(BIN / "dlt"), "-y", "pipeline", "zoho_crm", *argv],
        cwd=tmp_path,
        env=env_for(server, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


def bin_leads(org, count: int) -> List[str]:
    ids = [f"7{n:05d}" for n in range(count)]
    for n, rid in enumerate(ids):
        delete(org, "Leads", rid, NOW - timedelta(days=1, minutes=n))
    return ids


def purge(org, ids: List[str]) -> None:
    for rid in ids:
        org.purge("Leads", rid, NOW - timedelta(minutes=1))


def details(tmp_path: Path, ids: List[str]) -> List[tuple]:
    """(type, display_name, deleted_by__name, created_by__name) of these Leads, by id, from
    the pipeline's file (a failed run publishes no analyst file; no run holds it now)."""
    marks = ", ".join(f"'{rid}'" for rid in ids)
    with analyst(tmp_path / DUCKDB_FILE) as db:
        return db.sql(
            "SELECT type, display_name, deleted_by__name, created_by__name "
            f"FROM zoho_crm_deleted.deleted_records WHERE module = 'Leads' AND id IN ({marks}) "
            "ORDER BY id"
        ).fetchall()


def counts(tmp_path: Path) -> tuple:
    """Rows of deleted_records, recycle_bin and deletion_events."""
    with analyst(tmp_path / DUCKDB_FILE) as db:
        return tuple(
            db.sql(f"SELECT count(*) FROM zoho_crm_deleted.{table}").fetchone()[0]
            for table in ("deleted_records", "recycle_bin", "deletion_events")
        )


def named(rid: str) -> str:
    return f"Name {rid}"


def details_missing(server, tmp_path: Path) -> int:
    status = cli(server, tmp_path, "status", "--json")
    return json.loads(status.stdout)["modules"]["Leads"]["details_missing"]


def test_dropping_dlts_state_keeps_the_details_of_purged_records(org, server, tmp_path):
    ids = bin_leads(org, 50)
    ok(cli(server, tmp_path, "run"))
    purge(org, ids)
    ok(cli(server, tmp_path, "run"))
    kept = details(tmp_path, ids)
    assert [(t, n) for t, n, _, _ in kept] == [("permanent", named(rid)) for rid in ids]
    events = counts(tmp_path)

    # every pass starts again from the top: the purged entries arrive bare
    ok(dlt_cli(server, tmp_path, "drop", "--drop-all", "--state-only"))
    ok(cli(server, tmp_path, "run"))

    assert details(tmp_path, ids) == kept
    assert counts(tmp_path) == events == (50, 50, 100)  # nothing doubled
    assert details_missing(server, tmp_path) == 0


def test_dropping_the_deleted_records_table_takes_the_details_from_the_bin(org, server, tmp_path):
    ids = bin_leads(org, 30)
    ok(cli(server, tmp_path, "run"))
    purge(org, ids)
    ok(cli(server, tmp_path, "run"))
    kept = details(tmp_path, ids)

    # the resources that write `deleted_records`: the table is dropped, their passes reset
    ok(dlt_cli(server, tmp_path, "drop", "re:^deleted_records"))
    ok(cli(server, tmp_path, "run"))

    # the bin's rows name the record and its deleter; Zoho's bin does not say who created it
    assert details(tmp_path, ids) == [(t, n, d, None) for t, n, d, _ in kept]
    assert all(n == named(rid) for rid, (_, n, _, _) in zip(ids, kept, strict=True))
    assert details_missing(server, tmp_path) == 0


def test_a_first_pass_read_again_from_its_top_keeps_what_it_captured(org, server, tmp_path):
    ids = bin_leads(org, 600)  # 3 pages
    chunked = {"SOURCES__ZOHO_CRM__LOAD_CHUNK_ROWS": "400"}  # a page a list and package
    # the first package loads; Leads' second page finds the day's credits spent
    server.faults.add(r"/Leads/deleted$", "429-credits", times=1, query="page_token=")
    stopped = cli(server, tmp_path, "run", **chunked)
    assert stopped.returncode == EXIT_ZOHO, stopped.stdout + stopped.stderr
    captured = ids[:20]  # on the first page, loaded with their names
    assert [n for _, n, _, _ in details(tmp_path, captured)] == [named(r) for r in captured]

    # A day later: 20 of them purged, and Zoho no longer takes the pass's page token.
    purge(org, captured)
    server.faults.add(r"/Leads/deleted$", "400-page-token-expired", times=1, query="page_token=")
    ok(cli(server, tmp_path, "run", **chunked))

    assert server.faults.take("/crm/v8/Leads/deleted", "page_token=x") is None  # it was met
    kept = details(tmp_path, captured)
    assert [(t, n) for t, n, _, _ in kept] == [("permanent", named(r)) for r in captured]
    assert details_missing(server, tmp_path) == 0


def test_status_counts_as_lost_only_what_no_table_holds_and_a_reread_repairs_the_rest(
    org, server, tmp_path
):
    ids = bin_leads(org, 3)
    purge(org, ids[:1])  # before any run saw it in the bin: its details are lost
    ok(cli(server, tmp_path, "run"))
    purge(org, ids[1:])
    ok(cli(server, tmp_path, "run"))
    # what an earlier version left after a re-read: no details, which recycle_bin still holds
    with duckdb.connect(str(tmp_path / DUCKDB_FILE)) as db:
        db.execute(
            "UPDATE zoho_crm_deleted.deleted_records SET display_name = NULL, "
            "deleted_by__name = NULL, deleted_by__id = NULL, created_by__name = NULL, "
            f"created_by__id = NULL WHERE id = '{ids[1]}'"
        )

    assert details_missing(server, tmp_path) == 1
    ok(dlt_cli(server, tmp_path, "drop", "--drop-all", "--state-only"))
    ok(cli(server, tmp_path, "run"))
    assert [n for _, n, _, _ in details(tmp_path, ids)] == [None, *map(named, ids[1:])]
    assert details_missing(server, tmp_path) == 1


def notices(server, tmp_path: Path) -> dict:
    status = json.loads(cli(server, tmp_path, "status", "--json").stdout)
    return {n["code"]: n["count"] for n in status["notices"]}


def test_status_advises_running_more_often_only_for_a_purge_between_runs(org, server, tmp_path):
    ids = bin_leads(org, 2)
    purge(org, ids[:1])  # before the first run: no schedule could have kept its details
    ok(cli(server, tmp_path, "run"))
    assert notices(server, tmp_path) == {"purged_before_first_run": 1}
    first = cli(server, tmp_path, "status").stdout
    assert "1 record was purged before the first run" in first
    assert "run more often" not in first

    # deleted and purged after the first run, before the next: a run sooner would have seen it
    now = datetime.now(UTC)
    delete(org, "Leads", "799999", now)
    org.purge("Leads", "799999", now + timedelta(seconds=1))
    ok(cli(server, tmp_path, "run"))
    assert notices(server, tmp_path) == {"purged_before_first_run": 1, "purged_between_runs": 1}
    second = cli(server, tmp_path, "status").stdout
    assert "1 record was deleted and purged between two runs" in second
    assert "run more often (hourly recommended)" in second
