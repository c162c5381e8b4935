"""The Airflow DAG: one task group per configured org, no Zoho call while Airflow parses it, and
a task that fails when Zoho refused a module, with the run recorded truthfully for `status`.

Airflow is not installed here: a minimal stand-in for the three names the DAG takes from it
(`dag`, `task`, `TaskGroup`) records what the DAG builds. `test_deploy` builds the DAG with
Airflow itself wherever Airflow is installed.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import types
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Tuple

import pytest
from conftest import NOW, delete, env_for

from pipelines.errors import RunRefusedError
from pipelines.run import make_pipeline
from pipelines.status import read_status
from zoho_standin import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN

ORG_ENV = "SOURCES__ZOHO_CRM__ORGS__ACME__"
PRINT_ORGS = "from pipelines.orgs import configured_orgs; print(configured_orgs())"


class RecordingAirflow:
    """What the DAG file builds: its DAG arguments, and each task as (group, function, args)."""

    def __init__(self) -> None:
        self.dag_args: dict = {}
        self.tasks: List[Tuple[Optional[str], Callable, tuple]] = []
        self._group: Optional[str] = None

    def module(self) -> types.ModuleType:
        sdk = types.ModuleType("airflow.sdk")
        recorder = self

        def dag(**kwargs: Any) -> Callable:
            def decorate(build: Callable) -> Callable:
                def built() -> RecordingAirflow:
                    recorder.dag_args = kwargs
                    build()
                    return recorder

                return built

            return decorate

        def task(function: Callable) -> Callable:
            def add(*args: Any) -> None:
                recorder.tasks.append((recorder._group, function, args))

            return add

        @contextmanager
        def task_group(group_id: str) -> Iterator[None]:
            recorder._group = group_id
            yield
            recorder._group = None

        sdk.dag, sdk.task, sdk.TaskGroup = dag, task, task_group
        return sdk


@pytest.fixture
def dag_env(server, tmp_path, monkeypatch):
    """The default org and org `acme` (the same stand-in org, its own pipeline) in the env."""
    monkeypatch.chdir(tmp_path)
    for key, value in env_for(server, tmp_path).items():
        monkeypatch.setenv(key, value)
    for key, value in (
        ("CLIENT_ID", CLIENT_ID),
        ("CLIENT_SECRET", CLIENT_SECRET),
        ("REFRESH_TOKEN", REFRESH_TOKEN),
    ):
        monkeypatch.setenv(f"{ORG_ENV}CREDENTIALS__{key}", value)


def build_dag(monkeypatch) -> RecordingAirflow:
    airflow = RecordingAirflow()
    monkeypatch.setitem(sys.modules, "airflow", types.ModuleType("airflow"))
    monkeypatch.setitem(sys.modules, "airflow.sdk", airflow.module())
    sys.modules.pop("pipelines.airflow_dag", None)
    try:
        importlib.import_module("pipelines.airflow_dag")  # what Airflow's parser does
    finally:
        sys.modules.pop("pipelines.airflow_dag", None)
    return airflow


def test_one_task_group_per_org_and_no_zoho_call_while_parsing(server, dag_env, monkeypatch):
    airflow = build_dag(monkeypatch)

    assert airflow.dag_args["dag_id"] == "zoho_crm"
    assert airflow.dag_args["max_active_runs"] == 1
    assert [(group, args) for group, _, args in airflow.tasks] == [
        ("org_default", ("default",)),
        ("org_acme", ("acme",)),
    ]
    assert server.calls == {}  # not even a token


def test_a_task_fails_when_zoho_refused_a_module_and_status_says_so(
    org, server, dag_env, monkeypatch
):
    for module in ("Leads", "Contacts"):
        delete(org, module, f"{module[0]}1", NOW - timedelta(days=1))
    tasks = {args[0]: function for _, function, args in build_dag(monkeypatch).tasks}
    assert tasks["default"]("default")["deleted_records"] == 2
    delete(org, "Contacts", "C2", NOW - timedelta(minutes=5))
    server.faults.add(r"/Leads/deleted$", "403-wrapped", times=None)

    with pytest.raises(RunRefusedError, match=r"Zoho refused Leads \(NO_PERMISSION\)"):
        tasks["default"]("default")

    status = read_status(make_pipeline(org="default"))
    assert status.healthy is False and status.modules["Contacts"]["recycle"] == 2  # loaded
    assert "could not read Leads (NO_PERMISSION)" in status.problems[0].text

    server.faults.clear()
    assert tasks["acme"]("acme")["deleted_records"] == 3  # another org, its own pipeline
    assert read_status(make_pipeline(org="acme"), "acme").healthy is True


def test_orgs_are_read_from_the_config_files_and_the_environment(tmp_path):
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text(
        '[sources.zoho_crm.orgs.acme]\ndata_center = "eu"\n'
    )
    (tmp_path / ".dlt" / "secrets.toml").write_text(
        '[sources.zoho_crm.orgs.globex.credentials]\nclient_id = "1000.X"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    env["SOURCES__ZOHO_CRM__ORGS__INITECH__DATA_CENTER"] = "in"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pipelines.orgs import configured_orgs; print(configured_orgs())",
        ],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "['default', 'acme', 'globex', 'initech']"
