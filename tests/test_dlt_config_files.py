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
