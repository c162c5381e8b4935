"""`zoho-deleted restore` against the stand-in's restore endpoint: dry run first, then 200 / 202 /
207 answers, at most 200 ids a call, restore_requests, what is not sent, a missing scope."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from conftest import CLIENT_SECRET, DUCKDB_FILE, NOW, REFRESH_TOKEN, analyst
from test_cli import in_process  # noqa: F401  (the fixture)
from test_incidents import MARCO, PATRICIA, burst

from pipelines.restore import outcomes_of


@pytest.fixture
def cmd(in_process, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SOURCES__ZOHO_CRM__INCIDENT_THRESHOLD", "5")
    return in_process


def requests_table(tmp_path) -> list:
    with analyst(tmp_path / DUCKDB_FILE) as db:
        return db.sql(
            "SELECT module, id, code, requested_by IS NOT NULL, requested_at IS NOT NULL "
            "FROM zoho_crm_deleted.restore_requests ORDER BY id"
        ).fetchall()


def incident_of(cmd) -> str:
    """The open incident's id, as `status --json` gives it (and as its problem names it)."""
    status = json.loads(cmd("status", "--json")[1])
    incident = status["incidents"][0]["incident_id"]
    problem = {p["code"]: p for p in status["problems"]}["incident_open"]
    assert (problem["count"], problem["incidents"]) == (1, [incident])
    assert problem["text"].startswith("1 open mass-deletion incident (listed above)")
    return incident


def test_a_dry_run_changes_nothing_then_yes_restores_and_reconciliation_closes_it(
    org, server, cmd, tmp_path
):
    ids = burst(org, "Leads", PATRICIA, NOW - timedelta(hours=2), 6, 1000)
    assert cmd("run")[0] == 0
    incident = incident_of(cmd)

    code, out, err = cmd("restore", "--incident", incident)
    assert code == 0, err
    assert "Would restore 6 entries" in out
    assert "  Leads                6  e.g. Rec 1000, Rec 1001, Rec 1002, ..." in out
    expiry = NOW - timedelta(hours=2) + timedelta(days=60)
    assert f"Earliest expiry: {expiry:%Y-%m-%d %H:%M} UTC" in out
    assert server.restores.calls == [] and len(org.in_bin(True)) == 6

    code, out, err = cmd("restore", "--incident", incident, "--yes")
    assert code == 0, err
    assert "6 restored, 0 scheduled by Zoho, 0 failed" in out
    assert server.restores.calls == [ids] and org.in_bin(True) == []
    assert requests_table(tmp_path) == [("Leads", rid, "SUCCESS", True, True) for rid in ids]

    assert cmd("run", "--reconcile")[0] == 0
    code, out, _ = cmd("status")
    assert code == 0 and "Healthy." in out
    assert "6 in the bin" not in cmd("incidents")[1]


def test_at_most_200_ids_a_call_and_each_outcome_recorded(org, server, cmd, tmp_path):
    ids = burst(org, "Deals", MARCO, NOW - timedelta(hours=5), 205, 10000, step=5)
    assert cmd("run")[0] == 0
    code, out, err = cmd("restore", "--module", "Deals", "--deleted-by", "marco ruiz", "--yes")
    assert code == 0, err
    assert [len(call) for call in server.restores.calls] == [200, 5]
    assert sorted(i for call in server.restores.calls for i in call) == sorted(ids)
    assert len(requests_table(tmp_path)) == 205


def test_a_scheduled_restore_counts_as_done(org, server, cmd, tmp_path):
    ids = burst(org, "Leads", PATRICIA, NOW - timedelta(hours=2), 5, 1000)
    assert cmd("run")[0] == 0
    server.restores.schedule_over = 3  # records plus children above it: Zoho answers 202
    code, out, err = cmd("restore", "--ids", ",".join(ids), "--yes")
    assert code == 0, err
    assert "0 restored, 5 scheduled by Zoho, 0 failed" in out
    assert {row[2] for row in requests_table(tmp_path)} == {"SCHEDULED"}


def test_a_mixed_answer_names_each_failure_and_exits_1(org, server, cmd, tmp_path):
    ids = burst(org, "Leads", PATRICIA, NOW - timedelta(hours=2), 5, 1000)
    assert cmd("run")[0] == 0
    org.restore("Leads", ids[1])  # restored in Zoho meanwhile: Zoho calls the id invalid
    code, out, err = cmd("restore", "--module", "Leads", "--yes")
    assert code == 1, err
    assert "4 restored, 0 scheduled by Zoho, 1 failed" in out
    assert f"FAILED Leads {ids[1]}: INVALID_DATA - the id given seems to be invalid" in out
    assert dict((row[1], row[2]) for row in requests_table(tmp_path))[ids[1]] == "INVALID_DATA"

    # A second restore sends nothing Zoho already restored for an earlier one.
    code, out, _ = cmd("restore", "--module", "Leads")
    assert code == 0 and "Would restore 1 entries" in out
    assert "Not sent: 4 already restored by an earlier `zoho-deleted restore`" in out


def test_entries_no_longer_restorable_are_not_sent_and_said_why(org, server, cmd):
    burst(org, "Leads", PATRICIA, NOW - timedelta(hours=2), 3, 1000)
    purged = burst(org, "Leads", PATRICIA, NOW - timedelta(hours=3), 2, 2000)
    burst(org, "Leads", PATRICIA, NOW - timedelta(days=61), 1, 3000)  # past 60 days
    assert cmd("run")[0] == 0
    for rid in purged:
        org.purge("Leads", rid, NOW - timedelta(minutes=1))
    assert cmd("run")[0] == 0
    code, out, err = cmd("restore", "--deleted-by", PATRICIA.id, "--yes")
    assert code == 0, err
    assert "Not sent: 2 purged from the bin: Zoho cannot restore a purged record" in out
    assert "Not sent: 1 past their expiry (60 days in the bin)" in out
    assert "3 restored" in out
    assert sorted(server.restores.calls[0]) == ["1000", "1001", "1002"]


def test_since_and_until_select_by_deletion_time(org, server, cmd):
    start = NOW - timedelta(hours=2)
    burst(org, "Leads", PATRICIA, start, 6, 1000, step=600)
    assert cmd("run")[0] == 0
    since, until = start + timedelta(minutes=10), start + timedelta(minutes=40)
    code, out, _ = cmd(
        "restore", "--module", "Leads", "--since", since.isoformat(), "--until", until.isoformat()
    )
    assert code == 0 and "Would restore 3 entries" in out
    assert "e.g. Rec 1001, Rec 1002, Rec 1003\n" in out


def test_a_token_without_the_restore_scope_gets_one_line_naming_it(org, server, cmd, tmp_path):
    ids = burst(org, "Leads", PATRICIA, NOW - timedelta(hours=2), 2, 1000)
    assert cmd("run")[0] == 0
    server.restores.scope_granted = False
    code, out, err = cmd("restore", "--ids", ",".join(ids), "--yes")
    assert code == 3
    assert err.count("\n") == 1 and "ZohoCRM.settings.recycle_bin.UPDATE" in err
    assert "ZohoCRM.settings.ALL" in err and "Traceback" not in err
    assert {row[2] for row in requests_table(tmp_path)} == {"OAUTH_SCOPE_MISMATCH"}
    assert len(org.in_bin(True)) == 2
    assert REFRESH_TOKEN not in out + err and CLIENT_SECRET not in out + err


def test_zoho_failing_after_retries_is_recorded_and_the_same_restore_completes_it(
    org, server, cmd, tmp_path
):
    ids = burst(org, "Leads", PATRICIA, NOW - timedelta(hours=2), 3, 1000)
    assert cmd("run")[0] == 0
    server.faults.add("recycle_bin/actions/restore", "500", times=None)
    code, out, err = cmd("restore", "--module", "Leads", "--yes")
    assert code == 4 and err.count("\n") == 1
    assert "HTTP 500 INTERNAL_ERROR" in err and "3 entries were not restored" in err
    assert {row[2] for row in requests_table(tmp_path)} == {"INTERNAL_ERROR"}
    assert len(org.in_bin(True)) == 3

    server.faults.clear()
    code, out, err = cmd("restore", "--module", "Leads", "--yes")
    assert code == 0, err
    assert "3 restored" in out and server.restores.calls == [ids]


BAD_SELECTIONS = [
    ([], ["choose what to restore"]),
    (["--ids", "1000", "--module", "Leads"], ["in one way"]),
    (["--incident", "0123456789ab"], ["no incident '0123456789ab'"]),
    (["--module", "Leeds"], ["--module 'Leeds' matches no deleted record"]),
    (["--deleted-by", "Nobody"], ["--deleted-by 'Nobody'"]),
    (["--ids", "1000,77"], ["--ids 77: not deleted records"]),
    (["--ids", " , "], ["names no id"]),
]


def test_a_bad_selection_is_one_line_and_exit_2(org, server, cmd):
    burst(org, "Leads", PATRICIA, NOW - timedelta(hours=2), 1, 1000)
    assert cmd("run")[0] == 0
    for argv, words in BAD_SELECTIONS:  # one loaded warehouse for all of them
        code, out, err = cmd("restore", *argv, "--yes")
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
        for word in words:
            assert word in err, (argv, err)
    assert server.restores.calls == []


def test_a_batch_answer_without_ids_stands_for_every_id():
    body = {"recycle_bin": [{"code": "SCHEDULED", "details": {}, "message": "scheduled"}]}
    assert outcomes_of(body, ["1", "2"]) == {
        "1": ("SCHEDULED", "scheduled"), "2": ("SCHEDULED", "scheduled")
    }  # fmt: skip
    assert outcomes_of({"recycle_bin": []}, ["1"])["1"][0] == "NO_RESULT"


def test_restore_reads_the_orgs_config_as_run_does_and_names_a_missing_key(
    org, server, cmd, monkeypatch
):
    ids = burst(org, "Leads", PATRICIA, NOW - timedelta(hours=2), 1, 1000)
    assert cmd("run")[0] == 0
    monkeypatch.delenv("SOURCES__ZOHO_CRM__CREDENTIALS__REFRESH_TOKEN")
    code, _, err = cmd("restore", "--ids", ids[0], "--yes")
    assert code == 2 and err.count("\n") == 1, err
    assert "missing configuration sources.zoho_crm.credentials.refresh_token" in err
    assert "SOURCES__ZOHO_CRM__CREDENTIALS__REFRESH_TOKEN" in err
    assert server.restores.calls == []
