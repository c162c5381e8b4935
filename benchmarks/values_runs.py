"""The record values' runs: at each org size the raw floor and the pipeline's first capture
back to back, then an hour's changes and a run with nothing changed, with the calls each made."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

from benchmarks.measure import Measurement, measure
from benchmarks.values_org import VALUES_MODULE, change_an_hour, seeded_values_server

PER_PAGE = 200
TARGET_PEAK_MB = 400
TARGET_RATIO = 1.3


@dataclass
class ValuesScale:
    records: int
    raw: Measurement
    first: Measurement
    hourly: Measurement
    nothing: Measurement
    changed: int
    setup: str

    @property
    def first_to_raw(self) -> float:
        return self.first.wall_s / self.raw.wall_s


def _values_calls(measurement: Measurement) -> int:
    return measurement.calls_by_route.get("records", 0)


def _answers(measurement: Measurement) -> str:
    """How the stand-in answered the run's Get Records calls, e.g. `304 x1`."""
    statuses = measurement.extra.get("statuses", {})
    return ", ".join(
        f"{key.split()[1]} x{n}"
        for key, n in sorted(statuses.items())
        if key.startswith("records ")
    ) or "-"


def measure_values(records: int, work: Path) -> ValuesScale:
    """Raw floor, first capture, an hour's changes, nothing changed: against `records`."""
    for name in ("raw", "first"):
        (work / name).mkdir(parents=True)
    seeded = time.perf_counter()
    server, _ = seeded_values_server(records)
    setup = (
        f"stand-in  {records:,} live {VALUES_MODULE} with 30 fields (made on demand); "
        f"seeded in {time.perf_counter() - seeded:.1f} s"
    )
    print(setup, flush=True)
    budget = math.ceil(records / PER_PAGE) * 2 + 100  # the first capture in one run
    spec: Dict[str, Any] = {"url": server.url, "modules": [VALUES_MODULE]}
    pipeline_spec = {
        **spec,
        "record_values": [VALUES_MODULE],
        "values_calls_per_run": budget,
        "db": str(work / "first" / "zoho.duckdb"),
        "pipelines_dir": str(work / "first" / "pipelines"),
    }
    size = f"{records // 1000:,}k values"
    measured: List[Measurement] = []
    changed = 0
    try:
        runs = [
            (f"{size}: raw floor (requests+json+pyarrow+duckdb)", "raw-values",
             {**spec, "db": str(work / "raw" / "raw.duckdb")}, work / "raw"),
            (f"{size}: pipeline, first capture", "pipeline", pipeline_spec, work / "first"),
            (f"{size}: pipeline, an hour's 1% changed", "pipeline", pipeline_spec, work / "first"),
            (f"{size}: pipeline, nothing changed", "pipeline", pipeline_spec, work / "first"),
        ]  # fmt: skip
        for index, (name, kind, child_spec, workdir) in enumerate(runs):
            if index == 2:
                changed = change_an_hour(server, records)
            measured.append(measure(name, kind, server, child_spec, workdir))
            print(f"  done: {name} {measured[-1].wall_s:.1f} s", flush=True)
    finally:
        server.stop()
    return ValuesScale(records, *measured, changed=changed, setup=setup)


def values_report(scales: List[ValuesScale]) -> List[str]:
    """The figures against the targets, and the calls of the incremental runs."""
    lines = ["", "record values (Get Records, one module, 30 fields, one field group)"]
    for s in scales:
        lines += [f"  {s.setup}"]
        for m in (s.raw, s.first, s.hourly, s.nothing):
            lines.append(
                f"  {m.name:<52} wall {m.wall_s:7.1f} s  CPU {m.cpu_s:7.1f} s  "
                f"peak RSS {m.peak_rss_mb:6.0f} MB  rows {m.rows:>9,}  "
                f"Get Records calls {_values_calls(m):>5,}"
            )
        ratio, peak = s.first_to_raw, s.first.peak_rss_mb
        expected = math.ceil(s.changed / PER_PAGE)
        lines += [
            f"  first capture / raw floor: {ratio:.2f}x (target <= {TARGET_RATIO}x) "
            f"{'ok' if ratio <= TARGET_RATIO else 'OVER'}; peak {peak:.0f} MB "
            f"(target <= {TARGET_PEAK_MB} MB) {'ok' if peak <= TARGET_PEAK_MB else 'OVER'}",
            f"  an hour's {s.changed:,} changed records: {_values_calls(s.hourly)} Get Records "
            f"calls (ceil(changed/200) = {expected} for one field group) "
            f"{'ok' if _values_calls(s.hourly) == expected else 'DIFFERS'}",
            f"  nothing changed: {_values_calls(s.nothing)} Get Records call(s), answered "
            f"{_answers(s.nothing)}",
        ]
    return lines
