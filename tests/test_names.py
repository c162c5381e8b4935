"""Names that never clash: any DuckDB client and dlt's own tools open the warehouse as it is,
and what an earlier version left under the old names moves by itself, losing nothing."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Dict

import dlt
import duckdb
import pytest
from conftest import ANALYST_FILE, DATASET_NAME, DUCKDB_FILE, NOW, delete, env_for, source_args
from test_cli import in_process  # noqa: F401 - a fixture

from pipelines.duckdb_file import duckdb_destination
from pipelines.names import old_pipeline_name
from pipelines.run import run
from sources.zoho_crm import zoho_crm

BIN = Path(sys.executable).parent
OLD_FILE = "zoho_crm_deleted.duckdb"  # what earlier versions named the file and the pipeline
OLD_ANALYST_FILE = "zoho_crm_deleted_analyst.duckdb"
ATTACH = """
import dlt
print(dlt.attach("zoho_crm").dataset()["deleted_records"].arrow().num_rows)
"""


def default_env(server, tmp_path: Path) -> Dict[str, str]:
    """The stand-in's config with no DuckDB file configured: the default one, in the cwd."""
    env = env_for(server, tmp_path)
    del env["DESTINATION__DUCKDB__CREDENTIALS"]
    return env


def command(argv, cwd: Path, env: Dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def zoho_run(server, tmp_path: Path) -> subprocess.CompletedProcess:
    return command([str(BIN / "zoho-deleted"), "run"], tmp_path, default_env(server, tmp_path))


def counts(path: Path) -> tuple:
    """(rows, distinct keys) of deleted_records, on a plain DuckDB connection to the file."""
    with duckdb.connect(str(path), read_only=True) as db:
        return db.sql(
            "SELECT count(*), count(DISTINCT (org, module, id)) "
            "FROM zoho_crm_deleted.deleted_records"
        ).fetchone()


def loaded_rows(stdout: str, table: str) -> int:
    return int(re.search(rf"  {table} +(\d+) rows", stdout)[1])


def test_any_duckdb_client_and_dlts_tools_open_the_warehouse(org, server, tmp_path):
    for n in range(3):
        delete(org, "Leads", f"10{n}", NOW - timedelta(days=1))
    first = zoho_run(server, tmp_path)
    assert first.returncode == 0, first.stderr
    assert counts(tmp_path / DUCKDB_FILE) == (3, 3)  # plain connect, no USE, no ATTACH

    env = default_env(server, tmp_path)
    elsewhere = tmp_path / "elsewhere"  # no project code, another working directory
    elsewhere.mkdir()
    info = command([str(BIN / "dlt"), "pipeline", "zoho_crm", "info"], elsewhere, env)
    assert info.returncode == 0, info.stderr
    assert f"dataset_name: {DATASET_NAME}" in info.stdout
    trace = command([str(BIN / "dlt"), "pipeline", "zoho_crm", "trace"], elsewhere, env)
    assert trace.returncode == 0 and "COMPLETED" in trace.stdout, trace.stderr
    attached = command([sys.executable, "-c", ATTACH], elsewhere, env)
    assert attached.returncode == 0, attached.stderr
    assert attached.stdout.strip() == "3"


def leave_an_earlier_versions_data(org, server, tmp_path: Path, interrupted: bool) -> None:
    """What an earlier version leaves after one run: pipeline `zoho_crm_deleted` (its working
    folder under DLT_DATA_DIR, its state in the file), `zoho_crm_deleted.duckdb` and the analyst
    copy `zoho_crm_deleted_analyst.duckdb`. Loaded by this version's code (the tables are the
    same) into another file, which then takes the old name. `interrupted`: then a second run
    extracted a new deletion and was killed before loading it (a pending package)."""
    loaded = tmp_path / "earlier.duckdb"
    earlier = dlt.pipeline(
        "zoho_crm_deleted",
        destination=duckdb_destination(str(loaded)),
        dataset_name=DATASET_NAME,
        pipelines_dir=str(tmp_path / "dlt" / "pipelines"),
    )
    result = run(earlier, **source_args(server))
    assert result.row_counts["deleted_records"] == 3
    if interrupted:
        delete(org, "Leads", "103", NOW - timedelta(days=1))
        earlier.extract(zoho_crm(**source_args(server)))
        assert earlier.has_pending_data
    loaded.rename(tmp_path / OLD_FILE)
    Path(str(result.analyst_file)).rename(tmp_path / OLD_ANALYST_FILE)


# kept: the usual upgrade; gone: the state is in the file only (a new container, say);
# interrupted: the earlier version's last run was killed before loading what it extracted
@pytest.mark.parametrize("working_folder", ["kept", "gone", "interrupted"])
def test_data_under_the_old_names_moves_by_itself_and_runs_stay_incremental(
    org, server, tmp_path, working_folder
):
    for n in range(3):
        delete(org, "Leads", f"10{n}", NOW - timedelta(days=2))
    interrupted = working_folder == "interrupted"
    leave_an_earlier_versions_data(org, server, tmp_path, interrupted)
    old_folder = tmp_path / "dlt" / "pipelines" / "zoho_crm_deleted"
    assert old_folder.is_dir()
    if working_folder == "gone":
        shutil.rmtree(old_folder)
    delete(org, "Leads", "104", NOW - timedelta(hours=1))
    server.reset_counts()
    total = 5 if interrupted else 4

    moved = zoho_run(server, tmp_path)

    assert moved.returncode == 0, moved.stderr
    assert f"renamed {tmp_path / OLD_FILE} to {tmp_path / DUCKDB_FILE}" in moved.stderr
    assert "pipeline zoho_crm took over the state of zoho_crm_deleted" in moved.stderr
    assert f"removed {OLD_ANALYST_FILE}, which no run updates any more" in moved.stderr
    assert not (tmp_path / OLD_FILE).exists() and not (tmp_path / OLD_ANALYST_FILE).exists()
    assert not old_folder.exists()
    assert (tmp_path / "dlt" / "pipelines" / "zoho_crm").is_dir()
    # incremental: Leads (the module the earlier run loaded) asked only for what changed since
    leads = [h.get("If-Modified-Since") for _, path, h in server.requests if "/Leads/del" in path]
    assert leads and all(leads)
    assert loaded_rows(moved.stdout, "deleted_records") == 1  # 104 only
    assert counts(tmp_path / DUCKDB_FILE) == (total, total)  # nothing lost, nothing doubled
    assert counts(tmp_path / ANALYST_FILE) == (total, total)

    again = zoho_run(server, tmp_path)  # moved once: the next run just runs
    assert again.returncode == 0 and again.stderr == ""
    assert counts(tmp_path / DUCKDB_FILE) == (total, total)


def test_an_old_file_beside_a_new_one_stops_the_run_naming_both(org, server, tmp_path):
    for name in (OLD_FILE, DUCKDB_FILE):
        with duckdb.connect(str(tmp_path / name)) as db:
            db.execute("CREATE TABLE kept AS SELECT 1 AS answer")
    refused = zoho_run(server, tmp_path)
    assert refused.returncode == 2 and refused.stdout.count("\n") <= 1
    [line] = refused.stderr.splitlines()
    assert f"{tmp_path / OLD_FILE} (the DuckDB file of an earlier version" in line
    assert f"cannot be renamed: {tmp_path / DUCKDB_FILE} exists too" in line
    assert (tmp_path / OLD_FILE).exists() and (tmp_path / DUCKDB_FILE).exists()


@pytest.mark.parametrize("command_", ["run", "status"])
@pytest.mark.parametrize(
    ("configured", "words"),
    [
        ("a_folder", ["is a directory: set it to a DuckDB file, e.g. ", "/a_folder/zoho_crm."]),
        ("missing/zoho.duckdb", ["the folder", "missing does not exist"]),
        (OLD_FILE, ["names its DuckDB catalog zoho_crm_deleted", "rename the file (mv "]),
        ("zoho_crm_deleted.v1.duckdb", ["catalog zoho_crm_deleted", "ambiguous: set "]),
    ],
)
def test_a_duckdb_file_that_cannot_be_the_warehouse_is_named_in_one_line(
    in_process, tmp_path, command_, configured, words  # noqa: F811
):
    (tmp_path / "a_folder").mkdir()
    duckdb.connect(str(tmp_path / OLD_FILE)).close()  # an earlier version's, configured
    code, out, err = in_process(command_, DESTINATION__DUCKDB__CREDENTIALS=configured)
    assert code == 2 and "\n" not in err.strip()
    assert f"configuration error: destination.duckdb.credentials '{configured}'" in err
    for word in words:
        assert word in err
    assert "deleted_records" not in out


@pytest.mark.parametrize(
    ("name", "old"),
    [
        ("zoho_crm", "zoho_crm_deleted"),
        ("zoho_crm_acme", "zoho_crm_deleted_acme"),
        ("zoho_crm_deleted", None),  # an old name has no older one
        ("zoho_crm_deleted_acme", None),
        ("zoho_crmx", None),
        ("other", None),
    ],
)
def test_each_pipeline_takes_over_the_state_of_its_old_name_only(name, old):
    assert old_pipeline_name(name) == old


def test_org_names_that_would_take_the_old_pipeline_names_are_refused(in_process):  # noqa: F811
    code, _, err = in_process("status", "--org", "deleted_acme")
    assert code == 2
    assert "org 'deleted_acme': org names starting with 'deleted' are reserved" in err
