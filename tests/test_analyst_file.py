"""The analyst file: readers never stop a run, and they always see a complete load."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

import duckdb
import pytest
from conftest import (
    ANALYST_FILE,
    DATASET_NAME,
    DUCKDB_FILE,
    NOW,
    analyst,
    delete,
    env_for,
    run_once,
)
from test_cli import cli, in_process  # noqa: F401 - in_process is a fixture

from pipelines import analyst_file
from pipelines.analyst_file import copy_file, publish_analyst_file

PARTIAL = f".{ANALYST_FILE}.publishing"  # what a publishing run writes before its rename
HOLDER = """
import sys, duckdb
db = duckdb.connect(sys.argv[1], read_only=True)
for _ in sys.stdin:  # one count per line read, from the version this connection opened
    print(db.sql("SELECT count(*) FROM zoho_crm_deleted.deleted_records").fetchone()[0], flush=True)
"""
# `zoho-deleted run`, killed with SIGKILL halfway through copying the analyst file
KILLED_WHILE_PUBLISHING = """
import os, signal, sys
import pipelines.analyst_file as analyst_file
from pipelines.cli import main

def half_then_killed(source, copy):
    copy.write(source.read(os.fstat(source.fileno()).st_size // 2))
    copy.flush()
    os.kill(os.getpid(), signal.SIGKILL)

analyst_file.copy_file = half_then_killed
sys.exit(main(["run"]))
"""


def count(path: Path) -> int:
    with analyst(path) as db:
        return db.sql("SELECT count(*) FROM zoho_crm_deleted.deleted_records").fetchone()[0]


def test_a_reader_holding_the_analyst_file_never_stops_a_run(org, server, tmp_path):
    for n in range(3):
        delete(org, "Leads", f"10{n}", NOW - timedelta(days=1))
    first = cli(server, tmp_path, "run")
    assert first.returncode == 0, first.stderr
    assert f"analyst file {tmp_path / ANALYST_FILE}: " in first.stdout
    before = json.loads(cli(server, tmp_path, "status", "--json").stdout)
    assert before["analyst_file"] == str(tmp_path / ANALYST_FILE)

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / ANALYST_FILE)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:

        def held_count() -> int:
            holder.stdin.write("\n")
            holder.stdin.flush()
            return int(holder.stdout.readline())

        assert held_count() == 3  # the reader holds the file open from here on
        for n in range(2):
            delete(org, "Contacts", f"20{n}", NOW - timedelta(hours=1))
        second = cli(server, tmp_path, "run")
        assert second.returncode == 0, second.stderr
        assert held_count() == 3  # an open connection keeps the version it opened
        assert count(tmp_path / ANALYST_FILE) == 5  # a new one sees the new load
        status = cli(server, tmp_path, "status")
        assert status.returncode == 0, status.stderr
        assert f"Analysts open {tmp_path / ANALYST_FILE} (read-only" in status.stdout
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert holder.returncode == 0


def test_a_run_killed_while_publishing_leaves_the_previous_analyst_file(org, server, tmp_path):
    for n in range(3):
        delete(org, "Leads", f"10{n}", NOW - timedelta(days=1))
    assert cli(server, tmp_path, "run").returncode == 0
    for n in range(2):
        delete(org, "Contacts", f"20{n}", NOW - timedelta(hours=1))
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WHILE_PUBLISHING],
        cwd=tmp_path,
        env=env_for(server, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (tmp_path / PARTIAL).exists()  # the half-written copy, never renamed
    assert count(tmp_path / ANALYST_FILE) == 3  # the previous load, whole

    after = cli(server, tmp_path, "run")
    assert after.returncode == 0, after.stderr
    assert not (tmp_path / PARTIAL).exists()
    assert count(tmp_path / ANALYST_FILE) == 5
    pipeline_mode = os.stat(tmp_path / DUCKDB_FILE).st_mode & 0o777
    assert os.stat(tmp_path / ANALYST_FILE).st_mode & 0o777 == pipeline_mode & 0o444  # no writer


def test_a_copy_that_cannot_be_published_fails_the_run_in_one_line(
    org, server, tmp_path, in_process, monkeypatch  # noqa: F811
):
    delete(org, "Leads", "100", NOW - timedelta(days=1))
    assert in_process("run")[0] == 0
    delete(org, "Leads", "101", NOW - timedelta(days=1))

    def disk_full(source: BinaryIO, copy: BinaryIO) -> None:
        copy.write(source.read(4096))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(analyst_file, "copy_file", disk_full)
    code, _, err = in_process("run")
    assert code == 1
    assert f"could not publish the analyst file {tmp_path / ANALYST_FILE}" in err
    assert "No space left on device" in err and "\n" not in err.strip()
    assert not (tmp_path / PARTIAL).exists()
    assert count(tmp_path / ANALYST_FILE) == 1  # the previous load
    monkeypatch.setattr(analyst_file, "copy_file", copy_file)
    assert in_process("run")[0] == 0  # the next run publishes what that one loaded
    assert count(tmp_path / ANALYST_FILE) == 2


@pytest.mark.parametrize(
    ("configured", "words"),
    [
        ("elsewhere/zoho_crm_deleted.duckdb", ["names its DuckDB catalog zoho_crm_deleted"]),
        (DUCKDB_FILE, ["is the pipeline's own DuckDB file"]),
        ("missing/zoho.duckdb", ["the folder", "does not exist"]),
        ("elsewhere", ["is a directory", "set it to a file"]),
    ],
)
def test_a_misconfigured_analyst_file_stops_the_run_before_it_loads(
    in_process, tmp_path, configured, words  # noqa: F811
):
    (tmp_path / "elsewhere").mkdir()
    code, out, err = in_process("run", DESTINATION__DUCKDB__ANALYST_FILE=configured)
    assert code == 2 and "\n" not in err.strip()
    assert f"destination.duckdb.analyst_file '{configured}'" in err
    for word in words:
        assert word in err
    assert "deleted_records" not in out


def test_the_analyst_file_can_be_put_elsewhere(org, server, tmp_path, in_process):  # noqa: F811
    delete(org, "Leads", "100", NOW - timedelta(days=1))
    (tmp_path / "shared").mkdir()
    configured = {"DESTINATION__DUCKDB__ANALYST_FILE": "shared/zoho.duckdb"}
    assert in_process("run", **configured)[0] == 0
    code, out, _ = in_process("status", "--json", **configured)
    assert code == 0 and json.loads(out)["analyst_file"] == str(tmp_path / "shared/zoho.duckdb")
    assert count(tmp_path / "shared/zoho.duckdb") == 1
    assert not (tmp_path / ANALYST_FILE).exists()


def test_what_the_write_ahead_log_holds_reaches_the_copy(org, server, pipeline, tmp_path):
    delete(org, "Leads", "100", NOW - timedelta(days=1))
    run_once(server, pipeline)
    with duckdb.connect(str(tmp_path / DUCKDB_FILE)) as db:  # leaves its commit in the WAL
        db.execute("PRAGMA disable_checkpoint_on_shutdown")
        db.execute(f"CREATE TABLE {DATASET_NAME}.notes AS SELECT 42 AS answer")
    assert os.path.getsize(tmp_path / f"{DUCKDB_FILE}.wal")
    publish_analyst_file(pipeline)
    with analyst(tmp_path / ANALYST_FILE) as db:
        assert db.sql(f"SELECT answer FROM {DATASET_NAME}.notes").fetchall() == [(42,)]


def test_the_copy_falls_back_to_user_space_where_the_kernel_cannot_copy(tmp_path, monkeypatch):
    source = tmp_path / "source"
    source.write_bytes(os.urandom(300_000))

    def cross_device(*_: object) -> int:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(os, "copy_file_range", cross_device)
    with source.open("rb") as read, (tmp_path / "copy").open("wb") as write:
        copy_file(read, write)
    assert (tmp_path / "copy").read_bytes() == source.read_bytes()

