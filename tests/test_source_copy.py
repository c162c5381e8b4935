"""The source lifted into another dlt project, as `dlt init` copies a verified source: the
folder `sources/zoho_crm` copied as a top-level package `zoho_crm/` beside a minimal pipeline
script, run there against the stand-in with nothing of this project importable."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import duckdb
from conftest import NOW, delete, env_for

SOURCE = Path(__file__).resolve().parent.parent / "sources" / "zoho_crm"
# A fresh project's pipeline script. This project's packages are made unimportable first (the
# venv may hold them as an editable install), so an import of them fails the run.
SCRIPT = """\
import sys

for name in ("sources", "pipelines", "zoho_standin"):
    sys.modules[name] = None  # import of it raises ImportError

import dlt
from zoho_crm import zoho_crm

pipeline = dlt.pipeline(
    pipeline_name="zoho_crm", destination="duckdb", dataset_name="zoho_crm_data"
)
print(pipeline.run(zoho_crm(), loader_file_format="parquet"))
"""


def test_the_copied_source_runs_in_a_fresh_project(org, server, tmp_path):
    for n in range(3):
        delete(org, "Leads", f"10{n}", NOW - timedelta(days=1))
    delete(org, "Deals", "200", NOW - timedelta(hours=2))
    project = tmp_path / "project"
    shutil.copytree(SOURCE, project / "zoho_crm", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "zoho_crm_pipeline.py").write_text(SCRIPT)
    env = env_for(server, tmp_path)
    env.pop("DESTINATION__DUCKDB__CREDENTIALS")  # dlt's default: zoho_crm.duckdb in the project
    env["PYTHONPATH"] = ""  # the project folder (the script's) only, not this repository

    done = subprocess.run(
        [sys.executable, "zoho_crm_pipeline.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    with duckdb.connect(str(project / "zoho_crm.duckdb"), read_only=True) as db:
        landed = db.execute(
            "SELECT module, id FROM zoho_crm_data.deleted_records ORDER BY module, id"
        ).fetchall()
    assert landed == [("Deals", "200"), ("Leads", "100"), ("Leads", "101"), ("Leads", "102")]
