"""`zoho-deleted restore --recreate`: purged records brought back from their last captured
values with Create Records, and the stand-in's Create and Update Records it runs against."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import timedelta
from typing import Any, Dict, List

import pytest
import requests
from conftest import DUCKDB_FILE, NOW, analyst, delete, env_for
from test_cli import in_process  # noqa: F401  (the fixture)
from test_incidents import PATRICIA
from test_record_values import Zoho

from zoho_standin import Org, StandinServer
from zoho_standin.records import Field
from zoho_standin.seed import live_record_id

LEAD = {"Last_Name": "Okafor", "Email": "ada@example.com", "Annual_Revenue": 1200.5}


def send(zoho: Zoho, method: str, module: str, body: Dict[str, Any]) -> requests.Response:
    return requests.request(
        method, f"{zoho.url}/crm/v8/{module}", json=body, headers=zoho.auth, timeout=5
    )


def codes(answer: requests.Response) -> List[str]:
    return [r["code"] for r in answer.json()["data"]]


def test_standin_creates_records_as_zoho_answers(org: Org, server: StandinServer) -> None:
    zoho = Zoho(server)
    made = send(zoho, "POST", "Leads", {"data": [LEAD, {**LEAD, "Email": "b@example.com"}],
                                        "trigger": []})  # fmt: skip
    assert made.status_code == 201 and codes(made) == ["SUCCESS", "SUCCESS"]
    first = made.json()["data"][0]
    assert first["message"] == "record added" and first["status"] == "success"
    new_id = first["details"]["id"]
    assert new_id not in (live_record_id(0, n) for n in range(3))
    assert server.creates.count_created("Leads") == 2
    assert server.creates.calls[0].trigger == [] and server.creates.calls[0].module == "Leads"
    listed = zoho.get("Leads", fields="Email,Last_Name", ids=new_id).json()["data"]
    assert listed == [{"id": new_id, "Email": "ada@example.com", "Last_Name": "Okafor"}]

    # a mix: each record's own code, the field named; nothing created for the refused ones
    org.delete("Accounts", "4108880000003000", NOW, "Acme", None)  # a lookup's target, deleted
    server.creates.unique["Leads"] = ("Email",)
    mixed = send(zoho, "POST", "Leads", {"data": [
        {"Email": "c@example.com"},
        {**LEAD, "Email": "g@example.com", "Annual_Revenue": "lots"},
        {**LEAD},
        {**LEAD, "Email": "d@example.com", "Account_Name": {"id": "4108880000003000"}},
        {**LEAD, "Email": "e@example.com", "Record_Number": "L-9", "Created_Time": "x"},
    ]})  # fmt: skip
    assert mixed.status_code == 207
    results = mixed.json()["data"]
    assert codes(mixed) == ["MANDATORY_NOT_FOUND", "INVALID_DATA", "DUPLICATE_DATA",
                            "INVALID_DATA", "SUCCESS"]  # fmt: skip
    assert results[0]["details"] == {"api_name": "Last_Name"}
    assert results[1]["details"] == {"api_name": "Annual_Revenue", "expected_data_type": "currency"}
    assert results[2]["details"] == {"api_name": "Email", "id": new_id}
    assert results[3]["details"]["api_name"] == "Account_Name"
    assert server.creates.count_created() == 3 and server.creates.calls[1].trigger is None
    assert "Record_Number" not in server.creates.created[-1][1]  # read-only: ignored

    refused = send(zoho, "POST", "Leads", {"data": [{"Email": "f@example.com"}]})
    assert refused.status_code == 400 and codes(refused) == ["MANDATORY_NOT_FOUND"]
    too_many = send(zoho, "POST", "Leads", {"data": [LEAD] * 101})
    assert too_many.status_code == 400 and too_many.json()["code"] == "LIMIT_EXCEEDED"
    server.creates.refused_scopes.add("ZohoCRM.modules.Leads.CREATE")
    scope = send(zoho, "POST", "Leads", {"data": [LEAD]})
    assert scope.status_code == 401 and scope.json()["code"] == "OAUTH_SCOPE_MISMATCH"
    assert server.creates.count_created() == 3


def test_standin_updates_records_and_can_lose_an_answer(org: Org, server: StandinServer) -> None:
    zoho = Zoho(server)
    live = live_record_id(1, 0)  # a seeded Contact
    updated = send(zoho, "PUT", "Contacts", {"data": [
        {"id": live, "Account_Name": {"id": "4108880000009999"}}, {"id": "77", "Email": "x"},
    ]})  # fmt: skip
    assert updated.status_code == 207 and codes(updated) == ["SUCCESS", "INVALID_DATA"]
    assert org.live.records["Contacts"][live]["Account_Name"] == {"id": "4108880000009999"}
    assert server.creates.calls[0].method == "PUT"

    server.creates.lose_answers = 1
    try:
        send(zoho, "POST", "Leads", {"data": [LEAD]})
        raise AssertionError("the answer was to be lost")
    except requests.ConnectionError:
        pass
    assert server.creates.count_created("Leads") == 1  # created all the same
    assert send(zoho, "POST", "Leads", {"data": [{**LEAD, "Email": "z@x.com"}]}).status_code == 201


# -- the command -----------------------------------------------------------------------------------
PURGED_AT = NOW + timedelta(seconds=1)


@pytest.fixture
def cmd(in_process, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SOURCES__ZOHO_CRM__RECORD_VALUES", '["Leads"]')
    return in_process


def purge_captured_leads(org: Org, cmd, count: int = 3) -> List[str]:
    """Capture the seeded Leads' values, delete `count` of them and one never captured, purge
    them all; returns the captured ones' ids."""
    assert cmd("run")[0] == 0
    ids = [live_record_id(0, n) for n in range(count)]
    for n, rid in enumerate(ids):
        delete(org, "Leads", rid, NOW - timedelta(minutes=5), name=f"Person {n}")
    delete(org, "Leads", "100", NOW - timedelta(minutes=5))  # its values never captured
    assert cmd("run")[0] == 0
    for rid in [*ids, "100"]:
        org.purge("Leads", rid, PURGED_AT)
    assert cmd("run")[0] == 0
    return ids


def audit(tmp_path) -> List[tuple]:
    with analyst(tmp_path / DUCKDB_FILE) as db:
        return db.sql(
            "SELECT module, old_id, new_id, code, field, requested_by IS NOT NULL "
            "FROM zoho_crm_deleted.recreated_records ORDER BY old_id, requested_at"
        ).fetchall()


def test_a_dry_run_says_what_would_be_recreated_and_changes_nothing(org, server, cmd):
    ids = purge_captured_leads(org, cmd)
    delete(org, "Accounts", "410888000003000001", NOW)  # Person 1's account
    assert cmd("run")[0] == 0
    code, out, err = cmd("restore", "--module", "Leads", "--recreate")
    assert code == 0, err
    assert "Not sent: 4 purged from the bin" in out
    assert "Would recreate 3 purged records from their last captured values" in out
    assert "each gets a new id and a new creation time" in out
    assert "  Leads                3  e.g. Person 0, Person 1, Person 2" in out
    written = out.split("fields written: ")[1].split("\n")[0].split(", ")
    assert {"Last_Name", "Email", "Owner", "Account_Name", "Line_Items"} <= set(written)
    skipped = out.split("fields skipped: ")[1].split("\n")[0]
    for shown in ("Created_Time (system)", "Modified_Time (system)", "Score_Formula (formula)",
                  "Record_Number (auto-number)"):  # fmt: skip
        assert shown in skipped
    assert "Account_Name left empty on 1: it points at a deleted record" in out
    assert "Cannot recreate: 1 Leads without captured values" in out
    assert "Workflows, approvals and blueprints fired: none (trigger [])" in out
    assert "Nothing was changed" in out
    assert server.creates.calls == [] and not set(ids) & set(org.live.records["Leads"])


def test_yes_recreates_without_workflows_audits_each_and_never_twice(org, server, cmd, tmp_path):
    ids = purge_captured_leads(org, cmd)
    code, out, err = cmd("restore", "--module", "Leads", "--recreate", "--yes")
    assert code == 0, err
    assert "Recreate: 3 recreated with new ids (each recorded in recreated_records)" in out
    assert [c.trigger for c in server.creates.calls] == [[]]
    sent = server.creates.calls[0].records
    assert [r["Email"] for r in sent] == [f"person{n}@example.com" for n in range(3)]
    assert not {"Created_Time", "Modified_Time", "Score_Formula", "Record_Number", "id"} & {
        k for r in sent for k in r
    }
    assert sent[0]["Account_Name"] == {"id": "410888000003000000"}
    assert all("id" not in row for r in sent for row in r["Line_Items"])
    rows = audit(tmp_path)
    made = {m["Email"]: m["id"] for _, m in server.creates.created}
    assert rows == [
        ("Leads", rid, made[f"person{n}@example.com"], "SUCCESS", None, True)
        for n, rid in enumerate(ids)
    ]

    code, out, _ = cmd("restore", "--module", "Leads", "--recreate", "--yes")
    assert code == 0 and "Not recreated again: 3 Leads already recreated" in out
    assert f"{ids[0]} -> {made['person0@example.com']}" in out
    assert "Nothing to recreate." in out and server.creates.count_created() == 3


def test_each_kind_of_refusal_is_recorded_and_printed_and_exits_1(org, server, cmd, tmp_path):
    ids = purge_captured_leads(org, cmd)
    server.creates.unique["Leads"] = ("Email",)
    org.live.put("Leads", {"id": "77", "Email": "person1@example.com", "Modified_Time": NOW})
    code, out, err = cmd("restore", "--ids", ",".join(ids), "--recreate", "--yes",
                         "--trigger", "workflow,approval")  # fmt: skip
    assert code == 1, err
    assert "Recreate: 2 recreated with new ids, 1 DUPLICATE_DATA" in out
    assert f"FAILED Leads {ids[1]}: DUPLICATE_DATA Email - duplicate data" in out
    assert server.creates.calls[0].trigger == ["workflow", "approval"]
    assert [r[3:5] for r in audit(tmp_path)] == [
        ("SUCCESS", None), ("DUPLICATE_DATA", "Email"), ("SUCCESS", None)
    ]  # fmt: skip

    # the conflict resolved in Zoho, the same command sends only the one that failed
    del org.live.records["Leads"]["77"]
    code, out, _ = cmd("restore", "--ids", ",".join(ids), "--recreate", "--yes")
    assert code == 0 and "Recreate: 1 recreated" in out
    assert [len(c.records) for c in server.creates.calls] == [3, 1]


# The child: `zoho-deleted ARGS...`, killed with SIGKILL as soon as Zoho has answered the first
# Create Records call, before the command writes the answer down.
KILLED_AFTER_CREATE = """
import os, signal, sys
from sources.zoho_crm.client import ZohoClient
from pipelines.cli import main

posted = ZohoClient.post

def post_then_die(self, path, body, *args, **kwargs):
    answer = posted(self, path, body, *args, **kwargs)
    if kwargs.get("kind") == "create":
        os.kill(os.getpid(), signal.SIGKILL)
    return answer

ZohoClient.post = post_then_die
sys.exit(main(sys.argv[1:]))
"""


def test_a_command_killed_after_zoho_created_the_records_resumes_without_duplicates(
    org, server, cmd, tmp_path
):
    ids = purge_captured_leads(org, cmd)
    env = env_for(server, tmp_path, SOURCES__ZOHO_CRM__RECORD_VALUES='["Leads"]')
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_CREATE, "restore", "--module", "Leads",
         "--recreate", "--yes"],  # fmt: skip
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert server.creates.count_created() == 3
    assert {r[3] for r in audit(tmp_path)} == {"SENDING"}  # sent, the answer never written

    code, out, _ = cmd("restore", "--module", "Leads", "--recreate")
    assert "3 were sent by an interrupted command: --yes looks in Zoho first" in out
    code, out, err = cmd("restore", "--module", "Leads", "--recreate", "--yes")
    assert code == 0, err
    assert "Recreate: 3 recreated with new ids" in out
    assert server.creates.count_created() == 3 and len(server.creates.calls) == 1  # none re-sent
    made = {m["Email"]: m["id"] for _, m in server.creates.created}
    assert audit(tmp_path) == [
        ("Leads", rid, made[f"person{n}@example.com"], "SUCCESS", None, True)
        for n, rid in enumerate(ids)
    ]


def test_a_lost_answer_is_looked_for_and_only_what_zoho_lacks_is_sent_again(
    org, server, cmd, tmp_path
):
    purge_captured_leads(org, cmd)
    server.creates.lose_answers = 1  # created, then the connection drops
    code, out, err = cmd("restore", "--module", "Leads", "--recreate", "--yes")
    assert code == 4 and err.count("\n") == 1, err
    assert "answer to Create Records was lost" in err and "3 of its 3 records were found" in err
    assert "Recreate: 3 recreated" in out and server.creates.count_created() == 3

    assert cmd("restore", "--module", "Leads", "--recreate", "--yes")[0] == 0
    assert server.creates.count_created() == 3 and len(server.creates.calls) == 1


def test_a_5xx_is_not_retried_blindly_and_the_same_command_completes_it(
    org, server, cmd, tmp_path
):
    purge_captured_leads(org, cmd)
    server.faults.add(r"/crm/v8/Leads$", "500")  # one 500, before anything is made
    code, out, err = cmd("restore", "--module", "Leads", "--recreate", "--yes")
    assert code == 4 and "0 of its 3 records were found in Zoho" in err, err
    assert server.creates.calls == []  # sent once: the transport did not repeat it
    assert {r[3] for r in audit(tmp_path)} == {"NOT_CREATED"}
    code, out, err = cmd("restore", "--module", "Leads", "--recreate", "--yes")
    assert code == 0 and "Recreate: 3 recreated" in out, err
    assert server.creates.count_created() == 3


def test_a_token_without_the_create_scope_gets_one_line_naming_it(org, server, cmd, tmp_path):
    purge_captured_leads(org, cmd)
    server.creates.refused_scopes.add("ZohoCRM.modules.Leads.CREATE")
    code, out, err = cmd("restore", "--module", "Leads", "--recreate", "--yes")
    assert code == 3 and err.count("\n") == 1 and "Traceback" not in err
    assert "ZohoCRM.modules.Leads.CREATE" in err
    assert {r[3] for r in audit(tmp_path)} == {"OAUTH_SCOPE_MISMATCH"}
    assert server.creates.count_created() == 0

    server.creates.refused_scopes.clear()  # granted: the same command recreates them
    code, out, _ = cmd("restore", "--module", "Leads", "--recreate", "--yes")
    assert code == 0 and "Recreate: 3 recreated" in out


def test_a_record_erased_on_request_is_never_recreated(org, server, cmd, tmp_path):
    ids = purge_captured_leads(org, cmd)
    assert cmd("forget", "--module", "Leads", "--ids", ids[0], "--yes")[0] == 0
    code, out, _ = cmd("restore", "--module", "Leads", "--recreate")
    assert "Would recreate 2 purged records" in out
    assert "Cannot recreate: 1 Leads erased on request (`zoho-deleted forget`)" in out
    code, out, err = cmd("restore", "--ids", ids[0], "--recreate", "--yes")
    assert code == 0 and "Nothing to recreate." in out, err
    assert server.creates.calls == []


def test_relink_points_related_records_that_still_exist_at_the_new_record(
    org, server, cmd, tmp_path, monkeypatch
):
    monkeypatch.setenv("SOURCES__ZOHO_CRM__RECORD_VALUES", '["Contacts"]')
    monkeypatch.setenv("SOURCES__ZOHO_CRM__RELATED_LISTS", '{"Contacts": {"Deals": ["Deal_Name"]}}')
    contact = live_record_id(1, 0)
    deal_fields = [Field("Deal_Name", "text", mandatory=True),
                   Field("Contact_Name", "lookup", lookup_module="Contacts")]  # fmt: skip
    org.live.define("Deals", deal_fields)
    deals = ["6001", "6002", "6003"]
    for rid in deals:
        org.live.put("Deals", {"id": rid, "Deal_Name": f"Deal {rid}", "Modified_Time": NOW,
                               "Contact_Name": {"name": "Person 0", "id": contact}})  # fmt: skip
    assert cmd("run")[0] == 0
    related = [{"id": d, "Deal_Name": f"Deal {d}"} for d in deals]
    org.add_related("Contacts", contact, "Deals", related)
    delete(org, "Contacts", contact, NOW - timedelta(minutes=5), name="Person 0")
    assert cmd("run")[0] == 0
    org.purge("Contacts", contact, PURGED_AT)
    del org.live.records["Deals"]["6003"]  # deleted since: not relinked
    assert cmd("run")[0] == 0

    code, out, _ = cmd("restore", "--ids", contact, "--recreate")
    assert "Links: 3 related records captured point at these records; --relink would point" in out
    code, out, err = cmd("restore", "--ids", contact, "--recreate", "--relink", "--yes")
    assert code == 0, err
    assert "Relink: 2 related records pointed at their new records, 0 failed (left alone: 1 " \
        "no longer in Zoho)" in out  # fmt: skip
    new_id = server.creates.created[0][1]["id"]
    for rid in deals[:2]:
        assert org.live.records["Deals"][rid]["Contact_Name"] == {"id": new_id}
    puts = [c for c in server.creates.calls if c.method == "PUT"]
    assert [(c.module, c.trigger, len(c.records)) for c in puts] == [("Deals", [], 2)]
    with analyst(tmp_path / DUCKDB_FILE) as db:
        assert db.sql(
            "SELECT module, old_id, new_id, field, code FROM zoho_crm_deleted.recreated_records "
            "WHERE action = 'relink' ORDER BY old_id"
        ).fetchall() == [("Deals", rid, new_id, "Contact_Name", "SUCCESS") for rid in deals[:2]]

    code, out, _ = cmd("restore", "--ids", contact, "--recreate", "--relink", "--yes")
    assert code == 0 and "2 relinked before" in out
    assert len([c for c in server.creates.calls if c.method == "PUT"]) == 1


def test_history_counts_recreated_records_in_events_incidents_and_status(
    org, server, cmd, tmp_path, monkeypatch
):
    monkeypatch.setenv("SOURCES__ZOHO_CRM__INCIDENT_THRESHOLD", "3")
    assert cmd("run")[0] == 0
    ids = [live_record_id(0, n) for n in range(3)]
    burst_of(org, ids)
    assert cmd("run")[0] == 0
    for rid in ids:
        org.purge("Leads", rid, PURGED_AT)
    assert cmd("run")[0] == 0
    code, out, err = cmd("restore", "--module", "Leads", "--recreate", "--yes")
    assert code == 0, out + err
    assert cmd("run")[0] == 0  # a run after: the events' new column and the analyst file

    made = {m["Email"]: m["id"] for _, m in server.creates.created}
    with analyst(tmp_path / DUCKDB_FILE) as db:
        assert db.sql(
            "SELECT id, new_id FROM zoho_crm_deleted.deletion_events WHERE event = 'recreated' "
            "ORDER BY id"
        ).fetchall() == [(rid, made[f"person{n}@example.com"]) for n, rid in enumerate(ids)]
    code, out, _ = cmd("incidents")
    assert "Leads: 3 records deleted by Patricia Boyle" in out
    assert "0 in the bin, 0 restored, 3 recreated" in out
    code, out, _ = cmd("status")
    assert "Recreated from captured values (restore --recreate): Leads 3" in out
    assert json.loads(cmd("status", "--json")[1])["recreated"] == {"Leads": 3}


def burst_of(org: Org, ids: List[str]) -> None:
    """The Leads `ids` deleted a minute apart by one user: an incident at threshold 3."""
    for n, rid in enumerate(ids):
        org.delete("Leads", rid, NOW - timedelta(minutes=10 - n), f"Person {n}", PATRICIA, PATRICIA)


def test_an_owner_no_longer_in_the_org_is_left_to_zoho_and_said(org, server, cmd, tmp_path):
    ids = purge_captured_leads(org, cmd, count=2)
    server.creates.gone_users.add("410888000000086001")  # the captured Owner has left
    code, out, err = cmd("restore", "--module", "Leads", "--recreate", "--yes")
    assert code == 0, err
    assert "Recreate: 2 recreated with new ids (each" in out
    assert "  2 of them without their captured Owner: no longer a user of the org" in out
    assert [len(c.records) for c in server.creates.calls] == [2, 2]
    assert all("Owner" not in record for _, record in server.creates.created)
    assert [r[3:5] for r in audit(tmp_path)] == [
        ("INVALID_DATA", "Owner"), ("SUCCESS", None), ("INVALID_DATA", "Owner"), ("SUCCESS", None)
    ]  # fmt: skip
    assert {r[1] for r in audit(tmp_path)} == set(ids)
