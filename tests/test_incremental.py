"""First and incremental runs of deleted_records and recycle_bin against the stand-in."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import IST, MODULES, NOW, PST, api_calls, delete, query, run_once

DS = "zoho_crm_deleted"


def test_first_run_loads_every_entry_with_its_details(org, server, pipeline):
    for n in range(5):
        delete(org, "Leads", f"10{n}", NOW - timedelta(days=n + 1))
    org.purge("Leads", "104", NOW - timedelta(hours=1))
    delete(org, "Contacts", "201", NOW - timedelta(days=2))

    result = run_once(server, pipeline)

    assert result.row_counts["deleted_records"] == 6
    rows = query(
        pipeline,
        f"SELECT module, id, type, display_name, deleted_by__name, created_by__id "
        f"FROM {DS}.deleted_records ORDER BY module, id",
    )
    assert rows[0] == ("Contacts", "201", "recycle", "Name 201", "Marco Ruiz", "410888000000086017")
    assert [(r[1], r[2]) for r in rows[1:]] == [
        ("100", "recycle"), ("101", "recycle"), ("102", "recycle"), ("103", "recycle"),
        ("104", "permanent"),
    ]  # fmt: skip
    assert rows[-1][3] is None  # first seen already purged: Zoho no longer knows the name
    bin_rows = query(pipeline, f"SELECT id, module__api_name, owner__name FROM {DS}.recycle_bin")
    assert len(bin_rows) == 5 and ("201", "Contacts", "Marco Ruiz") in bin_rows


def test_times_are_instants_whatever_the_offset(org, server, pipeline):
    # As text "…T10:00:00+05:30" sorts after "…T01:00:00-08:00", but it is 4.5 hours earlier.
    day = (NOW - timedelta(days=2)).replace(hour=0, minute=0, second=0)
    early = day.replace(hour=10, tzinfo=IST)  # 04:30 UTC
    late = day.replace(hour=1, tzinfo=PST)  # 09:00 UTC
    delete(org, "Leads", "301", early)
    delete(org, "Leads", "302", late)
    run_once(server, pipeline)

    stored = dict(query(pipeline, f"SELECT id, deleted_time FROM {DS}.deleted_records"))
    assert stored["301"] == early and stored["302"] == late
    assert stored["301"].utcoffset() is not None

    run_once(server, pipeline)
    sent = [h.get("If-Modified-Since") for route, path, h in server.requests if "Leads" in path]
    assert sent == [late.astimezone(UTC).isoformat()]  # the later instant, not text


def test_records_in_the_same_second_are_neither_skipped_nor_doubled(org, server, pipeline):
    second = NOW - timedelta(minutes=10)
    delete(org, "Leads", "401", second)
    delete(org, "Leads", "402", second.astimezone(IST))
    assert run_once(server, pipeline).row_counts["deleted_records"] == 2

    # Two more arrive stamped with the very second of the high-water mark.
    delete(org, "Leads", "403", second.astimezone(PST))
    delete(org, "Leads", "404", second)
    result = run_once(server, pipeline)

    assert result.row_counts["deleted_records"] == 2  # only the new ones
    assert result.row_counts["recycle_bin"] == 2
    ids = query(pipeline, f"SELECT id, count(*) FROM {DS}.deleted_records GROUP BY id ORDER BY id")
    assert ids == [("401", 1), ("402", 1), ("403", 1), ("404", 1)]
    bin_ids = query(pipeline, f"SELECT count(*), count(DISTINCT id) FROM {DS}.recycle_bin")
    assert bin_ids == [(4, 4)]


def test_purge_between_runs_turns_permanent_and_keeps_details(org, server, pipeline):
    delete(org, "Leads", "501", NOW - timedelta(days=3), "Ada Okafor")
    delete(org, "Leads", "502", NOW - timedelta(days=3), "Ben Silva")
    run_once(server, pipeline)

    purge_time = NOW - timedelta(minutes=1)
    org.purge("Leads", "501", purge_time.astimezone(PST))
    result = run_once(server, pipeline)

    assert result.row_counts["deleted_records"] == 1
    row = query(
        pipeline,
        f"SELECT type, display_name, deleted_by__name, created_by__name, deleted_time, expires_at "
        f"FROM {DS}.deleted_records WHERE id = '501'",
    )
    kind, name, deleter, creator, deleted_time, expires_at = row[0]
    assert (kind, name) == ("permanent", "Ada Okafor")
    assert deleter == creator == "Marco Ruiz"  # captured while it was in the bin
    assert deleted_time == purge_time
    assert expires_at == purge_time + timedelta(days=120)
    # A third run with nothing new changes nothing, and never erases the kept details.
    run_once(server, pipeline)
    assert query(pipeline, f"SELECT display_name FROM {DS}.deleted_records WHERE id = '501'") == [
        ("Ada Okafor",)
    ]


def test_one_row_per_key_after_many_runs(org, server, pipeline):
    for n in range(30):
        delete(org, "Contacts", f"6{n:02d}", NOW - timedelta(hours=n + 1))
    for round_ in range(4):
        run_once(server, pipeline)
        # Zoho's clock moves on between runs: each change is later than the last.
        delete(org, "Contacts", f"7{round_}", NOW - timedelta(seconds=40 - 2 * round_))
        org.purge("Contacts", f"6{round_:02d}", NOW - timedelta(seconds=39 - 2 * round_))
    run_once(server, pipeline)
    dupes = query(
        pipeline,
        f"SELECT module, id FROM {DS}.deleted_records GROUP BY 1, 2 HAVING count(*) > 1",
    )
    assert dupes == []
    assert query(pipeline, f"SELECT count(*) FROM {DS}.deleted_records") == [(34,)]
    assert query(pipeline, f"SELECT count(*), count(DISTINCT id) FROM {DS}.recycle_bin") == [
        (34, 34)
    ]


def test_a_run_with_nothing_new_makes_one_call_per_module_and_one_for_the_bin(
    org, server, pipeline
):
    delete(org, "Leads", "801", NOW - timedelta(days=1))
    delete(org, "Deals", "802", NOW - timedelta(days=1))
    run_once(server, pipeline)

    result = run_once(server, pipeline)

    # the configured modules were checked against Zoho's by the first run, and remembered
    assert api_calls(server) == {"deleted": len(MODULES), "recycle_bin": 1}
    assert result.api_calls == {"deleted": len(MODULES), "recycle_bin": 1}
    assert all(n == 0 for n in result.row_counts.values())
    # Every module was asked only for what changed since its own high-water mark.
    headers = {path.split("/")[3]: h.get("If-Modified-Since") for _, path, h in server.requests}
    assert headers["Leads"] and headers["Deals"]
    assert headers["Accounts"] is None and headers["Contacts"] is None  # nothing loaded yet


def test_204_no_content_means_nothing_there(org, server, pipeline):
    result = run_once(server, pipeline)  # every module empty, bin empty
    assert all(n == 0 for n in result.row_counts.values())
    # The first run reads each module's part of the bin (in parallel): all 204s too.
    assert api_calls(server) == {"modules": 1, "deleted": len(MODULES), "recycle_bin": len(MODULES)}
    assert server.calls["error"] == 0


def test_paging_past_200_and_past_2000_records(org, server, pipeline):
    for n in range(2_345):
        delete(org, "Leads", f"9{n:05d}", NOW - timedelta(seconds=n * 7 + 5))
    result = run_once(server, pipeline)

    assert result.row_counts["deleted_records"] == 2_345
    assert result.row_counts["recycle_bin"] == 2_345
    leads_calls = [path for _, path, _ in server.requests if path.startswith("/crm/v8/Leads")]
    assert len(leads_calls) == 12  # ceil(2345 / 200)
    assert all("per_page=200" in path for path in leads_calls)
    assert any("page_token=" in path for path in leads_calls)  # beyond 2,000: tokens
    assert server.calls["error"] == 0
    assert query(pipeline, f"SELECT count(DISTINCT id) FROM {DS}.deleted_records") == [(2_345,)]


def test_token_refresh_mid_run(org, server, pipeline):
    for n in range(450):
        delete(org, "Leads", f"1{n:04d}", NOW - timedelta(minutes=n + 1))
    server.faults.add(r"/Leads/deleted$", "sleep", times=1)  # the first page goes through
    server.faults.add(r"/Leads/deleted$", "expire-token", times=1)  # then the token dies

    result = run_once(server, pipeline)

    assert result.row_counts["deleted_records"] == 450
    assert server.calls["token"] >= 2  # a fresh token was minted mid-run
    assert server.calls["error"] >= 1  # Zoho said INVALID_TOKEN at least once


def test_zoho_time_with_z_suffix_is_parsed():
    from sources.zoho_crm.records import parse_time

    assert parse_time("2019-07-25T15:26:49Z") == datetime(2019, 7, 25, 15, 26, 49, tzinfo=UTC)
    assert parse_time("2019-07-25T15:26:49+05:30") == datetime(2019, 7, 25, 9, 56, 49, tzinfo=UTC)


def _old_first_pass(modules: list, leads_page: Any, newest: datetime) -> dict:
    """The `recycle_bin` resource's state as versions before per-module bin resources left a
    first pass under way: one stream per module's part, in that one resource."""
    streams = {}
    for module in modules:
        condition = {"field": {"api_name": "module"}, "comparator": "equal", "value": module}
        streams[module] = {
            "sort_by": "deleted_time",
            "sort_order": "desc",
            "filters": json.dumps({"group_operator": "AND", "group": [condition]}),
            "per_page": 200,
            "page": leads_page if module == "Leads" else 1,
        }
        if module == "Leads" and isinstance(leads_page, str):  # a page token, not a number
            del streams[module]["page"]
            streams[module]["page_token"] = leads_page
    return {"pass": {"streams": streams, "newest": newest.isoformat()}}


def test_a_bin_pass_an_older_version_left_unfinished_goes_on_after_the_upgrade(
    org, server, pipeline
):
    for n in range(450):
        delete(org, "Leads", f"L{n:04d}", NOW - timedelta(minutes=n + 1))
    for n in range(30):
        delete(org, "Contacts", f"C{n:04d}", NOW - timedelta(minutes=n + 1))
    # an older version had read the first page of the Leads part, then was stopped
    with pipeline.managed_state() as state:
        resources = state.setdefault("sources", {}).setdefault("zoho_crm", {})
        resources.setdefault("resources", {})["recycle_bin"] = _old_first_pass(
            MODULES, 2, NOW - timedelta(minutes=1)
        )

    result = run_once(server, pipeline)

    assert result.row_counts["recycle_bin"] == 450 - 200 + 30  # from where it stopped
    assert api_calls(server)["recycle_bin"] == 2 + 3  # Leads' pages 2 and 3, each other part
    assert not result.failed_modules
    run_once(server, pipeline)
    assert api_calls(server) == {"deleted": len(MODULES), "recycle_bin": 1}  # the mark holds


def test_an_older_versions_bin_pass_whose_page_token_expired_reads_that_part_again(
    org, server, pipeline
):
    for n in range(450):
        delete(org, "Leads", f"L{n:04d}", NOW - timedelta(minutes=n + 1))
    with pipeline.managed_state() as state:
        resources = state.setdefault("sources", {}).setdefault("zoho_crm", {})
        resources.setdefault("resources", {})["recycle_bin"] = _old_first_pass(
            MODULES, "expired-token", NOW - timedelta(minutes=1)
        )

    result = run_once(server, pipeline)  # Zoho refuses the token (400 INVALID_DATA)

    assert not result.failed_modules
    assert result.row_counts["recycle_bin"] == 450  # the Leads part read again from its top
    run_once(server, pipeline)
    assert api_calls(server) == {"deleted": len(MODULES), "recycle_bin": 1}
