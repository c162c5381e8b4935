"""The `zoho-deleted` command: summaries, exit codes, one-line errors."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dlt
import duckdb
import pytest
from conftest import ANALYST_FILE, CLIENT_SECRET, DUCKDB_FILE, NOW, REFRESH_TOKEN, delete, env_for

from pipelines.cli import main
from pipelines.duckdb_file import duckdb_destination, wide_rows_destination
from pipelines.run import make_pipeline

ZOHO_DELETED = str(Path(sys.executable).parent / "zoho-deleted")


def cli(server, tmp_path, *argv: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ZOHO_DELETED, *argv],
        cwd=tmp_path,
        env=env_for(server, tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def in_process(server, tmp_path, monkeypatch, capsys):
    """Run `main()` in this process with the stand-in's config in the environment."""
    monkeypatch.chdir(tmp_path)
    for key, value in env_for(server, tmp_path).items():
        monkeypatch.setenv(key, value)

    def call(*argv: str, **env: str):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return call


def test_run_prints_a_summary_and_status_reads_it(org, server, tmp_path):
    for n in range(3):
        delete(org, "Leads", f"10{n}", NOW - timedelta(days=1))
    never = cli(server, tmp_path, "status")  # nothing to read yet: says where it looked
    assert never.returncode == 2 and f"no warehouse at {tmp_path / DUCKDB_FILE}" in never.stderr

    first = cli(server, tmp_path, "run")
    assert first.returncode == 0, first.stderr
    assert "deleted_records                  3 rows" in first.stdout
    assert "API calls: 9 (deleted 4, metadata 1, recycle_bin 4)" in first.stdout  # bin by module

    second = cli(server, tmp_path, "run")
    assert second.returncode == 0 and "deleted_records                  0 rows" in second.stdout

    status = cli(server, tmp_path, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "Org default: last successful run" in status.stdout and "Healthy." in status.stdout
    assert "  Leads                  3          0        0           0         0" in status.stdout
    assert (tmp_path / DUCKDB_FILE).exists()


def test_a_user_mistake_is_one_line_without_traceback(server, tmp_path):
    result = cli(server, tmp_path, "run", SOURCES__ZOHO_CRM__DATA_CENTER="mars")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "'mars'" in result.stderr and "us, eu, in" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("env", "code", "words"),
    [
        ({"SOURCES__ZOHO_CRM__MODULES": '{"Leads": 1}'}, 2, ["modules", "list of module API"]),
        ({"SOURCES__ZOHO_CRM__MODULES": '["Leads", "Leeds"]'}, 2, ["'Leeds'", "Leads, Contacts"]),
        ({"SOURCES__ZOHO_CRM__MAX_CONCURRENCY": "0"}, 2, ["max_concurrency", "1 to 25"]),
        ({"SOURCES__ZOHO_CRM__PER_PAGE": "500"}, 2, ["per_page 500", "1 to 200"]),
        ({"SOURCES__ZOHO_CRM__RELATED_LISTS": "[1]"}, 2, ["related_lists [1]", "discover_"]),
        ({"SOURCES__ZOHO_CRM__API_DOMAIN": "zohoapis.com"}, 2, ["api_domain", "https://"]),
        ({"SOURCES__ZOHO_CRM__CREDENTIALS__REFRESH_TOKEN": "1000.revoked"}, 3, ["invalid_code"]),
        ({"SOURCES__ZOHO_CRM__CREDENTIALS__CLIENT_SECRET": "wrong"}, 3, ["invalid_client"]),
    ],
)
def test_bad_input_exits_non_zero_naming_the_value(in_process, env, code, words):
    exit_code, out, err = in_process("run", **env)
    assert exit_code == code, err
    line = err.strip()
    assert line.startswith("zoho-deleted: ") and "\n" not in line
    for word in words:
        assert word in line
    assert REFRESH_TOKEN not in out + err and CLIENT_SECRET not in out + err


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"SOURCES__ZOHO_CRM__PER_PAGE": "abc"}, "per_page 'abc' is not a whole number"),
        (  # not blamed on related_lists, which names a module `modules` would hold
            {
                "SOURCES__ZOHO_CRM__MODULES": "42",
                "SOURCES__ZOHO_CRM__RELATED_LISTS": '{"Leads": {"Campaigns": ["Owner"]}}',
            },
            "modules 42 is not a list of module API names: write e.g. modules = [",
        ),
        ({"SOURCES__ZOHO_CRM__MODULES": "all"}, 'modules "all" is no longer a value: remove'),
        (
            {"SOURCES__ZOHO_CRM__RELATED_LISTS": "auto"},
            'related_lists "auto" is no longer a value: write discover_related_lists = true',
        ),
        ({"SOURCES__ZOHO_CRM__RECONCILE": "maybe"}, "reconcile 'maybe' is not true or false"),
        ({"SOURCES__ZOHO_CRM__TOKEN_RETRY_DELAY": "soon"}, "token_retry_delay 'soon' is not a"),
        ({"SOURCES__ZOHO_CRM__MAX_CONCURRENCY": "4.5"}, "max_concurrency '4.5' is not a whole"),
    ],
)
def test_a_value_of_the_wrong_type_is_one_line_naming_the_key(server, tmp_path, env, words):
    result = cli(server, tmp_path, "run", **env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"zoho-deleted: configuration error: {words}"), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert server.calls == {}  # refused before Zoho is asked anything


def test_a_secret_in_config_toml_is_named(server, tmp_path):
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text(
        f'[sources.zoho_crm.credentials]\nclient_secret = "{CLIENT_SECRET}"\n'
    )
    env = env_for(server, tmp_path)
    del env["SOURCES__ZOHO_CRM__CREDENTIALS__CLIENT_SECRET"]
    result = subprocess.run(
        [ZOHO_DELETED, "run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr == (
        "zoho-deleted: configuration error: sources.zoho_crm.credentials is a secret, which dlt "
        "does not read from config.toml: move it to .dlt/secrets.toml or an environment "
        "variable\n"
    )


def test_missing_credentials_name_the_keys(in_process, monkeypatch):
    monkeypatch.delenv("SOURCES__ZOHO_CRM__CREDENTIALS__REFRESH_TOKEN")
    code, _, err = in_process("run")
    assert code == 2
    assert "refresh_token" in err and "SOURCES__ZOHO_CRM__CREDENTIALS__REFRESH_TOKEN" in err


@pytest.mark.parametrize(
    "command", [[], ["run"], ["demo"], ["status"], ["incidents"], ["restore"], ["report"]]
)
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert "usage: zoho-deleted" in capsys.readouterr().out


@pytest.mark.parametrize("special", [":memory:", ":pipeline:"])
def test_duckdb_credentials_that_name_no_file_are_refused(in_process, special):
    code, out, err = in_process("run", DESTINATION__DUCKDB__CREDENTIALS=special)
    assert code == 2
    assert f"destination.duckdb.credentials '{special}' is not a file" in err
    assert "deleted_records" not in out  # refused before anything ran


def test_duckdb_session_settings_that_are_not_a_mapping_are_refused(in_process):
    code, out, err = in_process(
        "run", DESTINATION__DUCKDB__CREDENTIALS__LOCAL_CONFIG="threads=2"
    )
    assert code == 2
    assert "destination.duckdb.credentials.local_config 'threads=2' is not a mapping" in err
    assert "Traceback" not in err and "deleted_records" not in out


def test_duckdb_settings_from_the_environment_reach_every_session(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", '{"memory_limit": "300MB"}'
    )
    monkeypatch.setenv(
        "DESTINATION__DUCKDB__CREDENTIALS__LOCAL_CONFIG",
        '{"default_null_order": "nulls_first_on_asc_last_on_desc"}',
    )
    pipeline = make_pipeline(
        destination=duckdb_destination(str(tmp_path / DUCKDB_FILE)),
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    with pipeline.sql_client() as client:
        [settings] = client.execute_sql(
            "SELECT current_setting('memory_limit'), current_setting('default_null_order'), "
            "current_setting('temp_directory'), current_database()"
        )
    spill = f"{tmp_path / DUCKDB_FILE}.tmp"  # DuckDB's default beside the file: it spills there
    assert settings == ("286.1 MiB", "NULLS_FIRST_ON_ASC_LAST_ON_DESC", spill, "zoho_crm")


def test_duckdb_runs_with_a_small_memory_limit_and_one_thread_by_default(pipeline):
    """What bounds a run's memory (see DUCKDB_MEMORY_LIMIT), unless the config says otherwise.
    (`pipeline`: conftest's, the project's DuckDB destination in a fresh file.)"""
    with pipeline.sql_client() as client:
        [settings] = client.execute_sql(
            "SELECT current_setting('memory_limit'), current_setting('threads'), "
            "current_setting('disabled_compression_methods')"
        )
    assert settings == ("61.0 MiB", 1, "")


def test_record_values_load_without_dictionary_compression_into_the_same_file(tmp_path):
    """`wide_rows_destination`: the pipeline's DuckDB settings, dictionary compression off."""
    made = duckdb_destination(str(tmp_path / DUCKDB_FILE))
    pipeline = make_pipeline(
        destination=wide_rows_destination(made), pipelines_dir=str(tmp_path / "pipelines")
    )
    with pipeline.sql_client() as client:
        [settings] = client.execute_sql(
            "SELECT current_setting('memory_limit'), current_setting('threads'), "
            "current_setting('disabled_compression_methods'), current_database()"
        )
    assert settings == ("61.0 MiB", 1, "Dictionary", "zoho_crm")
    assert wide_rows_destination(dlt.destinations.duckdb(str(tmp_path / "other.duckdb"))) is None

def a_file_from_a_newer_duckdb(path: Path) -> None:
    """A DuckDB file whose header claims a storage version this DuckDB cannot read, as a newer
    DuckDB writes it (the header's checksum recomputed the way DuckDB does, so the version is
    what DuckDB objects to)."""
    duckdb.connect(str(path)).close()
    header = bytearray(path.read_bytes()[:4096])
    header[12:20] = struct.pack("<Q", 200)  # after the checksum and b"DUCK"
    checksum = 5381
    for (word,) in struct.iter_unpack("<Q", bytes(header[8:])):
        checksum ^= (word * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    header[:8] = struct.pack("<Q", checksum)
    with path.open("r+b") as file:
        file.write(header)


@pytest.mark.parametrize("command", ["run", "demo", "status"])
def test_a_file_from_a_newer_duckdb_is_named_with_what_to_do(in_process, tmp_path, command):
    newer = tmp_path / "newer.duckdb"
    a_file_from_a_newer_duckdb(newer)
    code, _, err = in_process(command, DESTINATION__DUCKDB__CREDENTIALS=str(newer))
    assert code == 2
    assert f"{newer} was written by a newer DuckDB than this one ({duckdb.__version__})" in err
    assert "EXPORT DATABASE" in err and "Traceback" not in err


def demo(tmp_path: Path) -> subprocess.CompletedProcess:
    env = {"DLT_DATA_DIR": str(tmp_path / "dlt"), "PATH": "/usr/bin:/bin"}
    env.update({k: v for k, v in os.environ.items() if k == "PYTHONPATH"})  # the code under test
    return subprocess.run(
        [ZOHO_DELETED, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


def test_demo_runs_against_the_stand_in(tmp_path):
    result = demo(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Run 2, with --reconcile: what changed" in result.stdout
    # Person 1, the captured Lead deleted between the runs, is purged before run 2 sees it in
    # the bin: no related lists to fetch for it (it is the one the demo recreates)
    run_2 = "API calls: 15 (deleted 4, reconcile 8, recycle_bin 1, values 2)"
    assert run_2 in result.stdout
    assert "Marco Ruiz deleted 120 Deals in 6 minutes" in result.stdout
    incident = re.search(r"\n  ([0-9a-f]{12})  Deals: 120 records deleted by Marco", result.stdout)
    assert incident, result.stdout
    assert f"Dry run (zoho-deleted restore --org demo --incident {incident[1]}):" in result.stdout
    assert "  Would restore 120 entries from Zoho's recycle bin:" in result.stdout
    report = tmp_path / ".zoho-demo" / "report.html"
    printed = f"Report (zoho-deleted report --org demo --output .zoho-demo/report.html): {report}"
    assert printed in result.stdout and report.exists()
    assert "Org demo: last successful run" in result.stdout
    assert "UNHEALTHY: 1 open mass-deletion incident (listed above)" in result.stdout
    assert (tmp_path / DUCKDB_FILE).exists() and (tmp_path / ANALYST_FILE).exists()
    assert f"Analysts open {ANALYST_FILE}, the read-only copy" in result.stdout
    assert f"Analysts open {tmp_path / ANALYST_FILE} (read-only" in result.stdout  # status
    again = demo(tmp_path)  # recreates its own file: the same figures, nothing doubled
    assert again.returncode == 0, again.stderr
    assert "deleted_records                485 rows" in again.stdout
    assert "Deals: 120 records deleted by Marco Ruiz" in again.stdout


def test_demo_never_replaces_a_file_a_real_run_loaded(org, server, tmp_path):
    delete(org, "Leads", "101", NOW - timedelta(days=1))
    assert cli(server, tmp_path, "run").returncode == 0
    refused = demo(tmp_path)
    assert refused.returncode == 2 and refused.stdout == ""
    assert f"{tmp_path / DUCKDB_FILE} holds data the demo did not load" in refused.stderr
    assert "Traceback" not in refused.stderr
    status = cli(server, tmp_path, "status")  # the real org's data and state are intact
    assert status.returncode == 0 and "  Leads                  1" in status.stdout
