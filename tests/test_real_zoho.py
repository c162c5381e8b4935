"""Real Zoho beyond its pages: both error envelopes, 204s, a 429's wait in its body, throttled and
older token answers (see ../shared/zoho-docs/README.md, "What real Zoho does beyond the pages")."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from conftest import NOW, delete, query, run_once
from test_cli import cli

from pipelines.errors import explain
from sources.zoho_crm.auth import ZohoAuth
from sources.zoho_crm.transport import RetryingHttp
from zoho_standin import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN

DS = "zoho_crm_deleted"


def seed(org, per_module: int = 3) -> None:
    for module in ("Leads", "Contacts", "Deals"):
        for n in range(per_module):
            delete(org, module, f"{module[0]}{n:04d}", NOW - timedelta(hours=n + 1))


def loaded(pipeline) -> dict:
    return dict(query(pipeline, f"SELECT module, count(*) FROM {DS}.deleted_records GROUP BY 1"))


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("403-wrapped", "NO_PERMISSION"),  # {"data": [{"code": "NO_PERMISSION", ...}]}
        ("403-permissions", "NO_PERMISSION"),
        ("400-no-permission", "NO_PERMISSION"),
        ("400-authorization", "AUTHORIZATION_FAILED"),
    ],
)
def test_a_refusal_in_either_envelope_fails_its_module_alone(org, server, pipeline, kind, code):
    seed(org)
    server.faults.add(r"/Leads/deleted$", kind, times=None)

    result = run_once(server, pipeline)

    assert set(result.failed_modules) == {"Leads"}
    assert result.failed_modules["Leads"].code == code
    if kind in ("403-wrapped", "403-permissions"):
        assert "Crm_Implied_View_Leads" in str(result.failed_modules["Leads"])
    assert loaded(pipeline) == {"Contacts": 3, "Deals": 3}
    assert query(pipeline, f"SELECT count(*) FROM {DS}.recycle_bin") == [(9,)]


def test_a_refusal_wrapped_under_the_endpoints_own_key_fails_the_bin_alone(org, server, pipeline):
    seed(org)
    server.faults.add(r"/settings/recycle_bin$", "403-wrapped-bin", times=None)

    result = run_once(server, pipeline)

    assert set(result.failed_modules) == {"recycle_bin"}
    assert result.failed_modules["recycle_bin"].code == "NO_PERMISSION"
    assert loaded(pipeline) == {"Leads": 3, "Contacts": 3, "Deals": 3}


def test_a_wrapped_refusal_is_exit_1_naming_the_module_and_code(org, server, tmp_path):
    seed(org)
    server.faults.add(r"/Deals/deleted$", "403-wrapped", times=None)
    result = cli(server, tmp_path, "run")
    assert result.returncode == 1, result.stderr
    assert "FAILED module Deals: NO_PERMISSION" in result.stdout
    assert "deleted_records                  6 rows" in result.stdout


def test_an_unknown_module_answer_wrapped_in_data_is_a_config_error(org, server, pipeline):
    seed(org)
    server.faults.add(r"/Deals/deleted$", "400-invalid-module-wrapped", times=None)
    with pytest.raises(Exception) as raised:
        run_once(server, pipeline)
    code, message = explain(raised.value)
    assert code == 2 and "module 'Deals'" in message


def test_a_plain_204_is_nothing_there_and_the_next_run_reads_the_module(org, server, pipeline):
    seed(org)
    server.faults.add(r"/Leads/deleted$", "204", times=1)

    first = run_once(server, pipeline)
    assert first.failed_modules == {} and loaded(pipeline) == {"Contacts": 3, "Deals": 3}

    run_once(server, pipeline)
    assert loaded(pipeline) == {"Leads": 3, "Contacts": 3, "Deals": 3}


def test_a_429_with_its_wait_only_in_the_body_is_honoured(org, server, pipeline, monkeypatch):
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "5")  # the cap on any wait
    seed(org)
    # Zoho answers 429 {"details": {"retry_after": 1}} and every call within that second alike;
    # the suite's back-off (10 ms, 4 attempts) alone would spend every attempt inside it.
    server.faults.add(r"/Contacts/deleted$", "429-details", times=1, seconds=1)

    result = run_once(server, pipeline, max_concurrency=1)

    assert result.failed_modules == {}
    assert server.calls["fault"] == 1  # asked again only once the wait was over
    assert loaded(pipeline) == {"Leads": 3, "Contacts": 3, "Deals": 3}


def test_throttled_token_requests_are_asked_again_twice_then_named(org, server, pipeline):
    seed(org)
    server.faults.add(r"/oauth/v2/token$", "token-throttled", times=None)

    with pytest.raises(Exception) as raised:
        run_once(server, pipeline, token_retry_delay=0.01)

    code, message = explain(raised.value)
    assert code == 4
    assert "throttling token requests" in message and "30 minutes" in message
    assert "credentials" not in message.replace("not a credentials problem", "")
    assert server.calls["fault"] == 3  # one request and two retries, then no more
    assert {route for route, n in server.calls.items() if n} == {"fault"}  # no API call


def test_throttled_token_requests_exit_4_in_one_line(org, server, tmp_path):
    server.faults.add(r"/oauth/v2/token$", "token-throttled", times=None)
    result = cli(server, tmp_path, "run", SOURCES__ZOHO_CRM__TOKEN_RETRY_DELAY="0.01")
    assert result.returncode == 4
    assert result.stderr.strip().count("\n") == 0 and "throttling token requests" in result.stderr
    assert server.calls["fault"] == 3


def test_one_throttled_answer_localised_and_http_200_is_waited_out(org, server, pipeline):
    seed(org)
    server.faults.add(r"/oauth/v2/token$", "token-throttled-200", times=1)

    result = run_once(server, pipeline, token_retry_delay=0.01)

    assert result.failed_modules == {} and server.calls["fault"] == 1
    assert loaded(pipeline) == {"Leads": 3, "Contacts": 3, "Deals": 3}
    assert server.calls["token"] == 1  # then one token served every thread of the run


def test_an_older_token_answer_gets_its_lifetime_in_seconds(org, server, pipeline):
    server.faults.add(r"/oauth/v2/token$", "token-old-form", times=None)
    auth = ZohoAuth(server.url, CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, RetryingHttp(1))
    before = time.time()
    auth.token()
    assert before + 3000 < auth.expires_at <= time.time() + 3600  # not 3,600,000 seconds

    seed(org)
    server.reset_counts()
    run_once(server, pipeline)
    assert server.calls["token"] == 1 and loaded(pipeline)["Leads"] == 3
