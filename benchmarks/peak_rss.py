"""A measured child run to its end, its peak resident memory sampled from outside the process
(`VmHWM` in `/proc/<pid>/status`): what a container limit or systemd's MemoryMax sees."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

CHILD_TIMEOUT = 1800  # seconds; a hung child fails the benchmark instead of stalling it


def run_child(argv: List[str], workdir: Path, env: Dict[str, str]) -> Tuple[str, str, int, int]:
    """Run a child to its end: (stdout, stderr, exit code, peak RSS in KiB).

    The peak is the kernel's high-water mark of the child's whole memory (`VmHWM` in
    `/proc/<pid>/status`, read every 10 ms until it exits), so it includes what happens after
    the child's last word: load, merge, close and exit. (`wait4`'s `ru_maxrss` would not do:
    Linux carries the forked parent's size across `exec` into it.)
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(argv, cwd=workdir, env=env, stdout=out, stderr=err, text=True)
        deadline, peak_kb = time.monotonic() + CHILD_TIMEOUT, 0
        while child.poll() is None:
            peak_kb = max(peak_kb, _high_water_kb(child.pid))
            if time.monotonic() > deadline:
                child.kill()
                raise SystemExit(f"child {argv[3]} ran over {CHILD_TIMEOUT} s")
            time.sleep(0.01)
        out.seek(0)
        err.seek(0)
        return out.read(), err.read(), child.returncode, peak_kb


def _high_water_kb(pid: int) -> int:
    """The process's peak resident memory so far (0 once it has gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0
