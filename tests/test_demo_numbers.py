"""The demo's screens agree: its sample query counts records as `status` does (restored ones
apart), and its tables' row counts add up to both."""

from __future__ import annotations

import os
import re
import subprocess
from typing import Dict, Tuple

from test_cli import ZOHO_DELETED

SAMPLE_ROW = re.compile(r"^  (\w+) +(recycle|permanent) +(\d+) +(\d+) +(\d+)  \d{4}-", re.M)
STATUS_ROW = re.compile(r"^  (\w+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+)$", re.M)


def test_the_demos_sample_query_and_status_agree(tmp_path):
    env = {"DLT_DATA_DIR": str(tmp_path / "dlt"), "PATH": "/usr/bin:/bin"}
    env.update({k: v for k, v in os.environ.items() if k == "PYTHONPATH"})  # this checkout's code
    shown = subprocess.run(
        [ZOHO_DELETED, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    sample: Dict[Tuple[str, str], Tuple[int, int, int]] = {
        (m, kind): (int(n), int(details), int(restored))
        for m, kind, n, details, restored in SAMPLE_ROW.findall(shown.stdout)
    }
    status = {m: tuple(map(int, c)) for m, *c in STATUS_ROW.findall(shown.stdout)}
    assert status and set(status) == {m for m, _ in sample}, shown.stdout
    for module, (in_bin, permanent, _, no_details, restored) in status.items():
        assert sample[module, "recycle"][0] == in_bin
        assert sample[module, "permanent"][0] == permanent
        assert permanent - sample[module, "permanent"][1] == no_details
        assert sample[module, "recycle"][2] + sample[module, "permanent"][2] == restored
    assert status["Leads"][4] == 1  # the demo's restored Lead, apart from the bin's 205
    total = re.search(r"^  deleted_records +(\d+) rows$", shown.stdout.split("Tables in")[1], re.M)
    assert total and int(total[1]) == sum(n + r for n, _, r in sample.values())
