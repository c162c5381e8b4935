"""The scheduling examples parse and call the same command; the Airflow DAG builds."""

from __future__ import annotations

import configparser
import importlib
import shlex
from pathlib import Path

import pytest
import yaml
from croniter import croniter

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def cron_entries() -> list:
    lines = (DEPLOY / "cron" / "zoho-deleted.cron").read_text().splitlines()
    entries = [line.split(None, 5) for line in lines if line and not line.startswith("#")]
    return [e for e in entries if "=" not in e[0]]  # skip SHELL=, MAILTO=


def test_cron_lines_are_valid_and_run_the_command():
    entries = cron_entries()
    assert len(entries) == 3
    for entry in entries:
        assert croniter.is_valid(" ".join(entry[:5])), entry
        assert ".venv/bin/zoho-deleted " in entry[5]
    assert any(" run" in e[5] for e in entries) and any(" status" in e[5] for e in entries)
    hourly = croniter(" ".join(entries[0][:5]))
    first, second = hourly.get_next(float), hourly.get_next(float)
    assert second - first == 3600


def test_systemd_units_parse():
    service = configparser.ConfigParser(strict=True, interpolation=None)
    service.read(DEPLOY / "systemd" / "zoho-deleted.service")
    assert service["Service"]["Type"] == "oneshot"
    command = shlex.split(service["Service"]["ExecStart"])
    assert command[0].endswith("/zoho-deleted") and command[1:] == ["run"]
    timer = configparser.ConfigParser(strict=True, interpolation=None)
    timer.read(DEPLOY / "systemd" / "zoho-deleted.timer")
    assert timer["Timer"]["OnCalendar"] == "hourly"
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_github_workflow_is_valid_yaml_that_runs_the_command():
    workflow = yaml.safe_load((DEPLOY / "github-actions" / "zoho-deleted.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert croniter.is_valid(triggers["schedule"][0]["cron"])
    steps = workflow["jobs"]["run"]["steps"]
    commands = [s["run"] for s in steps if "run" in s]
    assert "zoho-deleted run --destination motherduck" in commands
    env = workflow["jobs"]["run"]["env"]
    secrets = [k for k, v in env.items() if "secrets." in str(v)]
    assert "SOURCES__ZOHO_CRM__CREDENTIALS__REFRESH_TOKEN" in secrets
    assert all(str(env[k]).startswith("${{ secrets.") for k in secrets)


def test_the_airflow_dag_builds(monkeypatch, tmp_path):
    pytest.importorskip(
        "airflow",
        reason="Airflow is not installed here; the DAG is built where it is "
        "(pip install apache-airflow, then this test runs)",
    )
    # what the DAG's docstring asks of Airflow's environment; building it calls no one
    monkeypatch.setenv("SOURCES__ZOHO_CRM__ORGS__ACME__DATA_CENTER", "eu")
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "crm.duckdb"))
    module = importlib.import_module("pipelines.airflow_dag")
    dag = module.zoho_crm_dag()
    assert dag.dag_id == "zoho_crm" and dag.max_active_runs == 1
    assert {"org_default.run", "org_acme.run"} <= {t.task_id for t in dag.tasks}


def test_nothing_else_imports_airflow():
    root = DEPLOY.parent
    importers = [
        p.relative_to(root)
        for folder in ("pipelines", "sources", "zoho_standin")
        for p in (root / folder).rglob("*.py")
        if "import airflow" in p.read_text() or "from airflow" in p.read_text()
    ]
    assert importers == [Path("pipelines/airflow_dag.py")]
