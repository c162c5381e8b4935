"""What `zoho-deleted demo` tells a new user to type works when pasted, as printed, in the
folder the demo ran in: its `zoho-deleted …` commands and the DuckDB shell it names."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
from conftest import ANALYST_FILE

ZOHO_DELETED = str(Path(sys.executable).parent / "zoho-deleted")
PRINTED_COMMAND = re.compile(r"[(`](zoho-deleted [^)`]+)[)`]")  # as the demo quotes them


def fresh_user_env(folder: Path) -> Dict[str, str]:
    """A user's shell: no Zoho settings, dlt's default folders under `folder`; the code under
    test (PYTHONPATH) as the rest of the suite runs it."""
    env = {"DLT_DATA_DIR": str(folder / "dlt"), "HOME": str(folder), "PATH": "/usr/bin:/bin"}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    result = subprocess.run(
        [ZOHO_DELETED, "demo"],
        cwd=folder,
        env=fresh_user_env(folder),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    (folder / "demo.out").write_text(result.stdout)
    return folder


def printed_commands(stdout: str) -> List[str]:
    """The commands the demo prints, in order, once each; advice with a placeholder
    (`restore --incident ID`) is a form to fill in, not a command to paste."""
    found = dict.fromkeys(PRINTED_COMMAND.findall(stdout))
    return [c for c in found if not any(word.isupper() for word in shlex.split(c)[1:])]


def test_every_command_the_demo_prints_works_as_printed(demo_folder):
    stdout = (demo_folder / "demo.out").read_text()
    assert "the commands below read them with --org demo" in stdout
    commands = printed_commands(stdout)
    # the demo ends with the dry run of recreating the Lead purged between its runs
    assert "Would recreate 1 purged record from" in stdout.split("Status (zoho-deleted status")[1]
    incident = re.search(r"\n  ([0-9a-f]{12})  Deals: 120 records deleted by Marco", stdout)
    assert incident, stdout
    expected = {
        "zoho-deleted incidents --org demo": (0, f"{incident[1]}  Deals: 120 records deleted"),
        f"zoho-deleted restore --org demo --incident {incident[1]}": (
            0,
            "Would restore 120 entries from Zoho's recycle bin",
        ),
        "zoho-deleted restore --org demo --ids 41088800050000000001 --recreate": (
            0,
            "Would recreate 1 purged record from its last captured values",
        ),
        "zoho-deleted report --org demo --output .zoho-demo/report.html": (
            0,
            f"Report written to {demo_folder / '.zoho-demo' / 'report.html'}",
        ),
        # unhealthy (exit 1) because the demo's incident is open, as the demo's status says
        "zoho-deleted status --org demo": (1, "Org demo: last successful run"),
    }
    assert sorted(commands) == sorted(expected), commands
    for command in commands:
        pasted = subprocess.run(
            command,
            shell=True,  # exactly as pasted into a shell
            cwd=demo_folder,
            env={**fresh_user_env(demo_folder), "PATH": f"{Path(ZOHO_DELETED).parent}:/usr/bin"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        code, says = expected[command]
        assert pasted.returncode == code, f"{command}: {pasted.stdout}{pasted.stderr}"
        assert says in pasted.stdout, f"{command}: {pasted.stdout}"
        assert "no run has succeeded" not in pasted.stdout + pasted.stderr
        assert "Traceback" not in pasted.stderr


def test_the_duckdb_shell_the_demo_names_opens_the_analyst_file(demo_folder):
    stdout = (demo_folder / "demo.out").read_text()
    named = re.search(r"itself: (.+) -readonly (\S+)\n", stdout)
    assert named and named[2] == ANALYST_FILE, stdout
    beside = Path(sys.executable).parent / "duckdb"
    if not beside.is_file():
        assert "not installed here: pip install duckdb-cli==" in named[1]
        pytest.skip(f"no duckdb shell beside {sys.executable}: pip install '.[cli]' installs it")
    shell = shlex.split(named[1])
    assert (demo_folder / shell[0]).resolve() == beside.resolve()
    query = "SELECT count(*) FROM zoho_crm_deleted.deleted_records WHERE org = 'demo';"
    opened = subprocess.run(
        [*shell, "-readonly", named[2], "-csv", "-noheader", "-c", query],
        cwd=demo_folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert opened.returncode == 0, opened.stderr
    landed = re.findall(r"\n  deleted_records +(\d+) rows\n", stdout)[-1]  # "Tables in dataset"
    assert opened.stdout.strip() == landed  # what the demo's summary says landed
    written = subprocess.run(
        [*shell, "-readonly", named[2], "-c", "CREATE TABLE t (i INTEGER);"],
        cwd=demo_folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "read-only" in written.stdout + written.stderr  # opened read-only, as printed
