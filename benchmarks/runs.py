"""The runs the benchmark makes: at each org size the raw floor, a first run and a nothing-new
run; then once a first run against a small org with latency added to every call."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.measure import Measurement, measure
from benchmarks.scale import (
    LATENCY,
    LATENCY_PAGES_PER_MODULE,
    MODULES,
    PER_PAGE,
    PURGED_FRACTION,
    seeded_server,
)


@dataclass
class Scale:
    """The three runs at one org size, and how the stand-in was seeded for them."""

    raw: Measurement
    first: Measurement
    second: Measurement
    setup: str

    @property
    def first_to_raw(self) -> float:
        return self.first.wall_s / self.raw.wall_s


def measure_scale(records: int, work: Path) -> Scale:
    """The raw floor, a first run and a nothing-new run against an org of `records`."""
    for name in ("raw", "first"):
        (work / name).mkdir(parents=True)
    seeded = time.perf_counter()
    server, entries = seeded_server(records)
    setup = (
        f"stand-in  {entries:,} deleted records in {len(MODULES)} modules, "
        f"{PURGED_FRACTION:.0%} purged at one instant per module; seeded in "
        f"{time.perf_counter() - seeded:.1f} s"
    )
    print(setup, flush=True)
    size = f"{entries // 1000:,}k"
    try:
        spec = {"url": server.url, "modules": list(MODULES)}
        raw_spec = {**spec, "db": str(work / "raw" / "raw.duckdb")}
        pipeline_spec = {
            **spec,
            "db": str(work / "first" / "zoho.duckdb"),
            "pipelines_dir": str(work / "first" / "pipelines"),
        }
        runs = [
            (f"{size}: raw floor (requests+pyarrow+duckdb)", "raw", raw_spec, work / "raw"),
            (f"{size}: pipeline, first run", "pipeline", pipeline_spec, work / "first"),
            (f"{size}: pipeline, nothing new", "pipeline", pipeline_spec, work / "first"),
        ]
        measured = []
        for name, kind, child_spec, workdir in runs:
            measured.append(measure(name, kind, server, child_spec, workdir))
            print(f"  done: {name} {measured[-1].wall_s:.1f} s", flush=True)
    finally:
        server.stop()
    scale = Scale(*measured, setup=setup)
    if scale.raw.rows != scale.first.rows:
        print(
            f"  rows MISMATCH: raw {scale.raw.rows_by_table}, pipeline {scale.first.rows_by_table}"
        )
    return scale


def measure_latency(work: Path) -> Measurement:
    """A first run against a small org with LATENCY added to every call."""
    (work / "latency").mkdir()
    small = len(MODULES) * LATENCY_PAGES_PER_MODULE * PER_PAGE
    server, small_entries = seeded_server(small, latency=LATENCY)
    try:
        return measure(
            f"{small_entries // 1000:,}k: pipeline, first run, +{LATENCY * 1000:.0f} ms/call",
            "pipeline",
            server,
            {
                "url": server.url,
                "modules": list(MODULES),
                "db": str(work / "latency" / "zoho.duckdb"),
                "pipelines_dir": str(work / "latency" / "pipelines"),
            },
            work / "latency",
        )
    finally:
        server.stop()
