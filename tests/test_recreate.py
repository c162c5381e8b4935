"""`zoho-deleted restore --recreate`: purged records brought back from their last captured
values with Create Records, and the stand-in's Create and Update Records it runs against."""

from __future__ import annotations

from typing import Any, Dict, List

import requests
from conftest import NOW
from test_record_values import Zoho

from zoho_standin import Org, StandinServer
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
