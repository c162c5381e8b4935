"""Large orgs: bounded load packages, cheap runs after a mass purge, a related-records backlog
that spans runs within a budget, and loads the destination refuses."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from conftest import DUCKDB_FILE, IST, NOW, api_calls, delete, query, run_once, source_args
from test_cli import cli

from pipelines.duckdb_file import duckdb_destination
from pipelines.errors import EXIT_BACKLOG, EXIT_LOAD_STUCK, explain
from pipelines.run import make_pipeline, run

DS = "zoho_crm_deleted"
OWNER = {"name": "Patricia Boyle", "id": "410888000000086001"}
RELATED = {"Leads": {"Campaigns": ["Owner", "Campaign_Name"], "Products": ["Product_Name"]}}


def keys(pipeline, table: str = "deleted_records") -> list:
    key = "module, id" if table == "deleted_records" else "id"
    return query(pipeline, f"SELECT count(*), count(DISTINCT ({key})) FROM {DS}.{table}")


def test_a_long_first_pass_loads_in_bounded_packages_and_ends_with_one_high_water_mark(
    org, server, pipeline
):
    for n in range(1_000):
        delete(org, "Leads", f"1{n:05d}", NOW - timedelta(minutes=n + 1))
    # 400 rows a package over 4 modules: one page (200) per stream and package
    first = run_once(server, pipeline, load_chunk_rows=400)

    assert first.packages >= 5  # 5 pages of Leads, a package each
    assert first.row_counts["deleted_records"] == 1_000
    assert keys(pipeline) == [(1_000, 1_000)]
    assert keys(pipeline, "recycle_bin") == [(1_000, 1_000)]
    # the pass is complete: the next run asks only for what is newer than the newest entry
    second = run_once(server, pipeline, load_chunk_rows=400)
    assert api_calls(server) == {"deleted": 4, "recycle_bin": 1}
    assert second.row_counts["deleted_records"] == 0


def test_a_nothing_new_run_after_a_mass_purge_is_one_call_per_list(org, server, pipeline):
    purge = NOW - timedelta(minutes=1)
    for n in range(450):  # a crowded boundary second: more than two pages share it
        delete(org, "Leads", f"2{n:05d}", NOW - timedelta(days=2, minutes=n))
        org.purge("Leads", f"2{n:05d}", purge)
    for n in range(450):  # the bin's crowded second: a mass delete
        delete(org, "Contacts", f"3{n:05d}", purge - timedelta(minutes=1))
    run_once(server, pipeline, per_page=200)
    assert keys(pipeline) == [(900, 900)]

    second = run_once(server, pipeline, per_page=200)
    assert api_calls(server) == {"deleted": 4, "recycle_bin": 1}
    assert second.row_counts == {t: 0 for t in second.row_counts}

    # A straggler stamped with the crowded second, beyond its first page: the next
    # reconciliation pass (which reads every page) brings it in.
    org.purge("Leads", "100000", purge)  # the stand-in sorts it last within the second
    server.reset_counts()
    assert run_once(server, pipeline).row_counts["deleted_records"] == 0
    reconciled = run_once(server, pipeline, reconcile=True)
    assert reconciled.row_counts["deleted_records"] >= 1
    assert query(pipeline, f"SELECT type FROM {DS}.deleted_records WHERE id = '100000'") == [
        ("permanent",)
    ]
    assert keys(pipeline) == [(901, 901)]


def test_a_healthy_run_after_a_mass_purge_prints_no_warnings(org, server, tmp_path):
    purge = NOW - timedelta(minutes=1)
    for n in range(1_200):
        delete(org, "Leads", f"8{n:05d}", NOW - timedelta(days=3, minutes=n))
        org.purge("Leads", f"8{n:05d}", purge)
    for _ in range(2):
        result = cli(server, tmp_path, "run")
        assert result.returncode == 0, result.stderr
        assert "WARNING" not in result.stdout + result.stderr
        assert result.stderr == ""
    assert "API calls: 5 (deleted 4, recycle_bin 1)" in result.stdout


def test_a_straggler_in_a_sparse_boundary_second_lands_in_the_next_run(org, server, pipeline):
    second = NOW - timedelta(minutes=3)
    delete(org, "Deals", "401", second)
    delete(org, "Deals", "402", second)
    run_once(server, pipeline)

    delete(org, "Deals", "403", second)  # Zoho shows it late, stamped with the same second
    result = run_once(server, pipeline)

    assert result.row_counts["deleted_records"] == 1
    assert result.row_counts["recycle_bin"] == 1
    assert api_calls(server) == {"deleted": 4, "recycle_bin": 1}
    assert keys(pipeline) == [(3, 3)]
    events = query(pipeline, f"SELECT count(*) FROM {DS}.deletion_events WHERE id = '403'")
    assert events == [(1,)]


def bin_leads(org, count: int) -> None:
    for n in range(count):
        rid = f"5{n:05d}"
        delete(org, "Leads", rid, NOW - timedelta(days=1, minutes=n))
        org.add_related(
            "Leads", rid, "Campaigns", [{"id": f"c{rid}", "Owner": OWNER, "Campaign_Name": "C"}]
        )
        org.add_related("Leads", rid, "Products", [{"id": f"p{rid}", "Product_Name": "P"}])


def related_keys(pipeline) -> list:
    return query(
        pipeline,
        f"SELECT count(*), count(DISTINCT (parent_id, related_list, id)) "
        f"FROM {DS}.deleted_related_records",
    )


def test_a_first_run_larger_than_the_daily_allowance_completes_over_several_days(
    org, server, pipeline
):
    bin_leads(org, 650)  # 1,300 related calls, more than a day's 500 credits
    server.daily_allowance = server.credits_left = 500
    args = {"related_lists": RELATED, "api_credits_reserve": 50}

    first = run_once(server, pipeline, **args)

    # The deleted list and the bin land whatever the backlog; related records stop while
    # credits remain for the day's later runs.
    assert keys(pipeline) == [(650, 650)] and keys(pipeline, "recycle_bin") == [(650, 650)]
    assert first.related_stop and "api_credits_reserve" in first.related_stop
    assert 0 < first.related_backlog < 1_300
    assert server.credits_left >= 40  # the reserve is kept (a few calls were in flight)
    fetched = related_keys(pipeline)[0][0]
    assert fetched == 1_300 - first.related_backlog

    days = 1
    while first.related_backlog and days < 6:
        server.credits_left = server.daily_allowance  # a new day
        first = run_once(server, pipeline, **args)
        days += 1
    assert first.related_backlog == 0 and first.related_stop is None
    assert 3 <= days <= 4  # 400-450 related calls a day for 1,300 lists
    assert related_keys(pipeline) == [(1_300, 1_300)]  # each fetched once, none doubled
    server.credits_left = server.daily_allowance
    run_once(server, pipeline, **args)
    assert "related" not in api_calls(server)


def test_related_calls_per_run_caps_a_run_and_the_command_says_so(org, server, tmp_path):
    bin_leads(org, 30)
    env = {
        "SOURCES__ZOHO_CRM__RELATED_LISTS": json.dumps(RELATED),
        "SOURCES__ZOHO_CRM__RELATED_CALLS_PER_RUN": "25",
        "SOURCES__ZOHO_CRM__MAX_CONCURRENCY": "5",
    }
    first = cli(server, tmp_path, "run", **env)
    assert first.returncode == EXIT_BACKLOG, first.stderr
    assert "related records stopped: this run's related_calls_per_run budget is spent" in (
        first.stdout
    )
    assert server.calls["related"] == 25
    status = cli(server, tmp_path, "status", "--json", **env)
    backlog = json.loads(status.stdout)["related_backlog"]
    assert backlog == 60 - 25
    assert "35 related lists of bin entries are still to fetch" in cli(
        server, tmp_path, "status", **env
    ).stdout
    for _ in range(2):
        last = cli(server, tmp_path, "run", **env)
    assert last.returncode == 0, last.stdout + last.stderr
    assert server.calls["related"] == 60
    assert json.loads(cli(server, tmp_path, "status", "--json", **env).stdout)[
        "related_backlog"
    ] == 0


def pipeline_at(tmp_path):
    return make_pipeline(
        destination=duckdb_destination(str(tmp_path / DUCKDB_FILE)),
        pipelines_dir=str(tmp_path / "pipelines"),
    )


def test_a_load_the_destination_refuses_is_loaded_by_the_next_run_once_it_recovers(
    org, server, tmp_path, monkeypatch
):
    for n in range(3_000):
        delete(org, "Leads", f"6{n:05d}", NOW - timedelta(minutes=n + 1))
    starved = '{"memory_limit": "1MB", "max_temp_directory_size": "0KB"}'
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", starved)
    pipeline = pipeline_at(tmp_path)  # DuckDB's settings are read when the destination is made
    with pytest.raises(Exception) as raised:
        run_once(server, pipeline)
    code, message = explain(raised.value)
    assert code == EXIT_LOAD_STUCK and "the destination refused the load" in message
    assert "OutOfMemory" in message and "the next run loads it first" in message
    assert pipeline.has_pending_data

    monkeypatch.delenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG")
    pipeline = pipeline_at(tmp_path)
    recovered = run_once(server, pipeline)
    assert recovered.recovered_packages == 1
    assert keys(pipeline) == [(3_000, 3_000)]
    assert not pipeline.has_pending_data


def test_a_load_the_destination_keeps_refusing_stops_captures_and_status_says_so(
    org, server, tmp_path
):
    for n in range(3_000):
        delete(org, "Leads", f"7{n:05d}", NOW - timedelta(minutes=n + 1))
    starved = {
        "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG": (
            '{"memory_limit": "1MB", "max_temp_directory_size": "0KB"}'
        )
    }
    first = cli(server, tmp_path, "run", **starved)
    assert first.returncode == EXIT_LOAD_STUCK
    server.reset_counts()
    again = cli(server, tmp_path, "run", **starved)
    assert again.returncode == EXIT_LOAD_STUCK
    line = again.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "a load package of an earlier run still cannot be loaded" in line
    assert "nothing new is captured until it is" in line
    assert server.calls["deleted"] == 0  # it did not read Zoho on top of the stuck package

    status = cli(server, tmp_path, "status")
    assert status.returncode == 1
    assert "captures have stopped" in status.stdout
    assert (tmp_path / DUCKDB_FILE).exists()


def test_budget_settings_are_checked(org, server, pipeline):
    for name, value in (("load_chunk_rows", 0), ("api_credits_reserve", -1)):
        with pytest.raises(Exception) as raised:
            run(pipeline, **source_args(server, **{name: value}))
        code, message = explain(raised.value)
        assert code == 2 and name in message, message


def test_an_upgraded_pipeline_keeps_the_high_water_mark_of_dlts_incremental():
    from sources.zoho_crm.passes import ListPass

    mark = NOW.astimezone(IST) - timedelta(hours=2)
    state = {"incremental": {"deleted_time": {"last_value": mark, "unique_hashes": ["x"]}}}
    assert ListPass(state, {}).since == mark
    assert ListPass(state, {}).ever_completed
    assert ListPass({}, {}).since is None


def test_status_reads_a_runs_table_from_before_related_budgets(org, server, pipeline):
    from pipelines.status import read_status

    delete(org, "Leads", "901", NOW - timedelta(days=1))
    run_once(server, pipeline)
    with pipeline.sql_client() as client:  # as an upgraded warehouse has it until its next run
        for column in ("related_backlog", "related_calls", "related_stop"):
            client.execute_sql(f"ALTER TABLE {DS}.runs DROP COLUMN {column}")
    status = read_status(pipeline)
    assert status.healthy and status.related_backlog == 0
    assert status.modules["Leads"]["recycle"] == 1
