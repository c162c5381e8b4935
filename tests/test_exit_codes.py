"""Each documented exit code, with and without --verbose: --verbose adds detail (a traceback
before the same one line), never another exit code. (A stuck load's second run says the
package of the first is still stuck: another line, the same code.)"""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Tuple

import pytest
from conftest import NOW, REFRESH_TOKEN, delete
from test_cli import cli

from pipelines.duckdb_file import checked_duckdb_file
from pipelines.errors import EXIT_CONFIG, explain
from pipelines.exceptions import PipelineConfigError
from pipelines.locks import file_lock
from pipelines.names import pipeline_name
from sources.zoho_crm.errors import ZohoError

RELATED = {"Leads": {"Campaigns": ["Campaign_Name"]}}
STARVED = '{"memory_limit": "1MB", "max_temp_directory_size": "0KB"}'


@contextmanager
def nothing(org: Any, server: Any, tmp_path: Path) -> Iterator[None]:
    yield


@contextmanager
def a_failed_run(org: Any, server: Any, tmp_path: Path) -> Iterator[None]:
    server.faults.add(r"/crm/", "500", times=None)
    assert cli(server, tmp_path, "run").returncode == 4  # noted in `runs`: status is unhealthy
    server.faults.clear()
    yield


@contextmanager
def refused_modules(org: Any, server: Any, tmp_path: Path) -> Iterator[None]:
    server.faults.add(r"/Leads/deleted$", "403", times=None)
    yield


@contextmanager
def zoho_down(org: Any, server: Any, tmp_path: Path) -> Iterator[None]:
    server.faults.add(r"/crm/", "500", times=None)
    yield


@contextmanager
def another_run(org: Any, server: Any, tmp_path: Path) -> Iterator[None]:
    folder = tmp_path / "dlt" / "pipelines"
    folder.mkdir(parents=True, exist_ok=True)
    with file_lock(str(folder / f".{pipeline_name()}.lock"), 0, "held by the test"):
        yield


@contextmanager
def related_backlog(org: Any, server: Any, tmp_path: Path) -> Iterator[None]:
    for n in range(3):
        delete(org, "Leads", f"30{n}", NOW - timedelta(days=1))
        org.add_related("Leads", f"30{n}", "Campaigns", [{"id": f"c{n}", "Campaign_Name": "C"}])
    yield


@contextmanager
def destination_starved(org: Any, server: Any, tmp_path: Path) -> Iterator[None]:
    for n in range(3_000):
        delete(org, "Leads", f"7{n:05d}", NOW - timedelta(minutes=n + 1))
    yield


@contextmanager
def data_dir_is_a_file(org: Any, server: Any, tmp_path: Path) -> Iterator[None]:
    (tmp_path / "not-a-folder").write_text("")
    yield


Case = Tuple[int, Callable[..., Any], Tuple[str, ...], Dict[str, str]]
CASES: Dict[str, Case] = {
    "ok": (0, nothing, ("run",), {}),
    "unhealthy": (1, a_failed_run, ("status",), {}),
    "refused module": (1, refused_modules, ("run",), {}),
    "config": (2, nothing, ("run",), {"SOURCES__ZOHO_CRM__DATA_CENTER": "mars"}),
    "auth": (3, nothing, ("run",), {"SOURCES__ZOHO_CRM__CREDENTIALS__REFRESH_TOKEN": "1000.x"}),
    "zoho down": (4, zoho_down, ("run",), {}),
    "busy": (5, another_run, ("run",), {}),
    "backlog": (
        6,
        related_backlog,
        ("run",),
        {
            "SOURCES__ZOHO_CRM__RELATED_LISTS": json.dumps(RELATED),
            "SOURCES__ZOHO_CRM__RELATED_CALLS_PER_RUN": "1",
        },
    ),
    "values backlog": (
        6,
        nothing,
        ("run",),
        {
            "SOURCES__ZOHO_CRM__RECORD_VALUES": '["Leads"]',
            "SOURCES__ZOHO_CRM__PER_PAGE": "1",  # 3 live Leads: a page a run, 3 runs
            "SOURCES__ZOHO_CRM__VALUES_CALLS_PER_RUN": "1",
        },
    ),
    "load stuck": (
        7,
        destination_starved,
        ("run",),
        {"DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG": STARVED},
    ),
    "unexpected": (70, data_dir_is_a_file, ("run",), {"DLT_DATA_DIR": "not-a-folder"}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_verbose_adds_a_traceback_and_keeps_the_exit_code(org, server, tmp_path, case):
    code, situation, argv, env = CASES[case]
    if "DLT_DATA_DIR" in env:
        env = {**env, "DLT_DATA_DIR": str(tmp_path / env["DLT_DATA_DIR"])}
    with situation(org, server, tmp_path):
        plain = cli(server, tmp_path, *argv, **env)
        verbose = cli(server, tmp_path, "--verbose", *argv, **env)
    assert (plain.returncode, verbose.returncode) == (code, code), plain.stderr + verbose.stderr
    assert "Traceback" not in plain.stderr + plain.stdout
    line = [s for s in plain.stderr.splitlines() if s.startswith("zoho-deleted: ")]
    if code in (0, 6) or argv == ("status",) and code == 1:
        assert line == []  # no error: nothing to explain, nothing to trace
        return
    assert len(line) == 1 and plain.stderr.strip() == line[0]
    last = verbose.stderr.rstrip().splitlines()[-1]
    assert last == line[0] or case == "load stuck" and last.startswith("zoho-deleted: ")
    if code != 1:  # a refused module ends the run normally: there is no exception to trace
        assert "Traceback (most recent call last)" in verbose.stderr
    assert REFRESH_TOKEN not in verbose.stderr


def test_a_duckdb_file_problem_is_the_pipelines_error_not_zohos_and_exits_2(tmp_path):
    with pytest.raises(PipelineConfigError) as raised:
        checked_duckdb_file(str(tmp_path))  # a folder, not a file

    assert not isinstance(raised.value, ZohoError)
    code, line = explain(raised.value)
    assert code == EXIT_CONFIG
    assert line == f"configuration error: destination.duckdb.credentials {str(tmp_path)!r} " + (
        f"is a directory: set it to a DuckDB file, e.g. {tmp_path / 'zoho_crm.duckdb'}"
    )
