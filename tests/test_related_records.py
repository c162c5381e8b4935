"""Related records of deleted records: fetched once per bin entry, kept after the parent goes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from conftest import DUCKDB_FILE, NOW, analyst, api_calls, delete, query, run_once, source_args
from test_cli import cli

from pipelines.errors import explain
from pipelines.run import run
from sources.zoho_crm import zoho_crm
from sources.zoho_crm.errors import ZohoConfigError
from sources.zoho_crm.related import RELATED_TABLE

DS = "zoho_crm_deleted"
OWNER = {"name": "Patricia Boyle", "id": "410888000000086001", "email": "p@example.com"}
RELATED = {
    "Leads": {"Campaigns": ["Owner", "Campaign_Name"], "Products": ["Product_Name"]},
    "Contacts": {"Deals": ["Deal_Name", "Amount"]},
}


def bin_lead(org, rid: str, at, campaigns: int = 2) -> None:
    delete(org, "Leads", rid, at)
    org.add_related(
        "Leads",
        rid,
        "Campaigns",
        [{"id": f"c{rid}{k}", "Owner": OWNER, "Campaign_Name": f"C{k}"} for k in range(campaigns)],
    )
    org.add_related("Leads", rid, "Products", [{"id": f"p{rid}", "Product_Name": "Widget"}])


def test_related_records_are_fetched_once_per_bin_entry_and_kept(org, server, pipeline):
    bin_lead(org, "101", NOW - timedelta(days=2))
    bin_lead(org, "102", NOW - timedelta(days=1), campaigns=1)
    delete(org, "Contacts", "201", NOW - timedelta(days=1))
    org.add_related("Contacts", "201", "Deals", [{"id": "d1", "Deal_Name": "Big", "Amount": 5.0}])

    first = run_once(server, pipeline, related_lists=RELATED)

    # 2 leads x 2 related lists + 1 contact x 1 related list.
    assert first.api_calls["related"] == 5
    assert first.row_counts["deleted_related_records"] == 3 + 2 + 1
    rows = query(
        pipeline,
        f"SELECT parent_id, related_list, id, campaign_name, owner__name, product_name, amount "
        f"FROM {DS}.deleted_related_records ORDER BY id",
    )
    assert ("101", "Campaigns", "c1010", "C0", "Patricia Boyle", None, None) in rows
    assert ("101", "Products", "p101", None, None, "Widget", None) in rows
    assert ("201", "Deals", "d1", None, None, None, 5.0) in rows

    # Nothing new in the bin: no related calls at all.
    second = run_once(server, pipeline, related_lists=RELATED)
    assert "related" not in second.api_calls and "related" not in api_calls(server)

    # One new bin entry: one call per configured related list of its module, no more.
    bin_lead(org, "103", NOW - timedelta(minutes=5))
    org.purge("Leads", "101", NOW - timedelta(minutes=1))  # the parent leaves the bin
    third = run_once(server, pipeline, related_lists=RELATED)
    assert third.api_calls["related"] == 2
    kept = query(
        pipeline,
        f"SELECT count(*) FROM {DS}.deleted_related_records WHERE parent_id = '101'",
    )
    assert kept == [(3,)]  # captured while 101 was in the bin; kept after it was purged
    keys = query(
        pipeline,
        f"SELECT count(*), count(DISTINCT (parent_module, parent_id, related_list, id)) "
        f"FROM {DS}.deleted_related_records",
    )
    assert keys == [(9, 9)]


def test_discovery_finds_lookup_related_lists_and_their_fields(org, server, pipeline):
    bin_lead(org, "301", NOW - timedelta(hours=3))
    result = run_once(server, pipeline, discover_related_lists=True)
    assert result.api_calls["metadata"] >= 1
    # Campaigns and Products are lookups; Tags (multi-select lookup) is left out.
    lists = query(pipeline, f"SELECT DISTINCT related_list FROM {DS}.deleted_related_records")
    assert sorted(lists) == [("Campaigns",), ("Products",)]
    requested = [p for _, p, _ in server.requests if "/deleted/301/" in p]
    assert all("fields=" in p for p in requested) and not any("/Tags" in p for p in requested)


def test_discovered_related_lists_are_remembered_so_building_the_source_calls_no_one(
    org, server, pipeline
):
    bin_lead(org, "301", NOW - timedelta(hours=3))
    first = run_once(server, pipeline, discover_related_lists=True)
    assert first.api_calls["metadata"] >= 3  # the related lists, and their modules' fields

    server.reset_counts()  # the pipeline is active: the source reads its state
    source = zoho_crm(**source_args(server, discover_related_lists=True))
    assert dict(server.calls) == {}  # modules and related lists remembered: no call, no token
    assert RELATED_TABLE in source.resources

    bin_lead(org, "302", NOW - timedelta(hours=2))
    second = run_once(server, pipeline, discover_related_lists=True)
    assert "metadata" not in second.api_calls and second.api_calls["related"] == 2
    lists = query(pipeline, f"SELECT DISTINCT related_list FROM {DS}.deleted_related_records")
    assert sorted(lists) == [("Campaigns",), ("Products",)]

    server.reset_counts()  # other modules: their related lists are discovered again
    zoho_crm(**source_args(server, modules=["Leads"], discover_related_lists=True))
    assert server.calls["related_lists"] == 1


def test_a_multiselect_lookup_is_refused_before_anything_loads(org, server, pipeline):
    bin_lead(org, "401", NOW - timedelta(hours=3))
    with pytest.raises(Exception) as raised:
        run(pipeline, **source_args(server, related_lists={"Leads": {"Tags": ["Name"]}}))
    code, message = explain(raised.value)
    assert code == 2 and "related_lists.Leads.Tags" in message and "Campaigns, Products" in message
    assert loaded_tables(pipeline) == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ({"related_lists": "auto"}, "write discover_related_lists = true instead"),
        (
            {"related_lists": RELATED, "discover_related_lists": True},
            "discover_related_lists is true and related_lists names lists too",
        ),
    ],
)
def test_discovery_is_a_switch_of_its_own(server, pipeline, args, words):
    with pytest.raises(ZohoConfigError, match=words):
        run(pipeline, **source_args(server, **args))
    assert api_calls(server) == {}


def test_an_empty_field_list_is_refused_before_any_call(org, server, pipeline):
    with pytest.raises(ZohoConfigError, match="related_lists.Leads.Campaigns has no fields"):
        run(pipeline, **source_args(server, related_lists={"Leads": {"Campaigns": []}}))
    assert api_calls(server) == {}


def loaded_tables(pipeline) -> list:
    with pipeline.sql_client() as client:
        return [
            t
            for t in ("deleted_records", "recycle_bin")
            if client.has_dataset() and _has(client, t)
        ]


def _has(client, table: str) -> bool:
    return bool(
        client.execute_sql(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            DS,
            table,
        )
    )


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("403-permissions", "NO_PERMISSION"),
        ("403-wrapped", "NO_PERMISSION"),
        ("scope", "OAUTH_SCOPE_MISMATCH"),
        ("400-authorization", "AUTHORIZATION_FAILED"),
    ],
)
def test_a_refusal_on_related_records_fails_only_that_list_and_forgets_no_entry(
    org, server, tmp_path, kind, code
):
    for n in range(3):
        bin_lead(org, f"7{n}", NOW - timedelta(days=1, minutes=n))
    delete(org, "Contacts", "801", NOW - timedelta(days=1))
    org.add_related("Contacts", "801", "Deals", [{"id": "d8", "Deal_Name": "Big", "Amount": 1.0}])
    env = {"SOURCES__ZOHO_CRM__RELATED_LISTS": json.dumps(RELATED)}
    server.faults.add(r"/Leads/deleted/\d+/Campaigns$", kind, times=None)

    refused = cli(server, tmp_path, "run", **env)

    assert refused.returncode == 1, refused.stderr
    assert f"FAILED related list Leads.Campaigns: {code}" in refused.stdout
    assert "Traceback" not in refused.stderr and refused.stderr.count("\n") == 1
    with analyst(tmp_path / DUCKDB_FILE) as db:
        assert db.sql(f"SELECT count(*) FROM {DS}.deleted_records").fetchall() == [(4,)]
        lists = db.sql(
            f"SELECT related_list, count(*) FROM {DS}.deleted_related_records "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert lists == [("Deals", 1), ("Products", 3)]  # every other list of every entry
    assert server.calls["related"] == 4
    assert 1 <= server.calls["fault"] <= 3  # the list is dropped at its first refusal

    server.faults.clear()  # allowed now: the entries refused before are fetched, nothing else
    server.reset_counts()
    again = cli(server, tmp_path, "run", **env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert server.calls["related"] == 3
    with analyst(tmp_path / DUCKDB_FILE) as db:
        campaigns = db.sql(
            f"SELECT count(DISTINCT parent_id) FROM {DS}.deleted_related_records "
            "WHERE related_list = 'Campaigns'"
        ).fetchall()
    assert campaigns == [(3,)]


@pytest.mark.parametrize("kind", ["purge-parent", "restore-parent", "204"])
def test_a_parent_gone_before_its_related_call_is_skipped_not_an_error(
    org, server, pipeline, kind
):
    bin_lead(org, "901", NOW - timedelta(days=2))
    bin_lead(org, "902", NOW - timedelta(days=1))
    server.faults.add(r"/Leads/deleted/901/Campaigns$", kind, times=1)

    first = run_once(server, pipeline, related_lists=RELATED)

    assert first.failed_modules == {} and first.refused_lists == {}
    assert first.related_backlog == 0
    fetched = query(
        pipeline,
        f"SELECT parent_id, related_list, outcome FROM {DS}.related_fetches ORDER BY 1, 2",
    )
    gone = "fetched" if kind == "204" else "gone"  # a 204 may also mean "none related"
    assert ("901", "Campaigns", gone) in fetched
    assert ("902", "Campaigns", "fetched") in fetched and ("902", "Products", "fetched") in fetched
    # never asked for again
    second = run_once(server, pipeline, related_lists=RELATED)
    assert "related" not in second.api_calls
