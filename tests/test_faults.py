"""Zoho's faults and the network's: retried within bounds, partial permission, clear failures."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from conftest import NOW, api_calls, delete, query, run_once

from pipelines.duckdb_file import duckdb_destination
from pipelines.errors import explain
from pipelines.run import make_pipeline
from zoho_standin import Org, StandinServer
from zoho_standin.seed import add_standard_modules

DS = "zoho_crm_deleted"


def seed(org, per_module: int = 450) -> None:
    for module in ("Leads", "Contacts"):
        for n in range(per_module):
            delete(org, module, f"{module[0]}{n:05d}", NOW - timedelta(minutes=n + 1))


def keys_loaded(pipeline) -> list:
    return query(
        pipeline,
        f"SELECT count(*), count(DISTINCT (module, id)) FROM {DS}.deleted_records",
    )


@pytest.mark.parametrize("kind", ["429", "500", "502-html", "drop", "truncate", "html"])
def test_transient_faults_are_retried_and_the_run_completes(org, server, pipeline, kind):
    seed(org)
    server.faults.add(r"/Leads/deleted$", "sleep", times=1)  # page 1 is fine
    server.faults.add(r"/Leads/deleted$", kind, times=2)  # page 2 fails twice, then works
    server.faults.add(r"/settings/recycle_bin$", kind, times=1)

    result = run_once(server, pipeline)

    assert server.calls["fault"] == 3
    assert result.row_counts["deleted_records"] == 900
    assert keys_loaded(pipeline) == [(900, 900)]
    assert query(pipeline, f"SELECT count(*) FROM {DS}.recycle_bin") == [(900,)]


def test_retry_after_is_honoured(org, server, pipeline, monkeypatch):
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "5")  # dlt caps Retry-After by it
    seed(org, per_module=3)
    server.faults.add(r"/Contacts/deleted$", "429-retry-after", times=1)
    started = time.monotonic()
    run_once(server, pipeline)
    assert time.monotonic() - started >= 1.0  # Retry-After: 1, although back-off is 10 ms here
    assert server.calls["fault"] == 1
    assert keys_loaded(pipeline) == [(6, 6)]


def test_spent_daily_credits_stop_the_run_at_once_with_a_clear_message(org, server, pipeline):
    seed(org, per_module=5)
    server.faults.add(r"/Leads/deleted$", "429-credits", times=None)
    with pytest.raises(Exception) as raised:
        run_once(server, pipeline)
    code, message = explain(raised.value)
    assert code == 4 and "24-hour API credit allowance is spent" in message
    assert server.calls["fault"] == 1  # not retried: it would not clear for hours


def test_a_body_that_stays_broken_fails_naming_the_endpoint_and_loads_nothing(
    org, server, pipeline
):
    seed(org, per_module=5)
    server.faults.add(r"/Leads/deleted$", "truncate", times=None)
    with pytest.raises(Exception) as raised:
        run_once(server, pipeline)
    code, message = explain(raised.value)
    assert code == 4
    assert "GET /crm/v8/Leads/deleted" in message and "not Zoho's JSON" in message
    assert "deleted_records" not in pipeline.default_schema.tables  # not even the other module
    (failed,) = query(pipeline, f"SELECT succeeded, error FROM {DS}.runs")
    assert failed[0] is False and "GET /crm/v8/Leads/deleted" in failed[1]  # status sees it

    server.faults.clear()  # Zoho is back: the next run is complete
    run_once(server, pipeline)
    assert keys_loaded(pipeline) == [(10, 10)]


def test_a_persistent_outage_gives_up_in_bounded_time_and_the_next_run_completes(
    org, server, pipeline
):
    seed(org, per_module=5)
    server.faults.add(r"/crm/", "500", times=None)
    started = time.monotonic()
    with pytest.raises(Exception) as raised:
        run_once(server, pipeline)
    assert time.monotonic() - started < 30
    code, message = explain(raised.value)
    assert code == 4 and "INTERNAL_ERROR" in message and "next run retries" in message
    # 4 attempts (RUNTIME__REQUEST_MAX_ATTEMPTS in conftest) for each stream's first call:
    # 4 modules, and the first run's 4 module parts of the bin. No endless loop.
    assert server.calls["fault"] <= 4 * 8

    server.faults.clear()
    run_once(server, pipeline)
    assert keys_loaded(pipeline) == [(10, 10)]


@pytest.mark.parametrize("kind,code", [("403", "NO_PERMISSION"), ("scope", "OAUTH_SCOPE_MISMATCH")])
def test_a_module_without_permission_fails_alone(org, server, pipeline, kind, code):
    seed(org)
    delete(org, "Deals", "D1", NOW - timedelta(days=1))
    server.faults.add(r"/Leads/deleted$", "sleep", times=1)  # page 1 of Leads is read…
    server.faults.add(r"/Leads/deleted$", kind, times=None)  # …then Zoho refuses the rest

    result = run_once(server, pipeline)

    assert set(result.failed_modules) == {"Leads"}
    assert result.failed_modules["Leads"].code == code
    loaded = dict(query(pipeline, f"SELECT module, count(*) FROM {DS}.deleted_records GROUP BY 1"))
    assert loaded["Contacts"] == 450 and loaded["Deals"] == 1  # the others load completely
    failed = query(pipeline, f"SELECT succeeded, failed_modules FROM {DS}.runs")
    assert failed == [(False, f"Leads ({code})")]

    # Permission granted: the next run reads Leads from where it was, so nothing is skipped.
    server.faults.clear()
    again = run_once(server, pipeline)
    assert again.failed_modules == {}
    leads_headers = [h.get("If-Modified-Since") for _, p, h in server.requests if "/Leads/" in p]
    assert leads_headers[0] is None  # its cursor did not move past the unread pages
    assert (
        dict(query(pipeline, f"SELECT module, count(*) FROM {DS}.deleted_records GROUP BY 1"))[
            "Leads"
        ]
        == 450
    )


def test_max_concurrency_is_the_number_of_calls_in_flight(tmp_path):
    """dlt's extract pool follows `max_concurrency` (its default is 5 workers), so 12 means 12
    calls at once: 8 modules' lists and their parts of the bin are read side by side. The
    stand-in holds each call until `cap` are in flight (or gives up), so a busy machine that
    starts the readers slowly still shows what the run can reach."""
    org = Org()
    modules = ["Leads", "Contacts", "Deals", "Accounts", "Tasks", "Calls", "Notes", "Quotes"]
    add_standard_modules(org, modules, live_records=0)
    for module in modules:
        for n in range(300):
            delete(org, module, f"{module[:2]}{n:05d}", NOW - timedelta(minutes=n + 1))
    with StandinServer(org, latency=0.01) as server:
        for cap in (12, 2):
            pipeline = make_pipeline(
                destination=duckdb_destination(str(tmp_path / f"{cap}.duckdb")),
                pipelines_dir=str(tmp_path / f"pipelines{cap}"),
            )
            server.gather = cap
            result = run_once(server, pipeline, modules=modules, max_concurrency=cap)
            assert server.max_in_flight == cap
            assert result.row_counts["deleted_records"] == 8 * 300


def test_concurrency_toward_the_org_stays_under_max_concurrency(org, server, pipeline):
    for module in ("Leads", "Contacts", "Deals", "Accounts"):
        for n in range(600):
            delete(org, module, f"{module[0]}{n:05d}", NOW - timedelta(minutes=n + 1))
    server.latency = 0.02

    run_once(server, pipeline, max_concurrency=2)
    assert server.max_in_flight == 2  # modules in parallel, never above the cap

    server.reset_counts()
    run_once(server, pipeline, max_concurrency=1)
    assert server.max_in_flight == 1
    assert api_calls(server) == {"deleted": 4, "recycle_bin": 1}
