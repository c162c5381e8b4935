"""Last known field values of live records (`record_values`), and the stand-in's Get Records."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List, Optional
from urllib.parse import parse_qs, urlsplit

import dlt
import pytest
import requests
from conftest import DATASET_NAME, NOW, api_calls, delete, env_for, query, run_once
from test_postgres import URL as POSTGRES_URL
from test_postgres import pg_pipeline  # noqa: F401 - a fixture

from pipelines.cli import main
from pipelines.status import describe, read_status
from zoho_standin import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, Org, StandinServer, routes
from zoho_standin.records import ORG_OFFSET, STANDARD_FIELDS, Field, add_live_records
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
    later = datetime.now(UTC) + timedelta(hours=1)  # after every seeded record
    nothing = zoho.get("Leads", since=later.isoformat(), fields="Email")
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


def column_types(pipeline: dlt.Pipeline, table: str) -> Dict[str, str]:
    return {
        name: column.get("data_type")
        for name, column in pipeline.default_schema.get_table_columns(table).items()
    }


def test_first_run_captures_values_typed_as_metadata_says(
    server: StandinServer, pipeline: dlt.Pipeline
) -> None:
    result = run_once(server, pipeline, record_values=["Leads", "Contacts"])
    assert api_calls(server)["records"] == 2  # one listing page a module
    rows = query(
        pipeline,
        "SELECT id, email, annual_revenue, discount_rate, date_of_birth, last_call, "
        "email_opt_out, account_name__name, owner__id, score_formula, modified_time "
        f"FROM {DATASET_NAME}.values_leads ORDER BY id",
    )
    assert len(rows) == 3 and result.packages >= 2
    first = rows[0]
    assert first[0] == live_record_id(0, 0) and first[1] == "person0@example.com"
    assert first[2] == Decimal("12000.5") and first[3] == Decimal("0.125")
    assert first[4] == date(1980, 1, 1) and first[5].tzinfo is not None
    assert first[6] is False and first[7] == "Account 0" and first[8] == "410888000000086001"
    types = column_types(pipeline, "values_leads")
    assert types["annual_revenue"] == "decimal" and types["date_of_birth"] == "date"
    assert types["last_call"] == "timestamp" and types["email_opt_out"] == "bool"
    assert types["score_formula"] == "double" and types["field_values"] == "json"
    # multi-selects and subforms are child tables
    tags = query(pipeline, f"SELECT count(*) FROM {DATASET_NAME}.values_leads__tags_picked")
    items = query(pipeline, f"SELECT product FROM {DATASET_NAME}.values_leads__line_items")
    assert tags == [(1 + 2,)] and {p for (p,) in items} == {"Widget"}
    assert query(pipeline, f"SELECT count(*) FROM {DATASET_NAME}.values_contacts") == [(3,)]


def test_incremental_runs_read_what_changed(org: Org, server: StandinServer,
                                            pipeline: dlt.Pipeline) -> None:  # fmt: skip
    run_once(server, pipeline, record_values=["Leads", "Contacts"])
    run_once(server, pipeline, record_values=["Leads", "Contacts"])
    calls = api_calls(server)  # one Get Records call a module; fields and modules remembered
    assert calls["records"] == 2 and "fields" not in calls and "modules" not in calls
    since = [h["If-Modified-Since"] for name, _, h in server.requests if name == "records"]
    assert len(since) == 2 and all(since)

    changed = dict(org.live.records["Leads"][live_record_id(0, 1)])
    # later than every record read (seeded a minute apart up to a minute ago)
    changed.update(Email="changed@example.com", Modified_Time=changed["Modified_Time"] +
                   timedelta(minutes=5))  # fmt: skip
    org.live.put("Leads", changed)
    run_once(server, pipeline, record_values=["Leads", "Contacts"])
    assert api_calls(server)["records"] == 2
    email = query(
        pipeline,
        f"SELECT email, field_values FROM {DATASET_NAME}.values_leads "
        f"WHERE id = '{live_record_id(0, 1)}'",
    )
    assert email[0][0] == "changed@example.com"
    assert json.loads(email[0][1])["Email"] == "changed@example.com"
    assert query(pipeline, f"SELECT count(*) FROM {DATASET_NAME}.values_leads") == [(3,)]


def test_more_than_50_fields_are_read_in_groups_joined_by_id(
    org: Org, server: StandinServer, pipeline: dlt.Pipeline
) -> None:
    custom = [Field(f"Custom_{n:02d}", "text", custom_field=True) for n in range(60)]
    org.live.define("Contacts", [*STANDARD_FIELDS, *custom])
    for rid, record in org.live.records["Contacts"].items():
        org.live.put(
            "Contacts", {**record, **{f.api_name: f"{f.api_name} of {rid}" for f in custom}}
        )
    run_once(server, pipeline, record_values=["Contacts"])
    asked = [parse_qs(urlsplit(p).query) for name, p, _ in server.requests if name == "records"]
    assert len(asked) == 2  # the listing (first group) and the second group by ids
    groups = [q["fields"][0].split(",") for q in asked]
    assert all(len(g) <= 50 and "Modified_Time" in g for g in groups)
    assert len(set(groups[0]) | set(groups[1])) == len(STANDARD_FIELDS) + 60
    assert "ids" in asked[1] and "If-Modified-Since" not in server.requests[-1][2]
    rid = live_record_id(1, 2)
    rows = query(
        pipeline,
        f"SELECT custom_00, custom_59, email FROM {DATASET_NAME}.values_contacts "
        f"WHERE id = '{rid}'",
    )
    assert rows == [(f"Custom_00 of {rid}", f"Custom_59 of {rid}", "person2@example.com")]


@pytest.mark.parametrize("refused", ["Phone", "Custom_55"])  # in the listing's group, a later one
def test_a_field_zoho_refuses_is_dropped_with_a_warning(
    org: Org,
    server: StandinServer,
    pipeline: dlt.Pipeline,
    caplog: pytest.LogCaptureFixture,
    refused: str,
) -> None:
    custom = [Field(f"Custom_{n:02d}", "text", custom_field=True) for n in range(60)]
    fields = [replace(f, refused=f.api_name == refused) for f in [*STANDARD_FIELDS, *custom]]
    org.live.define("Leads", fields)
    run_once(server, pipeline, record_values=["Leads"])
    warned = [r.getMessage() for r in caplog.records if f"Leads.{refused}" in r.getMessage()]
    assert len(warned) == 1 and "\n" not in warned[0]
    columns = pipeline.default_schema.get_table_columns("values_leads")
    assert refused.lower() not in columns and "email" in columns and "custom_59" in columns
    assert query(pipeline, f"SELECT count(*) FROM {DATASET_NAME}.values_leads") == [(3,)]


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"SOURCES__ZOHO_CRM__RECORD_VALUES": '["Leads", "Leadz"]'}, ["'Leadz'", "Leads"]),
        (
            {
                "SOURCES__ZOHO_CRM__RECORD_VALUES": '["Leads"]',
                "SOURCES__ZOHO_CRM__RECORD_VALUE_FIELDS": '{"Leads": ["Email", "Emial"]}',
            },
            ["record_value_fields.Leads", "'Emial'"],
        ),
    ],
)
def test_a_misspelt_name_exits_2_naming_it(
    server: StandinServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    env: Dict[str, str],
    words: List[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for key, value in {**env_for(server, tmp_path), **env}.items():
        monkeypatch.setenv(key, value)
    assert main(["run"]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("zoho-deleted: ") and "\n" not in line
    for word in words:
        assert word in line


def test_a_record_edited_between_its_groups_calls_lands_whole_in_its_later_version(
    org: Org, server: StandinServer, pipeline: dlt.Pipeline
) -> None:
    custom = [Field(f"Custom_{n:02d}", "text", custom_field=True) for n in range(60)]
    org.live.define("Contacts", [*STANDARD_FIELDS, *custom])
    server.faults.add(r"/crm/v8/Contacts$", "edit-records", query="(^|&)ids=")
    run_once(server, pipeline, record_values=["Contacts"])
    rows = query(
        pipeline,
        f"SELECT last_name, field_values FROM {DATASET_NAME}.values_contacts ORDER BY id",
    )
    assert [name for name, _ in rows] == [f"Person {n} (edited)" for n in range(3)]
    edited = org.live.records["Contacts"][live_record_id(1, 0)]["Modified_Time"]
    assert all(
        json.loads(values)["Modified_Time"] == edited.astimezone(ORG_OFFSET).isoformat()
        for _, values in rows
    )


def test_a_pass_past_the_listing_cap_goes_on_from_the_last_time_read(
    org: Org, server: StandinServer, pipeline: dlt.Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Zoho lists at most 100,000 records (5 here): the pass goes on with a listing from the
    last Modified_Time read, nothing missed at that second."""
    monkeypatch.setattr(routes, "MAX_LISTING", 5)
    ids = [f"88{n:04d}" for n in range(8)]
    add_live_records(org.live, "Deals", ids, NOW)
    run_once(server, pipeline, record_values=["Deals"], per_page=2)
    asked = [h.get("If-Modified-Since") for name, _, h in server.requests if name == "records"]
    assert asked[:3] == [None] * 3 and asked[3:] == [asked[3]] * 2 and asked[3]
    assert api_calls(server)["error"] == 1  # the page past the cap
    landed = query(pipeline, f"SELECT id FROM {DATASET_NAME}.values_deals ORDER BY id")
    assert [i for (i,) in landed] == ids


def test_a_module_zoho_refuses_fails_alone(server: StandinServer, pipeline: dlt.Pipeline) -> None:
    server.faults.add(r"/crm/v8/Leads$", "403", times=None)
    result = run_once(server, pipeline, record_values=["Leads", "Contacts"])
    assert result.failed_modules["Leads values"].code == "NO_PERMISSION"
    assert query(pipeline, f"SELECT count(*) FROM {DATASET_NAME}.values_contacts") == [(3,)]


@pytest.mark.parametrize("warehouse", ["pipeline", "pg_pipeline"])
def test_a_record_deleted_after_capture_keeps_its_last_values(
    org: Org, server: StandinServer, warehouse: str, request: pytest.FixtureRequest
) -> None:
    """On DuckDB and PostgreSQL alike (the latter when ZOHO_TEST_POSTGRES names a server)."""
    if warehouse == "pg_pipeline" and not POSTGRES_URL:
        pytest.skip("no PostgreSQL server: set ZOHO_TEST_POSTGRES (see .ci/postgres.sh)")
    pipeline = request.getfixturevalue(warehouse)
    run_once(server, pipeline, record_values=["Leads"])
    rid = live_record_id(0, 1)
    captured = org.live.records["Leads"][rid]["Modified_Time"]
    delete(org, "Leads", rid, NOW, name="Person 1")
    run_once(server, pipeline, record_values=["Leads"])
    org.purge("Leads", rid, NOW + timedelta(seconds=1))
    run_once(server, pipeline, record_values=["Leads"])
    rows = query(
        pipeline,
        'SELECT org, module, id, display_name, type, deleted_time, values_modified_time, "values" '
        f"FROM {DATASET_NAME}.deleted_record_values",
    )
    assert len(rows) == 1
    org_, module, id_, _, kind, deleted_time, modified, values = rows[0]
    assert (org_, module, id_, kind) == ("default", "Leads", rid, "permanent")
    assert deleted_time == NOW + timedelta(seconds=1) and modified == captured
    values = values if isinstance(values, dict) else json.loads(values)  # jsonb: a dict
    assert values["Email"] == "person1@example.com" and values["Annual_Revenue"] == 12001.5
    assert values["Owner"] == {"name": "Patricia Boyle", "id": "410888000000086001"}
    assert query(pipeline, f"SELECT count(*) FROM {DATASET_NAME}.values_leads") == [(3,)]


def test_status_shows_values_coverage_per_module(
    org: Org, server: StandinServer, pipeline: dlt.Pipeline
) -> None:
    delete(org, "Leads", "100", NOW - timedelta(days=1))  # before any capture: values lost
    run_once(server, pipeline, record_values=["Leads"])
    delete(org, "Leads", live_record_id(0, 2), NOW)
    run_once(server, pipeline, record_values=["Leads"])
    status = read_status(pipeline)
    leads = status.record_values["Leads"]
    assert (leads["with_values"], leads["deleted_before_capture"]) == (1, 1)
    assert leads["first_pass_complete"] and leads["pass"] is None
    assert any(
        line.startswith(
            "  Leads: 1 deleted records with their last values, 1 deleted before their values "
            "were captured; first pass complete"
        )
        for line in describe(status)
    )


def test_a_long_first_pass_goes_on_over_packages_and_runs(
    org: Org, server: StandinServer, pipeline: dlt.Pipeline
) -> None:
    """Two pages a package (load_chunk_rows), three calls a run (values_calls_per_run): the
    pass goes on where the last run stopped, nothing read twice but its boundary."""
    ids = [f"77{n:04d}" for n in range(11)]
    add_live_records(org.live, "Deals", ids, NOW)
    args = {"record_values": ["Deals"], "per_page": 2, "load_chunk_rows": 4}
    first = run_once(server, pipeline, values_calls_per_run=3, **args)
    assert api_calls(server)["records"] == 3
    assert first.packages >= 3  # the lists, then two packages of values
    landed = query(pipeline, f"SELECT id FROM {DATASET_NAME}.values_deals ORDER BY id")
    assert [i for (i,) in landed] == ids[:6]
    run_once(server, pipeline, values_calls_per_run=3, **args)
    asked = [parse_qs(urlsplit(p).query) for name, p, _ in server.requests if name == "records"]
    assert "page_token" in asked[0]  # on from where the first run stopped, not from the top
    landed = query(pipeline, f"SELECT id FROM {DATASET_NAME}.values_deals ORDER BY id")
    assert [i for (i,) in landed] == ids
    run_once(server, pipeline, values_calls_per_run=3, **args)  # the pass is complete
    since = [h.get("If-Modified-Since") for name, _, h in server.requests if name == "records"]
    assert len(since) == 1 and since[0]


def test_a_value_not_of_its_fields_type_lands_as_null_and_stays_in_field_values(
    org: Org, server: StandinServer, pipeline: dlt.Pipeline
) -> None:
    rid = live_record_id(0, 0)
    record = org.live.records["Leads"][rid]
    org.live.put("Leads", {**record, "Date_of_Birth": "31/02/1990", "Annual_Revenue": "n/a"})
    run_once(server, pipeline, record_values=["Leads"])
    rows = query(
        pipeline,
        f"SELECT date_of_birth, annual_revenue, field_values FROM {DATASET_NAME}.values_leads "
        f"WHERE id = '{rid}'",
    )
    born, revenue, values = rows[0]
    assert born is None and revenue is None
    assert json.loads(values)["Date_of_Birth"] == "31/02/1990"
    assert query(pipeline, f"SELECT count(*) FROM {DATASET_NAME}.values_leads") == [(3,)]
