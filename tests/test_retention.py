"""Expiry, restores found by reconciliation, deletion events, status for schedulers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from conftest import DUCKDB_FILE, IST, NOW, PST, api_calls, delete, query, run_once
from test_cli import cli

from pipelines.status import read_status

DS = "zoho_crm_deleted"


def test_expiry_is_60_days_in_the_bin_and_120_once_permanent_across_offsets(org, server, pipeline):
    binned = datetime(2026, 11, 1, 23, 30, tzinfo=PST)  # 2026-11-02 07:30 UTC
    purged = datetime(2026, 11, 3, 1, 15, tzinfo=IST)  # 2026-11-02 19:45 UTC
    delete(org, "Leads", "101", binned)
    delete(org, "Leads", "102", binned)
    org.purge("Leads", "102", purged)
    run_once(server, pipeline)

    rows = dict(
        (i, (t, e))
        for i, t, e in query(
            pipeline, f"SELECT id, deleted_time, expires_at FROM {DS}.deleted_records"
        )
    )
    assert rows["101"] == (binned, datetime(2027, 1, 1, 7, 30, tzinfo=UTC))
    assert rows["102"] == (purged, datetime(2027, 3, 2, 19, 45, tzinfo=UTC))


def test_reconciliation_tells_restores_from_purges(org, server, pipeline):
    for n in range(4):
        delete(org, "Contacts", f"20{n}", NOW - timedelta(days=2, minutes=n))
    run_once(server, pipeline)

    org.restore("Contacts", "200")  # back in Zoho: absent from every list
    org.purge("Contacts", "201", NOW - timedelta(minutes=1))  # gone for good
    first = run_once(server, pipeline, reconcile=True)
    # the bin in full, the two unlisted asked for by id, /deleted once per module
    assert first.api_calls["reconcile"] == 1 + 1 + 4

    rows = {
        i: (t, r is not None, name)
        for i, t, r, name in query(
            pipeline, f"SELECT id, type, restored_at, display_name FROM {DS}.deleted_records"
        )
    }
    assert rows["200"] == ("recycle", True, "Name 200")  # restored, details kept
    assert rows["201"] == ("permanent", False, "Name 201")  # purged, not restored
    assert rows["202"] == rows["203"][:2] + ("Name 202",) == ("recycle", False, "Name 202")

    (restored_at,) = query(
        pipeline, f"SELECT restored_at FROM {DS}.deleted_records WHERE id = '200'"
    )
    run_once(server, pipeline, reconcile=True)  # again: nothing new is inferred or changed
    assert query(pipeline, f"SELECT restored_at FROM {DS}.deleted_records WHERE id = '200'") == [
        restored_at
    ]
    events = query(pipeline, f"SELECT id, event FROM {DS}.deletion_events ORDER BY id, event")
    assert events == [
        ("200", "binned"), ("200", "restored"),
        ("201", "binned"), ("201", "purged"),
        ("202", "binned"), ("203", "binned"),
    ]  # fmt: skip


def test_reconciliation_runs_only_when_due_and_loads_what_incremental_missed(org, server, pipeline):
    delete(org, "Leads", "301", NOW - timedelta(hours=5))
    run_once(server, pipeline)
    # An entry Zoho shows late, stamped before the high-water mark: incremental cannot see it.
    delete(org, "Leads", "302", NOW - timedelta(hours=6))

    run_once(server, pipeline)  # reconcile_every is 1 day: not due
    assert "reconcile" not in api_calls(server)
    assert query(pipeline, f"SELECT count(*) FROM {DS}.deleted_records") == [(1,)]

    due = run_once(server, pipeline, reconcile_every="1s")  # the last pass was > 1 s ago?
    if "reconcile" not in due.api_calls:  # the first run marks the pass; allow the clock a tick
        due = run_once(server, pipeline, reconcile_every=0.001)
    assert due.api_calls["reconcile"] == 1 + 1 + 4  # 302, missed, asked for by id
    ids = query(pipeline, f"SELECT id, type, display_name FROM {DS}.deleted_records ORDER BY id")
    assert ids == [("301", "recycle", "Name 301"), ("302", "recycle", "Name 302")]
    assert query(pipeline, f"SELECT count(*) FROM {DS}.recycle_bin") == [(2,)]


def test_events_are_never_repeated_across_runs(org, server, pipeline):
    for n in range(10):
        delete(org, "Deals", f"40{n}", NOW - timedelta(hours=n + 1))
    for round_ in range(3):  # purged now (not NOW, the suite's start: a reconciliation
        # re-reads /deleted from an hour before the last one, as Zoho stamps a purge now)
        org.purge("Deals", f"40{round_}", datetime.now(UTC) - timedelta(seconds=3 - round_))
        run_once(server, pipeline, reconcile=True)
        run_once(server, pipeline)
    counts = query(
        pipeline,
        f"SELECT event, count(*), count(DISTINCT (module, id)) FROM {DS}.deletion_events "
        "GROUP BY event ORDER BY event",
    )
    # 400..402 were first seen binned except 400, which the first run already saw purged.
    assert counts == [("binned", 9, 9), ("purged", 3, 3)]
    observed = query(pipeline, f"SELECT observed_at FROM {DS}.deletion_events WHERE id = '409'")
    assert len(observed) == 1  # the first observation stays; later runs insert nothing


def test_status_before_any_run_after_a_good_run_when_stale_and_after_failures(
    org, server, pipeline, tmp_path
):
    never = cli(server, tmp_path, "status", "--json")  # no warehouse yet: where it looked
    assert never.returncode == 2 and never.stdout == ""
    assert f"no warehouse at {tmp_path / DUCKDB_FILE}" in never.stderr

    delete(org, "Leads", "501", NOW - timedelta(days=57))  # expires in 3 days
    delete(org, "Leads", "502", NOW - timedelta(days=1))
    delete(org, "Deals", "503", NOW - timedelta(days=1))
    org.purge("Deals", "503", NOW - timedelta(hours=1))  # purged before any run saw it
    assert cli(server, tmp_path, "run").returncode == 0
    good = cli(server, tmp_path, "status", "--json")
    assert good.returncode == 0, good.stdout
    status = json.loads(good.stdout)
    assert status["healthy"] is True and status["problems"] == []
    assert status["modules"]["Leads"] == {
        "recycle": 2, "permanent": 0, "expiring_within_7d": 1, "details_missing": 0,
        "restored": 0, "purged_between_runs": 0,
    }  # fmt: skip
    assert status["modules"]["Deals"]["details_missing"] == 1
    assert [(n["code"], n["count"]) for n in status["notices"]] == [
        ("expiring_soon", 1), ("purged_before_first_run", 1)
    ]  # fmt: skip
    human = cli(server, tmp_path, "status")
    assert "1 bin entries leave Zoho's bin within 7 days" in human.stdout
    assert "1 record was purged before the first run" in human.stdout
    assert "run more often" not in human.stdout  # no schedule could have kept that one

    stale = cli(server, tmp_path, "status", SOURCES__ZOHO_CRM__MAX_RUN_GAP="0.001")
    assert stale.returncode == 1 and "more than max_run_gap" in stale.stdout
    late = json.loads(
        cli(server, tmp_path, "status", "--json", SOURCES__ZOHO_CRM__MAX_RUN_GAP="0.001").stdout
    )["problems"]
    assert [p["code"] for p in late] == ["run_overdue"] and late[0]["max_run_gap_hours"] == 0.0
    assert late[0]["hours"] >= 0 and "more than max_run_gap" in late[0]["text"]

    server.faults.add(r"/Deals/deleted$", "403", times=None)
    assert cli(server, tmp_path, "run").returncode == 1
    failed = cli(server, tmp_path, "status", "--json")
    assert failed.returncode == 1
    refused = json.loads(failed.stdout)["problems"]
    assert [(p["code"], p["modules"]) for p in refused] == [("modules_refused", ["Deals"])]
    assert "Deals (NO_PERMISSION)" in refused[0]["text"]

    server.faults.clear()
    server.faults.add(r"/crm/", "500", times=None)
    assert cli(server, tmp_path, "run").returncode == 4
    broken = json.loads(cli(server, tmp_path, "status", "--json").stdout)
    assert broken["healthy"] is False and "INTERNAL_ERROR" in broken["last_run_error"]


def test_read_status_counts_expiry_relative_to_now(org, server, pipeline):
    delete(org, "Leads", "601", NOW - timedelta(days=50))
    run_once(server, pipeline)
    assert read_status(pipeline).modules["Leads"]["expiring_within_7d"] == 0
    later = read_status(pipeline, now=NOW + timedelta(days=5))
    assert later.modules["Leads"]["expiring_within_7d"] == 1
    assert later.healthy is False  # five days without a run is more than max_run_gap
