"""The stand-in serves real Zoho's shapes on demand (the fault kinds in zoho_standin/faults.py),
so the pipeline's tests can meet them: checked here over HTTP, as a client sees them."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from conftest import NOW, delete

from zoho_standin import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN

RELATED = "/crm/v8/Leads/deleted/L1/Campaigns"


@pytest.fixture
def zoho(org, server):
    """GET a stand-in path with a fresh access token; L1 is in the bin with one campaign."""
    delete(org, "Leads", "L1", NOW - timedelta(days=1))
    org.add_related("Leads", "L1", "Campaigns", [{"id": "C1", "Campaign_Name": "Spring"}])
    grant = {
        "grant_type": "refresh_token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
    }
    token = requests.post(f"{server.url}/oauth/v2/token", data=grant, timeout=5).json()

    def get(path: str, **params: str) -> requests.Response:
        headers = {"Authorization": f"Zoho-oauthtoken {token['access_token']}"}
        return requests.get(server.url + path, params=params, headers=headers, timeout=5)

    return get


@pytest.mark.parametrize(
    ("kind", "status", "body"),
    [
        (
            "403-wrapped",
            403,
            {
                "data": [
                    {
                        "code": "NO_PERMISSION",
                        "details": {"permissions": ["Crm_Implied_View_Leads"]},
                        "message": "permission denied",
                        "status": "error",
                    }
                ]
            },
        ),
        (
            "404-gone",
            404,
            {
                "code": "INVALID_DATA",
                "details": {},
                "message": "The record does not exist",
                "status": "error",
            },
        ),
        ("400-invalid-id", 400, None),
        ("400-authorization", 400, None),
        ("scope", 401, None),
        ("403-permissions", 403, None),
    ],
)
def test_error_kinds_answer_zohos_json_on_a_related_records_path(server, zoho, kind, status, body):
    assert zoho(RELATED, fields="Campaign_Name").status_code == 200  # no fault: the records
    server.faults.add(r"/Leads/deleted/[^/]+/Campaigns$", kind)  # any parent

    response = zoho(RELATED, fields="Campaign_Name")

    assert response.status_code == status
    if body is not None:
        assert response.json() == body
    assert zoho(RELATED, fields="Campaign_Name").status_code == 200  # spent once


def test_parent_leaving_the_bin_before_its_related_call(org, server, zoho):
    server.faults.add(r"/Leads/deleted/L1/Campaigns$", "purge-parent")
    gone = zoho(RELATED, fields="Campaign_Name")
    assert gone.status_code == 404 and gone.json()["message"] == "The record does not exist"
    assert org.entry("Leads", "L1").type == "permanent"  # purged, as Zoho would have

    delete(org, "Leads", "L2", NOW - timedelta(hours=1))
    server.faults.add(r"/Leads/deleted/L2/Campaigns$", "restore-parent")
    restored = zoho("/crm/v8/Leads/deleted/L2/Campaigns", fields="Campaign_Name")
    assert restored.status_code == 400 and "seems to be invalid" in restored.json()["message"]
    assert org.entry("Leads", "L2") is None  # restored: in no deleted list


def test_a_plain_204_has_no_body_and_no_content_type(server, zoho):
    server.faults.add(r"/Leads/deleted/L1/Campaigns$", "204")
    response = zoho(RELATED, fields="Campaign_Name")
    assert response.status_code == 204 and response.content == b""
    assert "Content-Type" not in response.headers


def test_malformed_answers_on_demand(org, server, zoho):
    delete(org, "Leads", "L2", NOW - timedelta(hours=1))
    server.faults.add(r"/Leads/deleted$", "corrupt", record="L1", field="deleted_time", value=7)
    server.faults.add(r"/Leads/deleted$", "corrupt", record="L2", field="id")
    server.faults.add(r"/Leads/deleted$", "no-info")
    server.faults.add(r"/settings/recycle_bin$", "data-not-list")
    server.faults.add(r"/settings/recycle_bin$", "info-not-object")

    corrupted = zoho("/crm/v8/Leads/deleted").json()
    assert [e.get("deleted_time") for e in corrupted["data"]][1] == 7 and "info" in corrupted
    missing_id = zoho("/crm/v8/Leads/deleted").json()["data"][0]
    assert "id" not in missing_id and missing_id["display_name"] == "Name L2"
    assert "info" not in zoho("/crm/v8/Leads/deleted").json()
    assert zoho("/crm/v8/settings/recycle_bin").json()["recycle_bin"] == {"count": 2}
    assert zoho("/crm/v8/settings/recycle_bin").json()["info"] == "more records follow"
    whole = zoho("/crm/v8/Leads/deleted").json()  # each spent once
    assert [e["id"] for e in whole["data"]] == ["L2", "L1"]
    assert whole["info"]["more_records"] is False
