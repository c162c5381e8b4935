"""The commands' typed settings (`pipelines.config`): defaults, what dlt's providers set,
and bad values refused in one line naming the key (exit 2)."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import dlt
import pytest
from dlt.common.configuration import ConfigValueCannotBeCoercedException

from pipelines.config import command_settings, duckdb_file_settings
from pipelines.errors import EXIT_CONFIG, explain
from pipelines.exceptions import PipelineConfigError
from pipelines.orgs import ORGS_ENV_PREFIX, configured_orgs

COMMAND_ENV = ("INCIDENT_THRESHOLD", "INCIDENT_GAP", "MAX_RUN_GAP")
DUCKDB_ENV = ("CREDENTIALS", "CREDENTIALS__GLOBAL_CONFIG", "CREDENTIALS__LOCAL_CONFIG")


@pytest.fixture(autouse=True)
def nothing_configured(monkeypatch):
    for key in COMMAND_ENV:
        monkeypatch.delenv(f"SOURCES__ZOHO_CRM__{key}", raising=False)
        monkeypatch.delenv(key, raising=False)
    for key in (*DUCKDB_ENV, "ANALYST_FILE", "CREDENTIALS__DATABASE"):
        monkeypatch.delenv(f"DESTINATION__DUCKDB__{key}", raising=False)


def test_command_settings_default_to_the_documented_values():
    settings = command_settings()
    assert settings.incident_rule() == (100, timedelta(minutes=10))
    assert settings.run_gap() == timedelta(days=2)


def test_command_settings_follow_the_environment(monkeypatch):
    monkeypatch.setenv("SOURCES__ZOHO_CRM__INCIDENT_THRESHOLD", "250")
    monkeypatch.setenv("SOURCES__ZOHO_CRM__INCIDENT_GAP", "90s")
    monkeypatch.setenv("SOURCES__ZOHO_CRM__MAX_RUN_GAP", "36h")
    settings = command_settings()
    assert settings.incident_rule() == (250, timedelta(seconds=90))
    assert settings.run_gap() == timedelta(hours=36)


def test_a_duration_written_as_a_number_is_seconds():
    with dlt.config.values({"sources.zoho_crm.incident_gap": 600}):  # as TOML gives it
        assert command_settings().incident_rule()[1] == timedelta(minutes=10)


def test_a_threshold_that_is_no_whole_number_is_named_by_dlt(monkeypatch):
    monkeypatch.setenv("SOURCES__ZOHO_CRM__INCIDENT_THRESHOLD", "many")
    with pytest.raises(ConfigValueCannotBeCoercedException) as raised:
        command_settings()
    assert explain(raised.value) == (
        EXIT_CONFIG,
        "configuration error: incident_threshold 'many' is not a whole number",
    )


@pytest.mark.parametrize(
    ("key", "value", "line"),
    [
        ("INCIDENT_THRESHOLD", "0", "incident_threshold 0 is out of range: use a whole number"),
        ("INCIDENT_GAP", "soon", "incident_gap 'soon' is not a duration: use seconds or"),
    ],
)
def test_an_incident_setting_out_of_bounds_is_one_line(monkeypatch, key, value, line):
    monkeypatch.setenv(f"SOURCES__ZOHO_CRM__{key}", value)
    with pytest.raises(PipelineConfigError) as raised:
        command_settings().incident_rule()
    code, said = explain(raised.value)
    assert code == EXIT_CONFIG and said.startswith(f"configuration error: {line}")
    assert "\n" not in said


def test_a_bad_max_run_gap_stops_status_but_not_the_incident_rule(monkeypatch):
    monkeypatch.setenv("SOURCES__ZOHO_CRM__MAX_RUN_GAP", "-1")
    settings = command_settings()
    assert settings.incident_rule() == (100, timedelta(minutes=10))  # what a run checks
    with pytest.raises(PipelineConfigError, match="max_run_gap '-1' is not a duration"):
        settings.run_gap()


def test_nothing_configured_leaves_the_duckdb_file_to_the_default():
    settings = duckdb_file_settings()
    assert settings.analyst_file is None
    assert settings.credentials.database is None
    assert settings.credentials.global_config is None and settings.credentials.local_config is None


def test_a_path_and_session_settings_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "x.duckdb"))
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", '{"threads": 2}')
    monkeypatch.setenv("DESTINATION__DUCKDB__ANALYST_FILE", "shared/zoho.duckdb")
    settings = duckdb_file_settings()
    assert settings.credentials.database == str(tmp_path / "x.duckdb")
    assert settings.credentials.global_config == {"threads": 2}
    assert settings.analyst_file == "shared/zoho.duckdb"


def test_a_credentials_table_in_the_config_files(tmp_path):
    table = {"database": str(tmp_path / "y.duckdb"), "local_config": {"threads": 1}}
    with dlt.secrets.values({"destination.duckdb.credentials": table}):
        credentials = duckdb_file_settings().credentials
    assert (credentials.database, credentials.local_config) == (table["database"], {"threads": 1})


def test_a_path_in_config_toml_is_read_as_it_always_was(tmp_path):
    with dlt.config.values({"destination.duckdb.credentials": str(tmp_path / "z.duckdb")}):
        assert duckdb_file_settings().credentials.database == str(tmp_path / "z.duckdb")


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("LOCAL_CONFIG", "threads=2", "'threads=2'"),
        ("GLOBAL_CONFIG", json.dumps(["threads", 2]), "['threads', 2]"),  # JSON, not an object
    ],
)
def test_session_settings_that_are_not_a_mapping_are_one_line(monkeypatch, key, value, shown):
    monkeypatch.setenv(f"DESTINATION__DUCKDB__CREDENTIALS__{key}", value)
    with pytest.raises(PipelineConfigError) as raised:
        duckdb_file_settings()
    assert str(raised.value) == (
        f"destination.duckdb.credentials.{key.lower()} {shown} is not a mapping: "
        'give a TOML table or a JSON object, e.g. {"threads": 2}'
    )


def test_org_names_come_from_every_provider_at_once(monkeypatch):
    """Named orgs are the union of every provider's `orgs` sections, which no single resolved
    configspec field gives (`configured_orgs`' docstring)."""
    for key in [k for k in os.environ if k.startswith(ORGS_ENV_PREFIX)]:
        monkeypatch.delenv(key)
    monkeypatch.setenv(f"{ORGS_ENV_PREFIX}INITECH__DATA_CENTER", "in")
    acme = {"acme": {"data_center": "eu"}}
    globex = {"globex": {"credentials": {"client_id": "1000.x"}}}
    with dlt.config.values({"sources.zoho_crm.orgs": acme}):
        with dlt.secrets.values({"sources.zoho_crm.orgs": globex}):
            assert configured_orgs() == ["default", "acme", "globex", "initech"]
