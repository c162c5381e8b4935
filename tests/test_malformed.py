"""Answers Zoho sends malformed: never loaded silently in part, never blocking the org.

A malformed entry is set aside in `rejected_records`, named in the run's output and counted by
`status`; everything else lands, later runs go on past it and read it again, and it lands once
Zoho sends it whole. A malformed page fails its module alone, with one line saying what was
wrong. A list answer without `info` is read on by its length.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from conftest import NOW, delete, env_for, query, run_once

from pipelines.cli import main
from pipelines.sql import query_rows
from pipelines.status import read_status
from sources.zoho_crm.records import zoho_time
from zoho_standin.faults import REMOVE

DS = "zoho_crm_deleted"
LEADS, CONTACTS = 450, 5  # Leads fills three pages (200, 200, 50)
BAD = "L00100"  # on the first page, newest first; L00101 follows it


def seed(org) -> None:
    for n in range(LEADS):
        delete(org, "Leads", f"L{n:05d}", NOW - minutes_before(n))
    for n in range(CONTACTS):
        delete(org, "Contacts", f"C{n:05d}", NOW - minutes_before(n))


def minutes_before(n: int) -> timedelta:
    """Deletions 11 minutes apart: no burst, so no mass-deletion incident."""
    return timedelta(minutes=11 * n + 1)


def corrupt(server, where: str, field: str, value) -> None:
    """Zoho sends BAD's `field` as `value` (REMOVE: without it) until the faults are cleared."""
    server.faults.add(where, "corrupt", times=None, record=BAD, field=field, value=value)


def loaded(pipeline, table: str = "deleted_records") -> dict:
    column = "module" if table == "deleted_records" else "module__api_name"
    return dict(query(pipeline, f"SELECT {column}, count(*) FROM {DS}.{table} GROUP BY 1"))


def rejected(pipeline) -> list:
    """The rows of rejected_records (none before the table exists)."""
    sql = "SELECT source, module, id, field, value, reason, entry FROM {ds}.rejected_records"
    return query_rows(pipeline, sql)


def leads_since(server) -> list:
    """The If-Modified-Since of each /Leads/deleted call of the last run."""
    return [h.get("If-Modified-Since") for _, p, h in server.requests if "/Leads/deleted" in p]


# (field, value Zoho sends, the value as the one line shows it)
DELETED_SHAPES = [
    ("deleted_time", "yesterday", '"yesterday"'),
    ("deleted_time", 1764633600, "1764633600"),
    ("deleted_time", None, "null"),
    ("deleted_time", REMOVE, "missing"),
    ("id", REMOVE, "missing"),
    ("deleted_by", "Amy Admin", '"Amy Admin"'),
    ("created_by", "Amy Admin", '"Amy Admin"'),
]


@pytest.mark.parametrize(("field", "value", "shown"), DELETED_SHAPES)
def test_a_malformed_deleted_entry_is_set_aside_and_the_rest_lands(
    org, server, pipeline, field, value, shown
):
    seed(org)
    server.faults.add(
        r"/Leads/deleted$", "corrupt", times=None, record=BAD, field=field, value=value
    )

    first = run_once(server, pipeline)

    # named in one line: module, id, field, value
    no_id = field == "id"
    (line,) = first.rejected
    assert line.startswith(f"Leads {'(no id)' if no_id else BAD} (/deleted): {field} {shown} ")
    ((source, module, rid, bad_field, bad_value, reason, entry),) = rejected(pipeline)
    assert (source, module, rid, bad_field) == ("deleted", "Leads", None if no_id else BAD, field)
    assert bad_value == (None if value is REMOVE else json.dumps(value))
    assert reason in line and json.loads(entry)["display_name"] == f"Name {BAD}"
    # everything else of the module and of the others landed
    assert loaded(pipeline) == {"Leads": LEADS - 1, "Contacts": CONTACTS}
    assert loaded(pipeline, "recycle_bin") == {"Leads": LEADS, "Contacts": CONTACTS}
    status = read_status(pipeline)
    assert not status.healthy and status.rejected_records == {"Leads (/deleted)": 1}
    assert [(p.code, p.numbers) for p in status.problems] == [("records_rejected", {"count": 1})]
    assert "1 entries Zoho sent malformed are set aside" in status.problems[0].text

    # Still malformed: the next run goes on (new deletions land), its mark held just below
    # the entry (a second before the one after it), which it reads again; no row doubles.
    delete(org, "Leads", "L99999", NOW)
    second = run_once(server, pipeline)
    assert len(second.rejected) == 1 and len(rejected(pipeline)) == 1
    assert leads_since(server)[0] == zoho_time(NOW - minutes_before(101) - timedelta(seconds=1))
    assert loaded(pipeline)["Leads"] == LEADS
    assert query(pipeline, f"SELECT count(*) FROM {DS}.deletion_events WHERE id = 'L99999'") == [
        (1,)
    ]
    assert read_status(pipeline).rejected_records == {"Leads (/deleted)": 1}

    # Zoho sends it whole: it lands, the mark moves to the newest, status is healthy again.
    server.faults.clear()
    third = run_once(server, pipeline)
    assert third.rejected == []
    assert loaded(pipeline)["Leads"] == LEADS + 1
    assert query(pipeline, f"SELECT display_name FROM {DS}.deleted_records WHERE id = '{BAD}'") == [
        (f"Name {BAD}",)
    ]
    status = read_status(pipeline)
    assert status.healthy and status.rejected_records == {}, status.problems
    run_once(server, pipeline)
    assert leads_since(server) == [zoho_time(NOW)]


BIN_SHAPES = [
    ("deleted_time", "yesterday"),
    ("deleted_time", 1764633600),
    ("deleted_time", None),
    ("deleted_time", REMOVE),
    ("id", REMOVE),
    ("deleted_by", "Amy Admin"),
    ("owner", "Amy Admin"),
    ("module", "Leads"),
]


@pytest.mark.parametrize(("field", "value"), BIN_SHAPES)
def test_a_malformed_bin_entry_is_set_aside_and_the_rest_lands(org, server, pipeline, field, value):
    seed(org)
    corrupt(server, r"/settings/recycle_bin$", field, value)

    first = run_once(server, pipeline)

    (line,) = first.rejected
    assert line.startswith(f"Leads {'(no id)' if field == 'id' else BAD} (recycle bin): {field} ")
    ((source, module, *_),) = rejected(pipeline)
    assert (source, module) == ("recycle_bin", "Leads")
    assert loaded(pipeline, "recycle_bin") == {"Leads": LEADS - 1, "Contacts": CONTACTS}
    assert loaded(pipeline) == {"Leads": LEADS, "Contacts": CONTACTS}
    assert read_status(pipeline).rejected_records == {"Leads (recycle bin)": 1}

    second = run_once(server, pipeline)  # not stuck; reads the entry again
    assert len(second.rejected) == 1 and len(rejected(pipeline)) == 1

    server.faults.clear()
    third = run_once(server, pipeline)
    assert third.rejected == []
    assert loaded(pipeline, "recycle_bin") == {"Leads": LEADS, "Contacts": CONTACTS}
    assert read_status(pipeline).healthy


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("deleted_time", "2026-01-05T10:00:00+05:30", "2026-01-05 04:30:00+00:00"),
        ("deleted_time", "2026-01-05T10:00:00Z", "2026-01-05 10:00:00+00:00"),
        ("deleted_by", None, None),  # Zoho drops the deleter of a purged record
        ("id", 4108000000123, None),  # a number: taken as its text
    ],
)
def test_shapes_real_zoho_sends_are_not_rejected(org, server, pipeline, field, value, expected):
    seed(org)
    server.faults.add(
        r"/Leads/deleted$", "corrupt", times=None, record=BAD, field=field, value=value
    )

    result = run_once(server, pipeline)

    assert result.rejected == [] and rejected(pipeline) == []
    rid = str(value) if field == "id" else BAD
    (row,) = query(
        pipeline,
        f"SELECT deleted_time, deleted_by__name FROM {DS}.deleted_records WHERE id = '{rid}'",
    )
    if expected:
        assert str(row[0].astimezone(NOW.tzinfo)) == expected
    assert loaded(pipeline) == {"Leads": LEADS, "Contacts": CONTACTS}
    assert read_status(pipeline).healthy


@pytest.mark.parametrize("kind", ["no-info", "info-not-object", "no-more-records"])
def test_a_list_answer_without_paging_info_is_read_to_its_end(org, server, pipeline, kind):
    seed(org)
    server.faults.add(r"/Leads/deleted$", kind, times=None)
    server.faults.add(r"/settings/recycle_bin$", kind, times=None)

    result = run_once(server, pipeline)

    assert result.malformed_modules == {} and result.rejected == []
    assert loaded(pipeline) == {"Leads": LEADS, "Contacts": CONTACTS}  # every page, not one
    assert loaded(pipeline, "recycle_bin") == {"Leads": LEADS, "Contacts": CONTACTS}
    assert server.calls["deleted"] == 3 + 3  # Leads' three pages by `page`, one each for others


def test_a_full_page_without_info_where_page_cannot_reach_fails_the_module(org, server, pipeline):
    seed(org)
    # the first page hands out a next_page_token; the page it fetches has no `info`
    server.faults.add(r"/Leads/deleted$", "no-info", times=None, query="page_token=")

    result = run_once(server, pipeline)

    assert set(result.malformed_modules) == {"Leads"}
    line = result.malformed_modules["Leads"]
    assert "GET /crm/v8/Leads/deleted (module Leads)" in line and "no `info` object" in line
    assert loaded(pipeline) == {"Contacts": CONTACTS}  # never a silent part of Leads
    assert loaded(pipeline, "recycle_bin") == {"Leads": LEADS, "Contacts": CONTACTS}
    assert not read_status(pipeline).healthy

    server.faults.clear()
    run_once(server, pipeline)
    assert loaded(pipeline) == {"Leads": LEADS, "Contacts": CONTACTS}
    assert read_status(pipeline).healthy


@pytest.mark.parametrize("where", [r"/Leads/deleted$", r"/settings/recycle_bin$"])
def test_a_page_whose_records_are_not_a_list_fails_its_module_alone(org, server, pipeline, where):
    seed(org)
    run_once(server, pipeline)
    delete(org, "Leads", "L99999", NOW)
    delete(org, "Contacts", "C99999", NOW)
    server.faults.add(where, "data-not-list", times=None)

    result = run_once(server, pipeline)

    bin_failed = "recycle_bin" in where
    name, key = ("recycle_bin", "recycle_bin") if bin_failed else ("Leads", "data")
    assert set(result.malformed_modules) == {name}
    line = result.malformed_modules[name]
    assert re.search(f'`{key}` is {{"count": \\d+}}, not a list of records', line)
    whole = {"Leads": LEADS + 1, "Contacts": CONTACTS + 1}
    if bin_failed:  # the modules' lists landed
        assert loaded(pipeline) == whole
        assert loaded(pipeline, "recycle_bin") == {"Leads": LEADS, "Contacts": CONTACTS}
    else:  # the other module and the bin landed
        assert loaded(pipeline) == {"Leads": LEADS, "Contacts": CONTACTS + 1}
        assert loaded(pipeline, "recycle_bin") == whole
    status = read_status(pipeline)
    assert not status.healthy
    assert status.problems[0].code == "last_run_failed"
    failed = f"the last run failed: Zoho answered GET /crm/v8/{where[1:-1]}"
    assert failed in status.problems[0].text
    assert "with a malformed page" in status.problems[0].text

    server.faults.clear()
    run_once(server, pipeline)
    assert loaded(pipeline) == whole
    assert loaded(pipeline, "recycle_bin") == whole
    assert read_status(pipeline).healthy


@pytest.fixture
def cli(server, tmp_path, monkeypatch, capsys):
    """`zoho-deleted` in this process, against the stand-in."""
    monkeypatch.chdir(tmp_path)
    for key, value in env_for(server, tmp_path).items():
        monkeypatch.setenv(key, value)

    def call(*argv: str):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return call


def test_the_command_names_each_malformed_entry_and_exits_1(org, server, cli):
    seed(org)
    corrupt(server, r"/Leads/deleted$", "deleted_time", "yesterday")

    code, out, err = cli("run")

    assert code == 1
    assert (
        f'  REJECTED Leads {BAD} (/deleted): deleted_time "yesterday" is not an ISO 8601 time '
        "with an offset\n" in out
    )
    assert err == (
        "zoho-deleted: Zoho sent 1 malformed entry, set aside in table rejected_records (named "
        "above); the rest loaded, and each run reads them again until Zoho sends them whole\n"
    )
    code, out, _ = cli("status")
    assert code == 1
    assert "UNHEALTHY: 1 entries Zoho sent malformed are set aside (Leads (/deleted) 1)" in out
    code, out, _ = cli("status", "--json")
    assert json.loads(out)["rejected_records"] == {"Leads (/deleted)": 1}

    server.faults.clear()
    code, out, err = cli("run")
    assert code == 0, err
    assert "REJECTED" not in out
    code, out, _ = cli("status")
    assert code == 0 and "Healthy." in out


def test_the_command_names_a_malformed_page_and_the_rest_loads(org, server, cli):
    seed(org)
    server.faults.add(r"/Contacts/deleted$", "data-not-list", times=None)

    code, out, err = cli("run")

    assert code == 1
    assert "FAILED Contacts: Zoho answered GET /crm/v8/Contacts/deleted" in out
    assert "deleted_records                450 rows" in out
    assert err.startswith("zoho-deleted: Zoho answered Contacts with a malformed page (named")
    assert len(err.splitlines()) == 1


def test_reconciliation_takes_a_malformed_bin_entry_for_no_restore(org, server, pipeline):
    seed(org)
    run_once(server, pipeline)
    corrupt(server, r"/settings/recycle_bin$", "deleted_by", "Amy Admin")

    result = run_once(server, pipeline, reconcile=True)

    assert [line.split(":")[0] for line in result.rejected] == [f"Leads {BAD} (recycle bin)"]
    assert query(
        pipeline, f"SELECT count(*) FROM {DS}.deleted_records WHERE restored_at IS NOT NULL"
    ) == [(0,)]
    assert query(
        pipeline, f"SELECT count(*) FROM {DS}.deletion_events WHERE event = 'restored'"
    ) == [(0,)]


RELATED = {"Leads": {"Campaigns": ["Campaign_Name"], "Products": ["Product_Name"]}}
CAMPAIGNS = r"/Leads/deleted/[^/]+/Campaigns$"


def bin_leads(org) -> None:
    for rid in ("101", "102"):
        delete(org, "Leads", rid, NOW - timedelta(days=int(rid[-1])))
        campaigns = [{"id": f"c{rid}{k}", "Campaign_Name": f"C{k}"} for k in range(2)]
        org.add_related("Leads", rid, "Campaigns", campaigns)
        org.add_related("Leads", rid, "Products", [{"id": f"p{rid}", "Product_Name": "Widget"}])


def related_ids(pipeline) -> list:
    sql = f"SELECT id FROM {DS}.deleted_related_records ORDER BY id"
    return [rid for (rid,) in query(pipeline, sql)]


@pytest.mark.parametrize(("field", "value"), [("id", REMOVE), ("id", None), ("id", {"v": 1})])
def test_a_related_record_without_an_id_is_set_aside_and_fetched_again(
    org, server, pipeline, field, value
):
    bin_leads(org)
    server.faults.add(CAMPAIGNS, "corrupt", times=None, record="c1010", field=field, value=value)

    first = run_once(server, pipeline, related_lists=RELATED)

    (line,) = first.rejected
    assert line.startswith("Leads.Campaigns (no id) (related records): id ")
    assert related_ids(pipeline) == ["c1011", "c1020", "c1021", "p101", "p102"]
    assert read_status(pipeline).rejected_records == {"Leads.Campaigns (related records)": 1}

    second = run_once(server, pipeline, related_lists=RELATED)  # fetched again, once
    assert second.api_calls["related"] == 1 and len(second.rejected) == 1
    assert len(rejected(pipeline)) == 1

    server.faults.clear()
    third = run_once(server, pipeline, related_lists=RELATED)
    assert third.rejected == [] and third.api_calls["related"] == 1
    assert related_ids(pipeline) == ["c1010", "c1011", "c1020", "c1021", "p101", "p102"]
    assert read_status(pipeline).healthy
    fourth = run_once(server, pipeline, related_lists=RELATED)
    assert "related" not in fourth.api_calls  # fetched: never asked for again


def test_a_related_record_that_is_not_an_object_is_set_aside_not_a_crash(org, server, pipeline):
    bin_leads(org)
    server.faults.add(CAMPAIGNS, "entry-not-object", times=None, record="c1010")

    result = run_once(server, pipeline, related_lists=RELATED)

    (line,) = result.rejected
    assert line.startswith("Leads.Campaigns") and 'entry "c1010" is not a JSON object' in line
    assert related_ids(pipeline) == ["c1011", "c1020", "c1021", "p101", "p102"]


def test_a_related_page_whose_records_are_not_a_list_fails_that_list_alone(org, server, pipeline):
    bin_leads(org)
    server.faults.add(r"/Leads/deleted/101/Campaigns$", "data-not-list", times=None)

    result = run_once(server, pipeline, related_lists=RELATED)

    assert set(result.malformed_modules) == {"Leads.Campaigns"}
    assert (
        "GET /crm/v8/Leads/deleted/101/Campaigns (module Leads)"
        in (result.malformed_modules["Leads.Campaigns"])
    )
    assert related_ids(pipeline) == ["c1020", "c1021", "p101", "p102"]
    assert not read_status(pipeline).healthy

    server.faults.clear()
    again = run_once(server, pipeline, related_lists=RELATED)
    assert again.malformed_modules == {} and again.api_calls["related"] == 1
    assert related_ids(pipeline) == ["c1010", "c1011", "c1020", "c1021", "p101", "p102"]
    assert read_status(pipeline).healthy
