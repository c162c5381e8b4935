"""Benchmark the Zoho CRM deleted-records pipeline against the local Zoho stand-in.

Run from the project root: `python benchmarks/bench.py [--records N [N ...]] [--json PATH]`.

For each org size (100,000, 200,000 and 1,000,000 deleted records by default; a fifth of each
module's records purged at one instant, which becomes the high-water mark), measures, each in
its own subprocess, against a stand-in served from this process on 127.0.0.1:

1. the raw floor: plain requests + json + pyarrow + duckdb, one page after another;
2. the pipeline's first run into a fresh DuckDB file and pipelines dir;
3. a second run with nothing new (same dir and file);

then once a first run against a small org (8 pages per module) with 150 ms added to every
API call. Then the record values (`--values-records`, 1,000,000 by default): the raw floor and
a first capture of that many live records with 30 fields, back to back; an hour with 1% of the
records changed; a run with nothing changed (see `values_runs`). `--part lists` or `--part
values` runs one part only.

Peak RSS is the whole child's, as the kernel counts it (its `VmHWM`, read from
outside until it exits: what a container limit or systemd's MemoryMax sees), not a reading
taken inside.

Offline: the stand-in is local and dlt's telemetry is switched off in the children.

The parts: `scale` (the orgs measured), `runs` (what is run at each), `measure` (one child
against the stand-in), `peak_rss` (a child to its exit, its peak sampled from outside),
`raw_floor` and `pipeline_run` (the children's jobs), `report` (what is printed).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/bench.py`: make the project importable
    sys.path.insert(0, str(ROOT))

from benchmarks.report import figures_json, header, report  # noqa: E402
from benchmarks.runs import measure_latency, measure_scale  # noqa: E402
from benchmarks.scale import RECORDS  # noqa: E402
from benchmarks.values_org import VALUES_RECORDS  # noqa: E402
from benchmarks.values_runs import measure_values, values_report  # noqa: E402


def child_main(kind: str, spec_json: str) -> None:
    """Entry point of a measured subprocess: do one job, print its figures as one JSON line."""
    spec = json.loads(spec_json)
    if kind == "raw":
        from benchmarks.raw_floor import raw_floor as job
    elif kind == "raw-values":
        from benchmarks.values_floor import raw_values_floor as job
    else:
        from benchmarks.pipeline_run import pipeline_run as job
    print(json.dumps(job(spec)))


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--records",
        type=int,
        nargs="+",
        default=list(RECORDS),
        help="org sizes to measure (deleted records to seed)",
    )
    parser.add_argument(
        "--values-records",
        type=int,
        nargs="+",
        default=list(VALUES_RECORDS),
        help="live records to capture (record values part)",
    )
    parser.add_argument(
        "--part", choices=("all", "lists", "values"), default="all", help="what to measure"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument(
        "--child", choices=("raw", "raw-values", "pipeline"), help=argparse.SUPPRESS
    )
    parser.add_argument("spec", nargs="?", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    if args.child:
        child_main(args.child, args.spec)
        return
    lines = header()
    print("\n".join(lines), flush=True)
    figures = {}
    with tempfile.TemporaryDirectory(prefix="zoho-bench-") as tmp:
        if args.part in ("all", "lists"):
            scales = [measure_scale(records, Path(tmp) / str(records)) for records in args.records]
            latent = measure_latency(Path(tmp))
            print("\n".join(report(scales, latent)), flush=True)
            figures = figures_json(lines, scales, latent)
        if args.part in ("all", "values"):
            values = [
                measure_values(records, Path(tmp) / f"values-{records}")
                for records in args.values_records
            ]
            print("\n".join(values_report(values)))
            figures.setdefault("header", lines)
            figures["values"] = [asdict(v) for v in values]
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
        print(f"\nfigures written to {args.json}")


if __name__ == "__main__":
    main()
