"""The project's `.dlt/` files, as a user copies them, are ones dlt itself accepts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

DLT_DIR = Path(__file__).resolve().parent.parent / ".dlt"

# Plain dlt, no project code: a DuckDB pipeline's destination config and the source's secrets.
PLAIN_DLT = """
import dlt
pipeline = dlt.pipeline("plain", destination="duckdb", dataset_name="d")
print(pipeline.destination_client().config.credentials.database)
print(dlt.secrets["sources.zoho_crm.credentials.client_id"])
print(dlt.config["sources.zoho_crm.data_center"])
"""


def test_dlt_resolves_the_example_config_and_secrets(tmp_path):
    (tmp_path / ".dlt").mkdir()
    shutil.copy(DLT_DIR / "config.toml", tmp_path / ".dlt" / "config.toml")
    shutil.copy(DLT_DIR / "secrets.toml.example", tmp_path / ".dlt" / "secrets.toml")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SOURCES__", "DESTINATION__", "RUNTIME__"))
    }
    env["DLT_DATA_DIR"] = str(tmp_path / "dlt")
    done = subprocess.run(
        [sys.executable, "-c", PLAIN_DLT],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # dlt refuses destination credentials in config.toml (ValueNotSecretException)
    assert done.returncode == 0, done.stderr[-2000:]
    database, client_id, data_center = done.stdout.splitlines()[-3:]
    assert database == str(tmp_path / "plain.duckdb")
    assert client_id.startswith("1000.")
    assert data_center == "us"


TYPED = """
from pipelines.orgs import org_settings
settings = org_settings("default")
print(repr([settings[k] for k in ("modules", "related_lists", "discover_related_lists")]))
"""


def test_the_example_settings_once_uncommented_are_typed_by_dlt(tmp_path):
    """The commented examples in config.toml are what the source's typed arguments take."""
    (tmp_path / ".dlt").mkdir()
    lines = (DLT_DIR / "config.toml").read_text().splitlines()
    examples = ("# modules = ", "# related_lists = ", "# discover_related_lists = ")
    uncommented = [line[2:] if line.startswith(examples) else line for line in lines]
    assert len([line for line in uncommented if line not in lines]) == 3
    (tmp_path / ".dlt" / "config.toml").write_text("\n".join(uncommented))
    shutil.copy(DLT_DIR / "secrets.toml.example", tmp_path / ".dlt" / "secrets.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "RUNTIME__"))}
    done = subprocess.run(
        [sys.executable, "-c", TYPED],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(DLT_DIR.parent)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == repr(
        [
            ["Leads", "Contacts", "Deals"],
            {"Leads": {"Campaigns": ["Owner", "Campaign_Name"]}},
            True,
        ]
    )
