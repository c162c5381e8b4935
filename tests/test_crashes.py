"""Killed runs, runs started at once, and secrets that must never leak."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import ANALYST_FILE, CLIENT_SECRET, NOW, REFRESH_TOKEN, analyst, delete, env_for
from test_cli import ZOHO_DELETED, cli

RECORDS = 1_200  # per module: 6 pages each


def seed(org) -> int:
    for module in ("Leads", "Contacts"):
        for n in range(RECORDS):
            delete(org, module, f"{module[0]}{n:05d}", NOW - timedelta(minutes=n + 1))
    return 2 * RECORDS


def start_run(server, tmp_path: Path, *argv: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [ZOHO_DELETED, "run", *argv],
        cwd=tmp_path,
        env=env_for(server, tmp_path, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_calls(server, route: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while server.calls[route] < count:
        assert time.monotonic() < deadline, f"only {server.calls[route]} {route} calls"
        time.sleep(0.005)


def loaded(tmp_path: Path) -> tuple:
    with analyst(tmp_path / ANALYST_FILE) as db:
        records = db.sql(
            "SELECT count(*), count(DISTINCT (module, id)) FROM zoho_crm_deleted.deleted_records"
        ).fetchall()[0]
        bin_ = db.sql(
            "SELECT count(*), count(DISTINCT id) FROM zoho_crm_deleted.recycle_bin"
        ).fetchall()[0]
    return records, bin_


@pytest.mark.parametrize("kill_after_calls", [3, 13])  # mid-extract; after the last page
def test_a_run_killed_with_sigkill_is_completed_by_the_next(
    org, server, tmp_path, kill_after_calls
):
    total = seed(org)
    server.latency = 0.01
    victim = start_run(server, tmp_path)
    wait_for_calls(server, "deleted", kill_after_calls)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL

    server.latency = 0.0
    rerun = cli(server, tmp_path, "run")
    assert rerun.returncode == 0, rerun.stderr
    assert loaded(tmp_path) == ((total, total), (total, total))
    # And another run after that finds nothing new: state matches what was loaded.
    server.reset_counts()
    third = cli(server, tmp_path, "run")
    assert third.returncode == 0
    assert "API calls: 5 (deleted 4, recycle_bin 1)" in third.stdout  # modules remembered
    assert loaded(tmp_path) == ((total, total), (total, total))


def test_two_runs_at_once_the_second_exits_with_a_clear_message(org, server, tmp_path):
    total = seed(org)
    server.latency = 0.05
    first = start_run(server, tmp_path)
    wait_for_calls(server, "deleted", 1)
    second = cli(server, tmp_path, "run")
    assert second.returncode == 5
    assert "another run of pipeline zoho_crm is in progress" in second.stderr
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert loaded(tmp_path) == ((total, total), (total, total))


def contents(path: Path) -> bytes:
    """A file's bytes, decompressed where dlt gzipped it."""
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def test_secrets_and_tokens_never_leak(org, server, tmp_path):
    seed(org)
    server.faults.add(r"/Leads/deleted$", "expire-token", times=1)  # mint a second token
    server.faults.add(r"/Contacts/deleted$", "500", times=1)
    debug = {"RUNTIME__LOG_LEVEL": "DEBUG"}
    outputs = [
        cli(server, tmp_path, "--verbose", "run", **debug),
        cli(server, tmp_path, "status", "--verbose", **debug),
        cli(
            server,
            tmp_path,
            "run",
            SOURCES__ZOHO_CRM__CREDENTIALS__CLIENT_SECRET="x" + CLIENT_SECRET,
        ),
        cli(
            server,
            tmp_path,
            "run",
            SOURCES__ZOHO_CRM__CREDENTIALS__REFRESH_TOKEN="x" + REFRESH_TOKEN,
        ),
    ]
    assert outputs[0].returncode == 0, outputs[0].stderr
    assert outputs[2].returncode == outputs[3].returncode == 3
    secrets = [CLIENT_SECRET, REFRESH_TOKEN, *server.issued_tokens()]
    assert len(secrets) >= 4
    for result in outputs:
        for secret in secrets:
            assert secret not in result.stdout and secret not in result.stderr
    leaked = [
        (path, secret)
        for path in tmp_path.rglob("*")
        if path.is_file()
        for secret in secrets
        if secret.encode() in contents(path)
    ]
    assert leaked == []
    assert len(list(tmp_path.rglob("*"))) > 10  # the working folder and trace were searched


def test_a_run_killed_between_packages_resumes_where_it_stopped(org, server, tmp_path):
    total = seed(org)  # 6 pages a module
    chunked = {"SOURCES__ZOHO_CRM__LOAD_CHUNK_ROWS": "400"}  # a page a list and package
    server.latency = 0.02
    victim = start_run(server, tmp_path, **chunked)
    wait_for_calls(server, "deleted", 8)  # the first packages are in, the pass is not done
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    read_before = server.calls["deleted"]

    server.latency = 0.0
    server.reset_counts()
    rerun = cli(server, tmp_path, "run", **chunked)
    assert rerun.returncode == 0, rerun.stderr
    assert loaded(tmp_path) == ((total, total), (total, total))
    # it went on from the last committed package instead of reading every page again
    assert server.calls["deleted"] < 2 * 6 + 2  # 12 pages and the two empty modules
    assert server.calls["deleted"] + read_before > 14


def test_a_pass_resumed_after_its_page_tokens_expired_reads_its_lists_again(
    org, server, tmp_path
):
    total = seed(org)
    chunked = {"SOURCES__ZOHO_CRM__LOAD_CHUNK_ROWS": "400"}  # a page a list and package
    server.latency = 0.02
    victim = start_run(server, tmp_path, **chunked)
    wait_for_calls(server, "deleted", 8)  # the pass is cut off mid-way, page tokens in state
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)

    # A day later Zoho no longer takes the tokens the unfinished pass holds.
    server.latency = 0.0
    for module in ("Leads", "Contacts"):
        server.faults.add(
            rf"/{module}/deleted$", "400-page-token-expired", times=1, query="page_token="
        )
    rerun = cli(server, tmp_path, "run", **chunked)

    assert rerun.returncode == 0, rerun.stderr
    assert server.faults.take("/crm/v8/Leads/deleted", "page_token=x") is None  # both spent
    assert server.faults.take("/crm/v8/Contacts/deleted", "page_token=x") is None
    assert loaded(tmp_path) == ((total, total), (total, total))  # all of it, nothing doubled
    again = cli(server, tmp_path, "run")
    assert again.returncode == 0, again.stderr
    assert loaded(tmp_path) == ((total, total), (total, total))
