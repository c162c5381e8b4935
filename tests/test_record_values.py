"""Last known field values of live records (`record_values`), and the stand-in's Get Records."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Optional

import pytest
import requests

from tests.conftest import NOW, delete
from zoho_standin import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, Org, StandinServer, routes
from zoho_standin.records import STANDARD_FIELDS
from zoho_standin.seed import live_record_id


class Zoho:
    """Plain HTTP calls to the stand-in, as Zoho's API pages write them."""

    def __init__(self, server: StandinServer) -> None:
        self.url = server.url
        token = requests.post(
            f"{server.url}/oauth/v2/token",
            data={
                "grant_type": "refresh_token",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "refresh_token": REFRESH_TOKEN,
            },
            timeout=5,
        ).json()["access_token"]
        self.auth = {"Authorization": f"Zoho-oauthtoken {token}"}

    def get(self, path: str, since: Optional[str] = None, **params: Any) -> requests.Response:
        headers = {**self.auth, **({"If-Modified-Since": since} if since else {})}
        return requests.get(f"{self.url}/crm/v8/{path}", params=params, headers=headers, timeout=5)


def test_standin_get_records_as_zoho_answers(org: Org, server: StandinServer) -> None:
    zoho = Zoho(server)
    missing = zoho.get("Leads")
    assert missing.status_code == 400 and missing.json()["code"] == "REQUIRED_PARAM_MISSING"
    too_many = zoho.get("Leads", fields=",".join(f"F{n}" for n in range(51)))
    assert too_many.status_code == 400 and too_many.json()["code"] == "LIMIT_EXCEEDED"
    unknown = zoho.get("Leads", fields="Email,Bogus")
    assert unknown.json() == {
        "code": "INVALID_DATA",
        "details": {"api_name": "Bogus"},
        "message": "the field name given seems to be invalid",
        "status": "error",
    }
    body = zoho.get("Leads", fields="Email,Modified_Time", sort_by="Modified_Time",
                    sort_order="asc").json()  # fmt: skip
    times = [r["Modified_Time"] for r in body["data"]]
    assert times == sorted(times) and len(times) == 3
    assert set(body["data"][0]) == {"id", "Email", "Modified_Time"}
    assert zoho.get("Leads", since=times[-1], fields="Email").json()["data"][0]["id"] == (
        live_record_id(0, 2)
    )
    nothing = zoho.get("Leads", since=(NOW + timedelta(hours=1)).isoformat(), fields="Email")
    assert nothing.status_code == 304 and nothing.content == b""
    fields = zoho.get("settings/fields", module="Leads").json()["fields"]
    assert {f["data_type"] for f in fields} >= {
        "text", "email", "phone", "picklist", "multiselectpicklist", "date", "datetime",
        "currency", "decimal", "boolean", "lookup", "ownerlookup", "subform", "formula",
        "autonumber",
    }  # fmt: skip
    # a deleted record leaves the live records for the bin
    delete(org, "Leads", live_record_id(0, 0), NOW)
    ids = [r["id"] for r in zoho.get("Leads", fields="Email").json()["data"]]
    assert live_record_id(0, 0) not in ids and len(ids) == 2


def test_standin_listing_cap(
    org: Org, server: StandinServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past `page`'s 2,000 records only `page_token` reads on, up to the listing's cap (100,000;
    5 here): the page that reaches it says more records, a token beyond it is refused."""
    monkeypatch.setattr(routes, "MAX_LISTING", 5)
    org.live.define("Deals", STANDARD_FIELDS)
    for n in range(8):
        org.live.put("Deals", {"id": f"9{n:03d}", "Modified_Time": NOW - timedelta(hours=n)})
    zoho = Zoho(server)
    first = zoho.get("Deals", fields="Modified_Time", per_page=3).json()
    assert first["info"]["more_records"] and first["info"]["next_page_token"]
    second = zoho.get("Deals", fields="Modified_Time", per_page=3,
                      page_token=first["info"]["next_page_token"]).json()  # fmt: skip
    assert second["info"]["count"] == 2 and second["info"]["more_records"]
    beyond = zoho.get("Deals", fields="Modified_Time", per_page=3,
                      page_token=second["info"]["next_page_token"])  # fmt: skip
    assert beyond.status_code == 400 and beyond.json()["code"] == "LIMIT_REACHED"
