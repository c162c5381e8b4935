"""Progress on a terminal: `zoho-deleted run` shows its progress on stderr when stderr is a
terminal (an interactive shell, here a pseudo-terminal) in a few lines, one per step, and
nothing under cron (no terminal)."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Tuple

import pytest
from conftest import NOW, delete, env_for
from test_cli import cli

ZOHO_DELETED = str(Path(sys.executable).parent / "zoho-deleted")
# a step's line: its name, duration, and rows (jobs for a load)
STEP = re.compile(r"^(Extract|Normalize|Load) +\d+\.\d s  ([\d,]+) (?:rows|jobs)", re.M)
BANNER = re.compile(r"--- \w+ zoho_crm")  # dlt's `log` collector's heading
PROGRESS = re.compile(f"{STEP.pattern}|{BANNER.pattern}", re.M)
GUARD = 120  # seconds after which a run that still holds the terminal is killed


def on_terminal(server, tmp_path, *argv: str, stderr_too: bool = True) -> Tuple[int, str, str]:
    """Run the CLI with stdin and stdout (and stderr, unless not `stderr_too`) on a
    pseudo-terminal: (exit code, what the terminal showed, stderr when it went to a file)."""
    controller, terminal = pty.openpty()
    with tempfile.TemporaryFile() as err_file:
        child = subprocess.Popen(
            [ZOHO_DELETED, *argv],
            cwd=tmp_path,
            env=env_for(server, tmp_path),
            stdin=terminal,
            stdout=terminal,
            stderr=terminal if stderr_too else err_file,
        )
        os.close(terminal)
        shown = b""
        deadline = time.monotonic() + GUARD
        try:
            while time.monotonic() < deadline:
                if not select.select([controller], [], [], 1.0)[0]:
                    continue
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # EIO: every process holding the terminal has closed it
                    break
                if not chunk:
                    break
                shown += chunk
            else:
                pytest.fail(f"zoho-deleted {' '.join(argv)} still running after {GUARD} s")
            code = child.wait(timeout=GUARD)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            os.close(controller)
        err_file.seek(0)
        err = err_file.read().decode()
    return code, shown.decode().replace("\r\n", "\n"), err


@pytest.fixture
def deletions(org):
    for n in range(3):
        delete(org, "Leads", f"10{n}", NOW - timedelta(days=1))


def test_a_run_on_a_terminal_shows_progress(deletions, server, tmp_path):
    code, shown, _ = on_terminal(server, tmp_path, "run")
    assert code == 0, shown
    lines = shown.split("\n")
    final = [line.split("\r")[-1].replace("\x1b[K", "") for line in lines]  # as left on screen
    steps = [(m.group(1), m.group(2)) for m in STEP.finditer("\n".join(final))]
    # one line a step: the data's package, then the `runs` row
    assert [name for name, _ in steps] == ["Extract", "Normalize", "Load"] * 2
    assert steps[0] == ("Extract", "10")  # 3 deleted_records, 3 events, 3 bin entries, a memo
    assert re.search(r"^Extract .* \d+ Zoho calls$", "\n".join(final), re.M)
    assert not BANNER.search(shown)
    assert "deleted_records                  3 rows" in shown  # the summary, as without
    summary = cli(server, tmp_path, "run").stdout  # the same summary off a terminal
    assert len(lines) <= len(summary.split("\n")) + len(steps) + 1  # a few lines, no more


def test_a_run_without_a_terminal_shows_no_progress(deletions, server, tmp_path):
    cron = subprocess.run(
        [ZOHO_DELETED, "run"],
        cwd=tmp_path,
        env=env_for(server, tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=GUARD,
    )
    assert cron.returncode == 0, cron.stderr
    assert "deleted_records                  3 rows" in cron.stdout
    assert not PROGRESS.search(cron.stdout + cron.stderr)
    assert "Resources:" not in cron.stdout + cron.stderr


def test_progress_goes_only_to_a_terminal_stderr(deletions, server, tmp_path):
    """Stdout on a terminal but stderr into a file (a log): progress would land in the log,
    so there is none, on either."""
    code, shown, err = on_terminal(server, tmp_path, "run", stderr_too=False)
    assert code == 0, shown + err
    assert "deleted_records                  3 rows" in shown
    assert not PROGRESS.search(shown + err)
