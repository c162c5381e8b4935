"""Mass-deletion incidents: bursts found with the best deletion times, stable ids, the status
alert, acknowledgements and the `deletion_incidents` view."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import List

import pytest
from conftest import DUCKDB_FILE, NOW, analyst
from test_cli import in_process  # noqa: F401  (the fixture)

from zoho_standin import Org
from zoho_standin.seed import USERS

PATRICIA, MARCO = USERS[0][0], USERS[1][0]


def burst(
    org: Org, module: str, user, start: datetime, count: int, first: int, step: int = 60
) -> List[str]:
    """`count` deletions by `user`, `step` seconds apart; returns their ids."""
    ids = [str(first + k) for k in range(count)]
    for k, rid in enumerate(ids):
        org.delete(module, rid, start + timedelta(seconds=step * k), f"Rec {rid}", user, user)
    return ids


@pytest.fixture
def cmd(in_process, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SOURCES__ZOHO_CRM__INCIDENT_THRESHOLD", "5")
    return in_process


def incidents_of(cmd) -> list:
    code, out, err = cmd("status", "--json")
    return json.loads(out)["incidents"]


def test_a_burst_of_the_threshold_is_an_incident_with_an_id_that_stays_as_it_grows(org, cmd):
    start = NOW - timedelta(hours=3)
    burst(org, "Leads", PATRICIA, start, 5, 1000)
    burst(org, "Contacts", PATRICIA, start, 4, 2000)  # below the threshold
    burst(org, "Leads", MARCO, start, 3, 3000, step=30)  # another user, interleaved
    burst(org, "Leads", PATRICIA, start - timedelta(hours=1), 4, 4000)  # 57 minutes before
    assert cmd("run")[0] == 0

    code, out, _ = cmd("incidents")
    assert code == 0
    [line] = out.strip().splitlines()
    incident_id = line.split()[0]
    assert "Leads: 5 records deleted by Patricia Boyle" in line and "OPEN" in line

    # Two more deletions within incident_gap (10m) of the last extend the burst: same id.
    burst(org, "Leads", PATRICIA, start + timedelta(minutes=12), 2, 1100)
    assert cmd("run")[0] == 0
    [incident] = incidents_of(cmd)
    assert incident["incident_id"] == incident_id
    assert (incident["records"], incident["in_bin"]) == (7, 7)
    assert datetime.fromisoformat(incident["started_at"]) == start
    assert incident["deleted_by__id"] == PATRICIA.id


def test_the_gap_and_threshold_follow_the_settings(org, cmd, monkeypatch):
    start = NOW - timedelta(hours=3)
    burst(org, "Leads", PATRICIA, start, 6, 1000, step=20 * 60)  # 20 minutes apart
    assert cmd("run")[0] == 0
    assert incidents_of(cmd) == []  # default gap 10m: six bursts of one
    monkeypatch.setenv("SOURCES__ZOHO_CRM__INCIDENT_GAP", "30m")
    assert [i["records"] for i in incidents_of(cmd)] == [6]
    monkeypatch.setenv("SOURCES__ZOHO_CRM__INCIDENT_THRESHOLD", "7")
    assert incidents_of(cmd) == []


def test_a_purge_keeps_the_record_in_its_burst_by_its_binned_time(org, cmd):
    ids = burst(org, "Deals", MARCO, NOW - timedelta(hours=2), 5, 1000)
    assert cmd("run")[0] == 0
    [before] = incidents_of(cmd)
    org.purge("Deals", ids[0], NOW)  # Zoho's deleted_time becomes the purge time
    assert cmd("run")[0] == 0
    [after] = incidents_of(cmd)
    assert after["incident_id"] == before["incident_id"]
    assert (after["records"], after["in_bin"]) == (5, 4)
    assert after["started_at"] == before["started_at"]


def test_status_alerts_until_acknowledged_and_again_when_the_burst_grows(
    org, cmd, tmp_path, monkeypatch
):
    monkeypatch.setenv("SOURCES__ZOHO_CRM__INCIDENT_GAP", "1d")  # however slow the machine
    burst(org, "Leads", PATRICIA, NOW - timedelta(hours=1), 5, 1000)
    assert cmd("run")[0] == 0
    code, out, _ = cmd("status")
    assert code == 1
    assert "Open incident" in out and "restore --incident ID" in out and "incidents ack ID" in out
    [incident] = incidents_of(cmd)
    assert set(incident) >= {
        "incident_id", "org", "module", "deleted_by__id", "deleted_by__name", "started_at",
        "ended_at", "records", "in_bin", "first_expiry", "reviewed_at",
    }  # fmt: skip

    code, out, _ = cmd("incidents", "ack", incident["incident_id"])
    assert code == 0 and "marked reviewed" in out
    code, out, _ = cmd("status")
    assert code == 0 and "Healthy." in out
    code, out, _ = cmd("incidents")
    assert "reviewed" in out and "OPEN" not in out
    with analyst(tmp_path / DUCKDB_FILE) as db:
        reviewed = db.sql(
            "SELECT incident_id, reviewed_at IS NOT NULL, reviewed_by IS NOT NULL, is_open "
            "FROM zoho_crm_deleted.deletion_incidents"
        ).fetchall()
    assert reviewed == [(incident["incident_id"], True, True, False)]

    # The script went on after the review: a deletion later than it, within the gap.
    burst(org, "Leads", PATRICIA, datetime.now(UTC) + timedelta(minutes=1), 1, 1100)
    assert cmd("run")[0] == 0
    code, out, _ = cmd("status")
    assert code == 1 and incidents_of(cmd)[0]["incident_id"] == incident["incident_id"]


def test_an_incident_whose_entries_left_the_bin_is_no_longer_open(org, cmd):
    ids = burst(org, "Leads", PATRICIA, NOW - timedelta(hours=2), 5, 1000)
    assert cmd("run")[0] == 0
    for rid in ids[:3]:
        org.restore("Leads", rid)
    for rid in ids[3:]:
        org.purge("Leads", rid, NOW)
    assert cmd("run", "--reconcile")[0] == 0
    assert incidents_of(cmd) == []
    code, out, _ = cmd("incidents")
    assert "5 records" in out and "0 in the bin" in out and "nothing left in the bin" in out


def test_the_view_is_there_before_any_review(org, cmd, tmp_path):
    burst(org, "Leads", PATRICIA, NOW - timedelta(hours=2), 5, 1000)
    assert cmd("run")[0] == 0
    with analyst(tmp_path / DUCKDB_FILE) as db:
        rows = db.sql(
            "SELECT module, records, in_bin, reviewed_at, is_open "
            "FROM zoho_crm_deleted.deletion_incidents"
        ).fetchall()
    assert rows == [("Leads", 5, 5, None, True)]


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"SOURCES__ZOHO_CRM__INCIDENT_THRESHOLD": "0"}, ["incident_threshold 0 ", "1 or more"]),
        ({"SOURCES__ZOHO_CRM__INCIDENT_GAP": "soon"}, ["incident_gap 'soon'", "s, m, h or d"]),
    ],
)
@pytest.mark.parametrize("command", [["run"], ["status"], ["incidents"]])
def test_a_bad_incident_setting_is_one_line(org, cmd, command, env, words):
    code, out, err = cmd(*command, **env)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    for word in words:
        assert word in err


def test_ack_of_an_unknown_incident_is_one_line(org, cmd):
    burst(org, "Leads", PATRICIA, NOW - timedelta(hours=2), 5, 1000)
    assert cmd("run")[0] == 0
    code, _, err = cmd("incidents", "ack", "feedbeef0000")
    assert code == 2 and "no incident 'feedbeef0000'" in err and "zoho-deleted incidents" in err
    code, _, err = cmd("incidents", "ack")
    assert code == 2 and "INCIDENT_ID" in err
