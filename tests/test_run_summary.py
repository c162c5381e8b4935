"""What a run says it did: rows landed (and repeats merged), what loaded before it stopped, and
a run whose analyst file could not be published."""

from __future__ import annotations

import errno
import json
import os
import re
from datetime import timedelta
from typing import BinaryIO

import duckdb
from conftest import ANALYST_FILE, DUCKDB_FILE, NOW, delete
from test_cli import cli, in_process  # noqa: F401 - a fixture

from pipelines import analyst_file
from pipelines.analyst_file import copy_file

DS = "zoho_crm_deleted"


def counts(path, sql: str) -> list:
    with duckdb.connect(str(path), read_only=True) as db:
        return db.sql(sql).fetchall()


def test_the_summary_counts_rows_landed_and_the_repeats_merged(org, server, tmp_path):
    for n in range(300):
        delete(org, "Leads", f"5{n:05d}", NOW - timedelta(minutes=n + 1))
    # A deletion while the run pages Leads: page 2 repeats the last entry of page 1.
    server.faults.add(r"/Leads/deleted$", "new-deletion", times=1, query="page_token=")
    result = cli(server, tmp_path, "run")
    assert result.returncode == 0, result.stderr
    summary = "deleted_records                300 rows (301 read, 1 merged as repeats)"
    assert summary in result.stdout
    database = tmp_path / DUCKDB_FILE
    assert counts(database, f"SELECT count(*) FROM {DS}.deleted_records") == [(300,)]
    assert counts(database, f"SELECT deleted_records_rows FROM {DS}.runs") == [(300,)]


def test_spent_credits_after_some_packages_say_what_loaded(org, server, tmp_path):
    for n in range(1_000):
        delete(org, "Leads", f"6{n:05d}", NOW - timedelta(minutes=n + 1))
    chunked = {"SOURCES__ZOHO_CRM__LOAD_CHUNK_ROWS": "200"}  # a page a package
    server.faults.add(r"/Leads/deleted$", "sleep", times=2)  # two packages load…
    server.faults.add(r"/Leads/deleted$", "429-credits", times=None)  # …then credits are gone
    stopped = cli(server, tmp_path, "run", **chunked)

    assert stopped.returncode == 4, stopped.stderr
    line = stopped.stderr.strip()
    assert "\n" not in line and "24-hour API credit allowance is spent" in line
    assert "nothing from this run was loaded" not in line
    database = tmp_path / DUCKDB_FILE
    [(records,)] = counts(database, f"SELECT count(*) FROM {DS}.deleted_records")
    [(entries,)] = counts(database, f"SELECT count(*) FROM {DS}.recycle_bin")
    assert 0 < records < 1_000
    loaded = re.search(r"this run loaded (\d+) rows \((.*?)\) in (\d+) load package", line)
    assert loaded, line
    assert f"deleted_records {records}" in loaded[2] and f"recycle_bin {entries}" in loaded[2]
    assert int(loaded[1]) == records + entries and int(loaded[3]) >= 2
    assert "the next run goes on from where this one stopped" in line
    [(error,)] = counts(database, f"SELECT error FROM {DS}.runs")
    assert error == line.removeprefix("zoho-deleted: ")

    server.faults.clear()
    again = cli(server, tmp_path, "run", **chunked)
    assert again.returncode == 0, again.stderr
    assert counts(database, f"SELECT count(*) FROM {DS}.deleted_records") == [(1_000,)]


def test_an_unpublished_analyst_file_still_prints_the_summary_and_status_says_so(
    org, server, tmp_path, in_process, monkeypatch  # noqa: F811
):
    delete(org, "Leads", "100", NOW - timedelta(days=1))
    assert in_process("run")[0] == 0
    delete(org, "Leads", "101", NOW - timedelta(days=1))

    def disk_full(source: BinaryIO, copy: BinaryIO) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(analyst_file, "copy_file", disk_full)
    code, out, err = in_process("run")
    assert code == 1
    assert "deleted_records                  1 rows" in out and "API calls: " in out
    assert err.startswith("zoho-deleted: the run loaded its data, but could not publish")
    assert err.count("\n") == 1

    code, out, _ = in_process("status")
    stale = f"UNHEALTHY: the analyst file {tmp_path / ANALYST_FILE} is older than the last"
    assert code == 1 and stale in out, out
    assert "run `zoho-deleted run`, which publishes it again" in out
    code, out, _ = in_process("status", "--json")
    assert code == 1 and json.loads(out)["analyst_file_stale"] is True

    monkeypatch.setattr(analyst_file, "copy_file", copy_file)
    assert in_process("run")[0] == 0
    code, out, _ = in_process("status")
    assert code == 0 and "Healthy." in out, out
