"""What publishing the analyst file adds to a run, and what the ways of copying cost.

Run from the project root: `python benchmarks/analyst_copy.py [--records N ...]`.

For each size: the stand-in is seeded with N deleted records (benchmarks/bench.py's shape), the
pipeline's first run loads them, then an "hourly" run loads 100 new deletions and 20 purges.
Printed per size:

- each run's publish time and the files' sizes, from `RunResult`;
- how much of the file the hourly run changed (256 KiB blocks that differ between the copies
  of the two runs), and the disk each copy holds alone (blocks no other file shares, from
  `filefrag`): on a reflink-capable filesystem (btrfs, XFS; `--dir` on one) a copy shares
  every block with the pipeline's file until the next run rewrites some;
- the ways of copying the file after the hourly run, each timed on its own until the copy is
  on disk (fsync): `CHECKPOINT`;
  `os.copy_file_range` (the pipeline's way); `shutil.copyfile` (sendfile); `cp --reflink=auto`;
  DuckDB's `COPY FROM DATABASE` into a new file (its size too).

The page cache is warm (the file was just written), as it is when a run publishes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/analyst_copy.py`
    sys.path.insert(0, str(ROOT))

from benchmarks.measure import child_env  # noqa: E402
from benchmarks.report import header  # noqa: E402
from benchmarks.scale import MODULES, seeded_server  # noqa: E402

DUCKDB_HEADER = 3 * 4096  # DuckDB's file header; blocks of BLOCK bytes follow
BLOCK = 256 * 1024
HOURLY_DELETIONS = 100
HOURLY_PURGES = 20


def _mb(size: float) -> str:
    return f"{size / 1e6:,.1f} MB"


def changed_blocks(before: Path, after: Path) -> tuple:
    """(blocks of `after` that differ from `before` at the same place, blocks of `after`)."""
    changed = total = 0
    with before.open("rb") as old, after.open("rb") as new:
        old.seek(DUCKDB_HEADER)
        new.seek(DUCKDB_HEADER)
        while block := new.read(BLOCK):
            total += 1
            changed += old.read(BLOCK) != block
    return changed, total


def unshared_bytes(path: Path) -> int:
    """Bytes of `path` on disk that no other file shares: the disk it adds. A reflink copy
    shares its blocks until either file rewrites them (`filefrag`'s `shared` extents)."""
    os.sync()  # extents are final once written out
    report = subprocess.run(
        ["filefrag", "-v", str(path)], check=True, capture_output=True, text=True
    ).stdout
    block = int(re.search(r"blocks of (\d+) bytes", report).group(1))
    shared = sum(
        int(extent.group(1))
        for extent in re.finditer(r"^\s*\d+:.*?:.*?:\s*(\d+):.*\bshared\b", report, re.M)
    )
    return max(path.stat().st_size - shared * block, 0)


def hourly_changes(org: Any) -> None:
    """New deletions in every module, and some bin entries purged, as in a busy hour."""
    from zoho_standin.seed import USERS, record_id

    now = datetime.now(UTC).replace(microsecond=0)
    user, tz = USERS[0]
    for n in range(HOURLY_DELETIONS):
        module_index = n % len(MODULES)
        rid = record_id(module_index, 900_000_000 + n)
        org.delete(MODULES[module_index], rid, now.astimezone(tz), f"New {n}", user, user, user)
    binned = [e for e in org.entries.values() if e.type == "recycle"][:HOURLY_PURGES]
    for entry in binned:
        org.purge(entry.module, entry.id, now + timedelta(seconds=1))


def timed(label: str, action: Callable[[], Any]) -> str:
    started = time.perf_counter()
    action()
    return f"  {label:<44}{time.perf_counter() - started:8.2f} s"


def flushed(path: Path) -> None:
    """fsync `path`, as publishing does: each way is timed until its copy is on disk."""
    with path.open("rb") as copy:
        os.fsync(copy.fileno())


def copy_ways(pipeline_file: Path, work: Path) -> List[str]:
    """Each way of copying the pipeline's file, timed alone."""
    import duckdb

    from pipelines.analyst_file import copy_file

    def checkpoint() -> None:
        with duckdb.connect(str(pipeline_file)) as db:
            db.execute("CHECKPOINT")

    def kernel_copy() -> None:
        with pipeline_file.open("rb") as source, (work / "kernel.duckdb").open("wb") as copy:
            copy_file(source, copy)
        flushed(work / "kernel.duckdb")

    def sendfile_copy() -> None:
        shutil.copyfile(pipeline_file, work / "sendfile.duckdb")
        flushed(work / "sendfile.duckdb")

    def cp_copy() -> None:
        cp = ["cp", "--reflink=auto", str(pipeline_file), str(work / "cp.duckdb")]
        subprocess.run(cp, check=True)
        flushed(work / "cp.duckdb")

    def copy_from_database() -> None:
        with duckdb.connect() as db:
            db.execute(f"ATTACH '{pipeline_file}' AS source (READ_ONLY)")
            db.execute(f"ATTACH '{work / 'copied.duckdb'}' AS copied")
            db.execute("COPY FROM DATABASE source TO copied")
            db.execute("CHECKPOINT copied")
        flushed(work / "copied.duckdb")

    lines = [
        timed("CHECKPOINT (nothing left to write)", checkpoint),
        timed("os.copy_file_range (the pipeline's)", kernel_copy),
        timed("shutil.copyfile (sendfile)", sendfile_copy),
        timed("cp --reflink=auto", cp_copy),
        timed("DuckDB COPY FROM DATABASE to a new file", copy_from_database),
    ]
    lines.append(f"  COPY FROM DATABASE wrote {_mb((work / 'copied.duckdb').stat().st_size)}")
    return lines


def measure(records: int, work: Path) -> List[str]:
    """Two runs at `records` records; their publish figures and the copying alternatives."""
    from pipelines.duckdb_file import duckdb_destination
    from pipelines.names import DUCKDB_FILE
    from pipelines.run import make_pipeline, run

    pipeline_file = work / DUCKDB_FILE
    pipeline = make_pipeline(
        destination=duckdb_destination(str(pipeline_file)), pipelines_dir=str(work / "pipelines")
    )
    seeded = time.perf_counter()
    server, entries = seeded_server(records)
    lines = [f"{entries:,} records (seeded in {time.perf_counter() - seeded:.0f} s)"]
    os.environ.update(child_env(work / "dlt_data"))  # the stand-in's credentials, as bench's
    args: Dict[str, Any] = {
        "accounts_server": server.url,
        "api_domain": server.url,
        "modules": list(MODULES),
    }
    def timed_run(name: str) -> Any:
        started = time.perf_counter()
        result = run(pipeline, **args)
        lines.append(
            f"  {name:<11} run {time.perf_counter() - started:7.2f} s, publishing "
            f"{result.analyst_publish_s:6.2f} s; pipeline file "
            f"{_mb(pipeline_file.stat().st_size)}, analyst file {_mb(result.analyst_file_bytes)}"
        )
        return result

    try:
        first = timed_run("first run")
        first_copy = work / "first_copy.duckdb"
        os.link(str(first.analyst_file), first_copy)  # kept when the hourly run replaces it
        hourly_changes(server.org)
        hourly = timed_run("hourly run")
    finally:
        server.stop()
    changed, total = changed_blocks(first_copy, Path(str(hourly.analyst_file)))
    lines += [
        f"  the hourly run changed {changed:,} of {total:,} blocks of 256 KiB "
        f"({changed / total:.1%}, {_mb(changed * BLOCK)})",
        f"  disk only the hourly run's analyst file holds, after publishing: "
        f"{_mb(unshared_bytes(Path(str(hourly.analyst_file))))}",
        f"  disk only the first run's analyst file holds, after the hourly run: "
        f"{_mb(unshared_bytes(first_copy))}",
    ]
    return lines + copy_ways(pipeline_file, work)


def main(argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--records", type=int, nargs="+", default=[200_000, 1_000_000], help="sizes to measure"
    )
    parser.add_argument("--dir", help="where to write the files (default: a temporary folder)")
    args = parser.parse_args(argv or None)
    print("\n".join(header()), flush=True)
    for records in args.records:
        with tempfile.TemporaryDirectory(prefix="zoho-analyst-", dir=args.dir) as tmp:
            print("\n".join(measure(records, Path(tmp))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
