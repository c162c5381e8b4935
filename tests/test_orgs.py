"""Several Zoho orgs into one warehouse: own state, an `org` column in every key."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta

import duckdb
import pytest
from conftest import (
    ANALYST_FILE,
    CLIENT_ID,
    CLIENT_SECRET,
    DUCKDB_FILE,
    MODULES,
    NOW,
    analyst,
    delete,
)
from test_cli import ZOHO_DELETED

from zoho_standin import Org, StandinServer
from zoho_standin.seed import add_standard_modules


@pytest.fixture
def two_orgs():
    """Two stand-in orgs with their own refresh tokens and the same record ids."""
    servers = {}
    for name in ("acme", "globex"):
        org = Org()
        add_standard_modules(org, MODULES)
        for n in range(3 if name == "acme" else 5):
            delete(org, "Leads", f"10{n}", NOW - timedelta(hours=n + 1), f"{name} lead {n}")
        servers[name] = StandinServer(org, refresh_token=f"1000.refresh-{name}").start()
    yield servers
    for server in servers.values():
        server.stop()


def org_env(servers, tmp_path):
    env = {
        "DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / DUCKDB_FILE),
        "DLT_DATA_DIR": str(tmp_path / "dlt"),
        "PATH": "/usr/bin:/bin",
        # shared by every org unless an org sets its own
        "SOURCES__ZOHO_CRM__MODULES": '["Leads", "Contacts"]',
    }
    for name, server in servers.items():
        prefix = f"SOURCES__ZOHO_CRM__ORGS__{name.upper()}__"
        env.update(
            {
                prefix + "CREDENTIALS__CLIENT_ID": CLIENT_ID,
                prefix + "CREDENTIALS__CLIENT_SECRET": CLIENT_SECRET,
                prefix + "CREDENTIALS__REFRESH_TOKEN": f"1000.refresh-{name}",
                prefix + "ACCOUNTS_SERVER": server.url,
                prefix + "API_DOMAIN": server.url,
            }
        )
    return env


def zoho(tmp_path, env, *argv):
    return subprocess.run(
        [ZOHO_DELETED, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


def test_two_orgs_land_in_one_duckdb_file_without_collisions(two_orgs, tmp_path):
    env = org_env(two_orgs, tmp_path)
    for name in ("acme", "globex"):
        result = zoho(tmp_path, env, "run", "--org", name)
        assert result.returncode == 0, result.stderr
        assert two_orgs[name].calls["deleted"] == 2  # Leads and Contacts, from the shared key

    with analyst(tmp_path / ANALYST_FILE) as db:
        rows = db.sql(
            "SELECT org, count(*), count(DISTINCT id) FROM zoho_crm_deleted.deleted_records "
            "GROUP BY org ORDER BY org"
        ).fetchall()
        assert rows == [("acme", 3, 3), ("globex", 5, 5)]  # ids 100..102 exist in both
        names = db.sql(
            "SELECT org, display_name FROM zoho_crm_deleted.deleted_records WHERE id = '100' "
            "ORDER BY org"
        ).fetchall()
        assert names == [("acme", "acme lead 0"), ("globex", "globex lead 0")]
        for table in ("recycle_bin", "deletion_events", "runs"):
            orgs = db.sql(
                f"SELECT DISTINCT org FROM zoho_crm_deleted.{table} ORDER BY org"
            ).fetchall()
            assert orgs == [("acme",), ("globex",)], table

    # Each org keeps its own state: a second run of acme finds nothing new.
    again = zoho(tmp_path, env, "run", "--org", "acme")
    assert again.returncode == 0
    assert "API calls: 3 (deleted 2, recycle_bin 1)" in again.stdout
    assert (tmp_path / "dlt" / "pipelines" / "zoho_crm_acme").is_dir()
    assert (tmp_path / "dlt" / "pipelines" / "zoho_crm_globex").is_dir()

    status = json.loads(zoho(tmp_path, env, "status", "--org", "globex", "--json").stdout)
    assert status["org"] == "globex" and status["healthy"] is True
    assert status["modules"]["Leads"]["recycle"] == 5


def test_an_org_without_credentials_is_named(two_orgs, tmp_path):
    env = org_env(two_orgs, tmp_path)
    result = zoho(tmp_path, env, "run", "--org", "initech")
    assert result.returncode == 2
    missing = "client_id and client_secret and refresh_token missing"
    assert f"org initech has no credentials ({missing}); set them under" in result.stderr
    assert "SOURCES__ZOHO_CRM__ORGS__INITECH__CREDENTIALS__CLIENT_ID" in result.stderr
    bad = zoho(tmp_path, env, "run", "--org", "acme corp")
    assert bad.returncode == 2 and "'acme corp' is not a valid org name" in bad.stderr


def test_an_orgs_settings_are_typed_by_dlt_and_named_when_wrong(two_orgs, tmp_path):
    env = org_env(two_orgs, tmp_path)
    env["SOURCES__ZOHO_CRM__ORGS__ACME__MODULES"] = '["Leads"]'  # JSON, as dlt reads lists
    env["SOURCES__ZOHO_CRM__ORGS__GLOBEX__PER_PAGE"] = "abc"
    result = zoho(tmp_path, env, "run", "--org", "acme")
    assert result.returncode == 0, result.stderr
    assert two_orgs["acme"].calls["deleted"] == 1  # the org's own list, not the shared two

    bad = zoho(tmp_path, env, "run", "--org", "globex")
    assert bad.returncode == 2
    assert bad.stderr == "zoho-deleted: configuration error: per_page 'abc' is not a whole number\n"
    assert two_orgs["globex"].calls == {}


def test_org_sections_are_read_from_dlt_toml_files(two_orgs, tmp_path):
    acme = two_orgs["acme"]
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text(
        f"""
[sources.zoho_crm]
modules = ["Leads"]

[sources.zoho_crm.orgs.acme]
accounts_server = "{acme.url}"
api_domain = "{acme.url}"
modules = ["Leads", "Contacts", "Deals"]
"""
    )
    (tmp_path / ".dlt" / "secrets.toml").write_text(
        f"""
[sources.zoho_crm.orgs.acme.credentials]
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
refresh_token = "1000.refresh-acme"
"""
    )
    env = {
        "DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / DUCKDB_FILE),
        "DLT_DATA_DIR": str(tmp_path / "dlt"),
        "PATH": "/usr/bin:/bin",
    }
    result = zoho(tmp_path, env, "run", "--org", "acme")
    assert result.returncode == 0, result.stderr
    assert acme.calls["deleted"] == 3  # the org's own modules win over the shared ones
    assert "deleted_records                  3 rows" in result.stdout


def test_two_orgs_at_once_into_one_duckdb_file_take_turns(two_orgs, tmp_path):
    env = org_env(two_orgs, tmp_path)
    for server in two_orgs.values():
        server.latency = 0.05  # long enough for the runs to overlap
    runs = [
        subprocess.Popen(
            [ZOHO_DELETED, "run", "--org", name],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("acme", "globex")
    ]
    for process in runs:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    with analyst(tmp_path / ANALYST_FILE) as db:
        rows = db.sql(
            "SELECT org, count(*) FROM zoho_crm_deleted.deleted_records GROUP BY 1 ORDER BY 1"
        )
        assert rows.fetchall() == [("acme", 3), ("globex", 5)]


def test_status_while_the_duckdb_file_is_held_says_so(two_orgs, tmp_path):
    env = org_env(two_orgs, tmp_path)
    assert zoho(tmp_path, env, "run", "--org", "acme").returncode == 0
    with duckdb.connect(str(tmp_path / DUCKDB_FILE)):  # another process writes to it
        held = subprocess.run(
            [ZOHO_DELETED, "status", "--org", "acme"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    # a reader never waits for the file: it reads the last published analyst file, and says so
    assert held.returncode == 0, held.stderr
    assert "this reads the analyst file" in held.stdout
