"""Readers (`status`, `incidents`, `report`, `restore`'s dry run) never disturb a run and never
create anything; what stops runs is one line with the fix. Commands run as subprocesses
against the stand-in, as a scheduler and a monitor run them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from conftest import ANALYST_FILE, DUCKDB_FILE, NOW, delete, env_for, run_once
from test_cli import ZOHO_DELETED, cli
from test_postgres import URL as PG_URL
from test_postgres import pg_pipeline  # noqa: F401 - a fixture

from zoho_standin import StandinServer

HOLDER = "import duckdb, sys; db = duckdb.connect(sys.argv[1]); print('held', flush=True); input()"
READERS = (
    ["status"],
    ["status", "--json"],
    ["incidents"],
    ["restore", "--module", "Leads"],
    ["report", "--output", "r.html"],
)


def tree(root: Path) -> Dict[str, Tuple[int, int]]:
    """Every path under `root` with its size and modification time."""
    found = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        found[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return found


def test_status_polled_through_runs_never_disturbs_them(org, tmp_path):
    """A monitor polls `status` and `status --json` while runs load: every run exits 0 and
    lands everything, every status answers 0 (healthy: nothing is wrong, no captures stopped),
    and some answered from the analyst file while a run held the DuckDB file."""
    with StandinServer(org, latency=0.4) as server:  # each run holds the file for seconds
        assert cli(server, tmp_path, "run").returncode == 0  # before it: no warehouse, exit 2
        runs: List[int] = []
        answers: List[Tuple[int, str, str]] = []
        overlapped = 0
        for number in range(3):
            for n in range(5):
                delete(org, "Leads", f"{number}0{n}", NOW - timedelta(hours=3 - number, minutes=n))
            run = subprocess.Popen(
                [ZOHO_DELETED, "run"],
                cwd=tmp_path,
                env=env_for(server, tmp_path),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            while run.poll() is None:
                for argv in (["status"], ["status", "--json"]):
                    status = cli(server, tmp_path, *argv)
                    answers.append((status.returncode, status.stdout, status.stderr))
                    if argv == ["status", "--json"] and status.returncode in (0, 1):
                        overlapped += json.loads(status.stdout).get("read_from") is not None
                    else:
                        overlapped += "A run is loading the DuckDB file" in status.stdout
            out, err = run.communicate()
            runs.append(run.returncode)
            assert run.returncode == 0, out + err
        assert runs == [0, 0, 0]
        assert {code for code, _, _ in answers} <= {0, 1}, answers  # as documented
        assert {code for code, _, _ in answers} == {0}, answers  # runs that succeed are healthy
        assert not any("captures have stopped" in out for _, out, _ in answers)
        assert not any("Traceback" in err for _, _, err in answers)
        assert overlapped >= 2, answers  # they did overlap runs, and read the analyst file
        final = cli(server, tmp_path, "status", "--json")
        assert final.returncode == 0, final.stdout + final.stderr
        landed = json.loads(final.stdout)["modules"]["Leads"]["recycle"]
        assert landed == sum(1 for (m, _), e in org.entries.items() if m == "Leads")


@pytest.mark.parametrize("argv", READERS, ids=" ".join)
def test_a_reader_with_no_warehouse_says_where_it_looked_and_creates_nothing(
    server, tmp_path, argv
):
    (tmp_path / "zoho_crm_deleted_analyst.duckdb").write_text("")  # an old version's leftover
    before = tree(tmp_path)
    result = cli(server, tmp_path, *argv)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"no warehouse at {tmp_path / DUCKDB_FILE}" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert tree(tmp_path) == before  # no DuckDB file, no lock, no dlt folder


def test_a_reader_renames_no_old_named_file(server, tmp_path):
    env = {"DESTINATION__DUCKDB__CREDENTIALS": ""}  # the default file in the working directory
    (tmp_path / "zoho_crm_deleted.duckdb").write_bytes(b"")
    before = tree(tmp_path)
    result = cli(server, tmp_path, "status", **env)
    assert result.returncode == 2
    assert "zoho_crm_deleted.duckdb of an earlier version is there" in result.stderr
    assert tree(tmp_path) == before


def test_readers_after_a_run_change_no_file(org, server, tmp_path):
    delete(org, "Leads", "101", NOW - timedelta(days=1))
    assert cli(server, tmp_path, "run").returncode == 0
    before = tree(tmp_path)
    for argv in READERS[:-1]:
        result = cli(server, tmp_path, *argv)
        assert result.returncode == 0, (argv, result.stdout, result.stderr)
    assert tree(tmp_path) == before  # the pipeline's folder, files and locks untouched


@pytest.mark.parametrize("bad", ["o'rg", "../x"])
@pytest.mark.parametrize(
    "argv", [["run"], *READERS, ["incidents", "ack", "abc"], ["restore", "--ids", "1", "--yes"]]
)
def test_a_bad_org_name_is_exit_2_on_every_command_and_leaves_nothing(
    server, tmp_path, bad, argv
):
    before = tree(tmp_path)
    result = cli(server, tmp_path, *argv, "--org", bad)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"org {bad!r} is not a valid org name" in result.stderr
    assert result.stderr.count("\n") == 1
    assert tree(tmp_path) == before


def test_a_lock_file_runs_cannot_open_is_exit_2_and_status_unhealthy(org, server, tmp_path):
    delete(org, "Leads", "101", NOW - timedelta(days=1))
    assert cli(server, tmp_path, "run").returncode == 0
    lock = tmp_path / f"{DUCKDB_FILE}.lock"
    lock.unlink()
    lock.mkdir()  # as deterministic as a file of another user, for root too: open() fails
    result = cli(server, tmp_path, "run")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"runs cannot open their lock file {lock} (Is a directory)" in result.stderr
    assert "Traceback" not in result.stderr
    status = cli(server, tmp_path, "status")
    assert status.returncode == 1, status.stdout
    assert f"UNHEALTHY: runs cannot open their lock file {lock}" in status.stdout


def _as_nobody() -> List[str]:
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to run a command as another user")
    return [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def test_a_duckdb_file_of_another_user_is_exit_2_and_status_unhealthy(org, server):
    """The file belongs to root, runs and status run as nobody (a monitor's user)."""
    prefix = _as_nobody()
    work = Path(tempfile.mkdtemp(prefix="zoho-readers-"))
    try:
        work.chmod(0o777)
        delete(org, "Leads", "101", NOW - timedelta(days=1))
        env = env_for(server, work, DLT_DATA_DIR=str(work / "dlt"))
        first = subprocess.run(
            [ZOHO_DELETED, "run"], cwd=work, env=env, capture_output=True, text=True
        )
        assert first.returncode == 0, first.stderr
        for path in work.rglob("*"):  # nobody may enter dlt's folder, not write the files
            path.chmod(0o777 if path.is_dir() else 0o644)

        def as_nobody(*argv: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [*prefix, ZOHO_DELETED, *argv], cwd=work, env=env, capture_output=True, text=True
            )

        pipeline_lock = work / "dlt" / "pipelines" / ".zoho_crm.lock"
        result = as_nobody("run")  # first the pipeline's lock file, root's
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"runs cannot open their lock file {pipeline_lock} (Permission denied) as " \
            "nobody: give nobody read and write access to it" in result.stderr
        status = as_nobody("status")
        assert status.returncode == 1, status.stdout + status.stderr
        assert f"UNHEALTHY: runs cannot open their lock file {work / DUCKDB_FILE}.lock" \
            in status.stdout
        for lock in work.rglob("*.lock"):
            lock.chmod(0o666)
        result = as_nobody("run")  # then the DuckDB file, root's
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"runs as nobody cannot load into the DuckDB file {work / DUCKDB_FILE}: it is " \
            "read-only for nobody; give nobody write access" in result.stderr
        assert result.stderr.count("\n") == 1
        status = as_nobody("status")
        assert status.returncode == 1, status.stdout + status.stderr
        assert f"UNHEALTHY: runs as nobody cannot load into the DuckDB file {work / DUCKDB_FILE}" \
            in status.stdout
    finally:
        shutil.rmtree(work)


def test_a_damaged_duckdb_file_names_the_analyst_file_and_recovers_from_it(
    org, server, tmp_path
):
    for n in range(3):
        delete(org, "Leads", f"10{n}", NOW - timedelta(days=1))
    assert cli(server, tmp_path, "run").returncode == 0
    database = tmp_path / DUCKDB_FILE
    with open(database, "r+b") as damaged:
        damaged.write(b"\0" * 8192)  # its headers gone
    for argv in (["run"], ["status"], ["status", "--json"], ["incidents"]):
        result = cli(server, tmp_path, *argv)
        assert result.returncode == 2, (argv, result.stdout, result.stderr)
        line = result.stderr.strip()
        assert "\n" not in line and "Traceback" not in line
        assert f"the DuckDB file {database} is damaged" in line
        assert f"the analyst file {tmp_path / ANALYST_FILE} is the last good copy" in line
    # the recovery the line gives: the damaged file aside, the copy back, state from the copy
    database.rename(tmp_path / f"{DUCKDB_FILE}.damaged")
    shutil.copyfile(tmp_path / ANALYST_FILE, database)
    database.chmod(0o644)
    shutil.rmtree(tmp_path / "dlt" / "pipelines" / "zoho_crm")
    delete(org, "Leads", "109", NOW - timedelta(hours=1))
    again = cli(server, tmp_path, "run")
    assert again.returncode == 0, again.stdout + again.stderr
    status = cli(server, tmp_path, "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["modules"]["Leads"]["recycle"] == 4


def test_status_during_the_first_run_is_unhealthy_and_leaves_the_run_alone(
    org, tmp_path
):
    """During the very first run there is no analyst file yet: status is unhealthy (1),
    saying so, and the run is not disturbed."""
    delete(org, "Leads", "101", NOW - timedelta(days=1))
    with StandinServer(org, latency=2.0) as server:  # seconds of Zoho calls under its lock
        run = subprocess.Popen(
            [ZOHO_DELETED, "run"], cwd=tmp_path, env=env_for(server, tmp_path), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not (tmp_path / DUCKDB_FILE).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        status = cli(server, tmp_path, "status")
        out, err = run.communicate()
    assert run.returncode == 0, out + err
    assert status.returncode == 1, status.stdout + status.stderr
    assert "no analyst file" in status.stdout and "has been published yet" in status.stdout


@pytest.mark.skipif(not PG_URL, reason="no PostgreSQL server: set ZOHO_TEST_POSTGRES")
def test_readers_on_postgres_read_through_dlt_and_create_nothing(
    org, server, tmp_path, pg_pipeline  # noqa: F811
):
    delete(org, "Leads", "101", NOW - timedelta(days=1))
    run_once(server, pg_pipeline)
    reader = tmp_path / "reader"  # a monitor's machine: no working folder of the pipeline
    reader.mkdir()
    env = env_for(server, reader, DESTINATION__POSTGRES__CREDENTIALS=PG_URL)
    for argv in (["status", "--json"], ["incidents"], ["restore", "--module", "Leads"]):
        result = subprocess.run(
            [ZOHO_DELETED, *argv, "--destination", "postgres"],
            cwd=reader, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert result.returncode == 0, (argv, result.stdout, result.stderr)
        if argv[0] == "status":
            assert json.loads(result.stdout)["modules"]["Leads"]["recycle"] == 1
    assert not any(reader.iterdir())


def test_status_reads_the_analyst_file_while_another_process_holds_the_duckdb_file(
    org, server, tmp_path
):
    delete(org, "Leads", "101", NOW - timedelta(days=1))
    assert cli(server, tmp_path, "run").returncode == 0
    holder = subprocess.Popen(  # a DuckDB shell left open on the pipeline's own file
        [sys.executable, "-c", HOLDER, str(tmp_path / DUCKDB_FILE)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "held\n"
        status = cli(server, tmp_path, "status")
        as_json = cli(server, tmp_path, "status", "--json")
    finally:
        holder.communicate("\n")
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.startswith(
        "Another process has the DuckDB file open: this reads the analyst file "
        f"{tmp_path / ANALYST_FILE}, the last successful load, published 0 min ago"
    )
    assert as_json.returncode == 0
    why = json.loads(as_json.stdout)["read_from"]["why"]
    assert why == "another process has the DuckDB file open"
