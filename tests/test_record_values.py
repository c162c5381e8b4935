"""Last known field values of live records (`record_values`), and the stand-in's Get Records."""

from __future__ import annotations

import json
import time
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
from pipelines.errors import malformed
from pipelines.run import load
from pipelines.status import describe, read_status
from sources.zoho_crm import values
from sources.zoho_crm.records import zoho_time
from zoho_standin import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, Org, StandinServer, routes
from zoho_standin.faults import REMOVE
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
    made = pipeline.destination
    result = run_once(server, pipeline, record_values=["Leads", "Contacts"])
    assert api_calls(server)["records"] == 2  # one listing page a module
    rows = query(
        pipeline,
        "SELECT id, email, annual_revenue, discount_rate, date_of_birth, last_call, "
        "email_opt_out, account_name__name, owner__id, score_formula, modified_time "
        f"FROM {DATASET_NAME}.values_leads ORDER BY id",
    )
    assert len(rows) == 3 and result.packages >= 2
    # the values loaded without dictionary compression; the pipeline is left as it was made
    assert pipeline.destination.config_params == made.config_params
    with pipeline.sql_client() as client:
        assert client.execute_sql("SELECT current_setting('disabled_compression_methods')") == [
            ("",)
        ]
    first = rows[0]
    assert first[0] == live_record_id(0, 0) and first[1] == "person0@example.com"
    assert first[2] == Decimal("12000.5") and first[3] == Decimal("0.125")
    assert first[4] == date(1980, 1, 1) and first[5].tzinfo is not None
    assert first[6] is False and first[7] == "Account 0" and first[8] == "410888000000086001"
    types = column_types(pipeline, "values_leads")
    assert types["annual_revenue"] == "decimal" and types["date_of_birth"] == "date"
    assert types["last_call"] == "timestamp" and types["email_opt_out"] == "bool"
    assert types["score_formula"] == "double" and types["field_values"] == "json"
    # multi-selects and subforms are JSON columns (lists), not child tables (see value_columns)
    assert types["tags_picked"] == "json" and types["line_items"] == "json"
    lists = query(
        pipeline, f"SELECT tags_picked, line_items FROM {DATASET_NAME}.values_leads ORDER BY id"
    )
    assert [json.loads(tags) for tags, _ in lists] == [[], ["Hot"], ["Hot", "Webinar"]]
    assert {item["Product"] for _, items in lists for item in json.loads(items)} == {"Widget"}
    assert not [t for t in pipeline.default_schema.tables if t.startswith("values_leads__")]
    assert query(pipeline, f"SELECT count(*) FROM {DATASET_NAME}.values_contacts") == [(3,)]


def test_incremental_runs_read_what_changed(org: Org, server: StandinServer,
                                            pipeline: dlt.Pipeline) -> None:  # fmt: skip
    run_once(server, pipeline, record_values=["Leads", "Contacts"])
    run_once(server, pipeline, record_values=["Leads", "Contacts"])
    calls = api_calls(server)  # one Get Records call a module; fields and modules remembered
    assert calls["records"] == 2 and "fields" not in calls and "modules" not in calls
    since = [h["If-Modified-Since"] for name, _, h in server.requests if name == "records"]
    assert len(since) == 2 and all(since)
    # the newest record read was a minute old: its second is closed, the next one is asked,
    # and Zoho answers 304 (nothing modified at or after it)
    newest = max(r["Modified_Time"] for r in org.live.records["Leads"].values())
    assert zoho_time(newest + timedelta(seconds=1)) in since
    assert server.statuses["records 304"] == 2

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


@pytest.mark.parametrize("warehouse", ["pipeline", "pg_pipeline"])
def test_values_tables_of_earlier_versions_keep_loading(
    org: Org, server: StandinServer, warehouse: str, request: pytest.FixtureRequest
) -> None:
    """Earlier versions loaded values from Python rows: dlt gave the table (and its staging
    copy) NOT NULL `_dlt_load_id` and `_dlt_id`, which Arrow rows do not carry."""
    if warehouse == "pg_pipeline" and not POSTGRES_URL:
        pytest.skip("no PostgreSQL server: set ZOHO_TEST_POSTGRES (see .ci/postgres.sh)")
    pipeline = request.getfixturevalue(warehouse)
    earlier = {"org": "default", "module": "Leads", "id": "L-old", "modified_time": NOW}
    earlier["email"] = "old@example.com"
    load(
        pipeline,
        dlt.resource(
            [earlier],
            name="values_leads",
            primary_key=("org", "id"),
            write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        ),
    )
    assert query(pipeline, f"SELECT count(_dlt_id) FROM {DATASET_NAME}.values_leads") == [(1,)]
    run_once(server, pipeline, record_values=["Leads"])
    edited = dict(org.live.records["Leads"][live_record_id(0, 1)])
    newest = max(r["Modified_Time"] for r in org.live.records["Leads"].values())
    edited.update(Email="edited@example.com", Modified_Time=newest + timedelta(minutes=1))
    org.live.put("Leads", edited)
    run_once(server, pipeline, record_values=["Leads"])  # an edit lands in the old table too
    rows = query(
        pipeline,
        f"SELECT id, email, _dlt_id IS NOT NULL, _dlt_load_id IS NOT NULL "
        f"FROM {DATASET_NAME}.values_leads ORDER BY id",
    )
    assert ("L-old", "old@example.com", True, True) in rows and len(rows) == 4
    emails = {row[0]: row[1] for row in rows}  # each value in its own column
    assert emails[live_record_id(0, 1)] == "edited@example.com"
    assert emails[live_record_id(0, 2)] == "person2@example.com"
    assert all(row[2] and row[3] for row in rows)  # dlt's row ids, as the table had them


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
            "  Leads: 1 deleted record with its last values, 1 deleted before its values "
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


def test_a_values_package_ends_at_its_bytes_whatever_load_chunk_rows_allows(
    org: Org, server: StandinServer, pipeline: dlt.Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package of wide records is cut by its bytes (PACKAGE_BYTES), not only its rows: here
    one page of two records reaches it, so six records land in three packages, in one run."""
    ids = [f"78{n:04d}" for n in range(6)]
    add_live_records(org.live, "Deals", ids, NOW)
    monkeypatch.setattr(values, "PACKAGE_BYTES", 1)
    args = {"record_values": ["Deals"], "per_page": 2, "load_chunk_rows": 100_000}
    result = run_once(server, pipeline, **args)
    assert api_calls(server)["records"] == 3
    assert result.packages == 1 + 3  # the lists, then a package per page of values
    landed = query(pipeline, f"SELECT id FROM {DATASET_NAME}.values_deals ORDER BY id")
    assert [i for (i,) in landed] == ids


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


def test_nothing_changed_is_one_call_answered_304_and_the_boundary_second_loses_nothing(
    org: Org, server: StandinServer, pipeline: dlt.Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass that read its newest record within SETTLE of that second asks for that second
    again (a record stamped with it may still come), so nothing is missed; once the second
    is closed, the next second is asked and a run with nothing changed is one 304."""
    now = datetime.now(UTC).replace(microsecond=0)
    add_live_records(org.live, "Deals", ["660001", "660002"], now + timedelta(minutes=1))
    run_once(server, pipeline, record_values=["Deals"])  # the newest is `now`: still open
    late = {**org.live.records["Deals"]["660002"], "id": "660003", "Last_Name": "Late"}
    org.live.put("Deals", late)  # stamped with the same second, after the first read
    run_once(server, pipeline, record_values=["Deals"])
    asked = [h["If-Modified-Since"] for name, _, h in server.requests if name == "records"]
    assert asked == [zoho_time(now)] and server.statuses["records 200"] == 1
    landed = query(pipeline, f"SELECT id FROM {DATASET_NAME}.values_deals ORDER BY id")
    assert [i for (i,) in landed] == ["660001", "660002", "660003"]  # none lost, none doubled
    monkeypatch.setattr(values, "SETTLE", timedelta(0))  # as if read 30 s after that second
    run_once(server, pipeline, record_values=["Deals"])  # reads the second again, closes it
    run_once(server, pipeline, record_values=["Deals"])
    asked = [h["If-Modified-Since"] for name, _, h in server.requests if name == "records"]
    assert asked == [zoho_time(now + timedelta(seconds=1))]
    assert dict(server.statuses) == {"records 304": 1} | {
        k: n for k, n in server.statuses.items() if not k.startswith("records")
    }
    assert query(pipeline, f"SELECT count(*) FROM {DATASET_NAME}.values_deals") == [(3,)]


BAD = live_record_id(0, 1)  # the second of Leads' three live records


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("id", REMOVE, "id missing is not a record id"),
        ("Modified_Time", REMOVE, "Modified_Time missing is not an ISO 8601 time"),
        ("Modified_Time", "last tuesday", 'Modified_Time "last tuesday" is not an ISO 8601'),
        ("Account_Name", "Acme", 'Account_Name "Acme" is not a lookup object'),
        ("Tags_Picked", "Hot", 'Tags_Picked "Hot" is not a list'),
        ("Email", {"primary": "a@b.c"}, 'Email {"primary": "a@b.c"} is not a single value'),
    ],
)
def test_a_malformed_value_record_is_set_aside_and_the_rest_lands(
    server: StandinServer,
    pipeline: dlt.Pipeline,
    field: str,
    value: Any,
    shown: str,
) -> None:
    server.faults.add(r"/crm/v8/Leads$", "corrupt", times=None, record=BAD, field=field,
                      value=value)  # fmt: skip
    result = run_once(server, pipeline, record_values=["Leads"])
    (line,) = result.rejected
    assert line.startswith(f"Leads {'(no id)' if field == 'id' else BAD} (record values): ")
    assert shown in line and "\n" not in line
    rows = query(pipeline, f"SELECT source, module, field FROM {DATASET_NAME}.rejected_records")
    assert rows == [("values", "Leads", field)]
    landed = query(pipeline, f"SELECT id FROM {DATASET_NAME}.values_leads ORDER BY id")
    assert [i for (i,) in landed] == [live_record_id(0, 0), live_record_id(0, 2)]
    # the mark stays at or below it: the next run reads it again, and it lands once whole
    server.faults.clear()
    again = run_once(server, pipeline, record_values=["Leads"])
    assert again.rejected == []
    landed = query(pipeline, f"SELECT id FROM {DATASET_NAME}.values_leads ORDER BY id")
    assert [i for (i,) in landed] == [live_record_id(0, n) for n in range(3)]
    # the command line's exit code for that first run: 1, naming rejected_records
    code, message = malformed(list(result.malformed_modules), result.rejected)
    assert code == 1 and "rejected_records" in message


@pytest.mark.parametrize("warehouse", ["pipeline", "pg_pipeline"])
def test_a_new_custom_field_becomes_a_new_column_and_older_rows_stay(
    org: Org, server: StandinServer, warehouse: str, request: pytest.FixtureRequest
) -> None:
    """A field added in Zoho after the first capture, listed among the others (not last):
    dlt adds its column at the end of the table; the rows land under their own columns."""
    if warehouse == "pg_pipeline" and not POSTGRES_URL:
        pytest.skip("no PostgreSQL server: set ZOHO_TEST_POSTGRES (see .ci/postgres.sh)")
    pipeline = request.getfixturevalue(warehouse)
    run_once(server, pipeline, record_values=["Leads"])
    org.live.define("Leads", [STANDARD_FIELDS[0], Field("Region", "text", custom_field=True),
                              *STANDARD_FIELDS[1:]])  # fmt: skip
    rid = live_record_id(0, 1)
    record = org.live.records["Leads"][rid]
    later = record["Modified_Time"] + timedelta(minutes=5)
    org.live.put("Leads", {**record, "Region": "EMEA", "Modified_Time": later})
    time.sleep(1.1)  # past reconcile_every: the fields are read again
    run_once(server, pipeline, record_values=["Leads"], reconcile_every="1")
    rows = query(
        pipeline,
        f"SELECT id, region, email, last_name FROM {DATASET_NAME}.values_leads ORDER BY id",
    )
    assert len(rows) == 3
    assert [r for r in rows if r[0] == rid] == [(rid, "EMEA", record["Email"], record["Last_Name"])]
    assert all(r[1] is None and r[2] for r in rows if r[0] != rid)  # older rows: no region
    org.live.define("Leads", list(STANDARD_FIELDS))  # and gone again: its column stays
    other = org.live.records["Leads"][live_record_id(0, 2)]
    org.live.put("Leads", {**other, "Email": "new@example.com", "Modified_Time": later})
    time.sleep(1.1)
    run_once(server, pipeline, record_values=["Leads"], reconcile_every="1")
    assert (other["id"], None, "new@example.com", other["Last_Name"]) in query(
        pipeline, f"SELECT id, region, email, last_name FROM {DATASET_NAME}.values_leads"
    )


def test_field_names_that_collide_with_our_columns_get_their_own(
    org: Org, server: StandinServer, pipeline: dlt.Pipeline
) -> None:
    """`Org`, `Module`, `Field_Values` normalize onto our own columns: each takes
    `field_<name>` instead (pinned: a later run keeps it), as does a field whose column another
    field already has; `field_values` keeps Zoho's API names."""
    clashing = [Field("Org", "text", custom_field=True), Field("Module", "picklist"),
                Field("Field_Values", "text", custom_field=True),
                Field("Field_Org", "text", custom_field=True)]  # fmt: skip
    org.live.define("Leads", [*STANDARD_FIELDS, *clashing])
    for record in list(org.live.records["Leads"].values()):
        org.live.put("Leads", {**record, "Org": "Acme Ltd", "Module": "Sales",
                               "Field_Values": "x", "Field_Org": "y"})  # fmt: skip
    run_once(server, pipeline, record_values=["Leads"])
    rid = live_record_id(0, 0)
    sql = (
        "SELECT org, module, id, field_org, field_module, field_field_values, field_field_org, "
        f"field_values FROM {DATASET_NAME}.values_leads WHERE id = '{rid}'"
    )
    ((org_, module, id_, field_org, field_module, field_field_values, field_field_org, raw),) = (
        query(pipeline, sql)
    )
    assert (org_, module, id_) == ("default", "Leads", rid)
    assert (field_org, field_module, field_field_values) == ("Acme Ltd", "Sales", "x")
    assert field_field_org == "y"  # `Field_Org` came after `Org` took `field_org`
    assert json.loads(raw)["Org"] == "Acme Ltd" and json.loads(raw)["Field_Values"] == "x"
    record = org.live.records["Leads"][rid]
    later = record["Modified_Time"] + timedelta(minutes=5)
    org.live.put("Leads", {**record, "Org": "Other", "Modified_Time": later})
    run_once(server, pipeline, record_values=["Leads"])
    assert query(pipeline, f"SELECT org, field_org FROM {DATASET_NAME}.values_leads "
                           f"WHERE id = '{rid}'") == [("default", "Other")]  # fmt: skip
