"""What the benchmark prints and writes: the header (date, machine, versions, command), the
figures table with its legend and ratios, the latency run against its bounds, the JSON."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict
from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence

from benchmarks.measure import Measurement
from benchmarks.runs import Scale
from benchmarks.scale import LATENCY, MODULES

LEGEND = [
    "wall s          the work alone, timed in the child (after its imports)",
    "CPU s           CPU the child spent on the work, all threads: its own cost",
    "peak RSS MB     the whole child's peak, as the kernel counts it (VmHWM, read to exit)",
    "process s       the whole child: interpreter start, imports, work, exit",
    "stand-in CPU s  CPU the stand-in spent answering (it runs in the benchmark process)",
]


def header() -> List[str]:
    """Date, machine, versions and command, for whoever reads the figures later."""
    mem_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    versions = _versions()
    return [
        f"date      {datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine   nproc {len(os.sched_getaffinity(0))}, memory {mem_kb / 1024**2:.1f} GiB, "
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        f"versions  {versions}",
        f"command   python {' '.join(sys.argv)}",
    ]


def _versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{p} {version(p)}" for p in ("dlt", "duckdb", "pyarrow", "requests"))


def _fmt(value: Optional[float], digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(measurements: Sequence[Measurement]) -> List[str]:
    """The figures as an aligned plain-text table."""
    columns = (
        "wall s",
        "CPU s",
        "rows",
        "rows/s",
        "peak RSS MB",
        "API calls",
        "process s",
        "stand-in CPU s",
    )
    body = [
        (
            m.name,
            _fmt(m.wall_s, 2),
            _fmt(m.cpu_s, 2),
            f"{m.rows:,}",
            _fmt(m.rows_per_s, 0),
            _fmt(m.peak_rss_mb, 0),
            f"{m.api_calls:,}",
            _fmt(m.process_s, 2),
            _fmt(m.standin_cpu_s, 2),
        )
        for m in measurements
    ]
    rows = [("", *columns), *body]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def latency_lines(m: Measurement, latency: float, concurrency: int) -> List[str]:
    """What parallelism bought on the latency run: its wall time against the bounds."""
    sequential = m.api_calls * latency
    stream, stream_pages = max(m.pages_by_stream.items(), key=lambda item: item[1])
    modules = {s: n for s, n in m.pages_by_stream.items() if s in MODULES}
    module, module_pages = max(modules.items(), key=lambda item: item[1])
    bounds = [
        ("every call one after another", sequential, ""),
        (f"slowest module: {module}, {module_pages} pages", module_pages * latency, ""),
        (
            f"slowest stream: {stream}, {stream_pages} pages",
            stream_pages * latency,
            "a stream's pages are sequential",
        ),
        (f"every call, {concurrency} in flight", sequential / concurrency, ""),
        ("measured", m.wall_s, f"max calls in flight seen: {m.max_in_flight}"),
    ]
    width = max(len(label) for label, _, _ in bounds)
    return [
        f"latency run: {m.api_calls} API calls x {latency:.2f} s, concurrency cap {concurrency}",
        *(
            f"  {label.ljust(width)}  {seconds:6.2f} s  {note}".rstrip()
            for label, seconds, note in bounds
        ),
    ]


def _measurements(scales: Sequence[Scale], latent: Measurement) -> List[Measurement]:
    return [m for s in scales for m in (s.raw, s.first, s.second)] + [latent]


def _ratios(scales: Sequence[Scale]) -> Dict[str, float]:
    return {s.first.name: s.first_to_raw for s in scales}


def report(scales: Sequence[Scale], latent: Measurement) -> List[str]:
    """The table, its legend, each first run against its raw floor, and the latency run."""
    smallest = scales[0].first.peak_rss_mb
    return [
        "",
        *table(_measurements(scales, latent)),
        "",
        *LEGEND,
        "",
        *(f"{name} / raw floor: wall {ratio:.2f}x" for name, ratio in _ratios(scales).items()),
        *(
            f"{m.name}: {m.extra.get('packages', 1)} load packages, peak RSS "
            f"{m.peak_rss_mb / smallest:.2f}x the smallest org's; analyst file "
            f"{m.extra.get('analyst_file_mb', 0):.1f} MB published in "
            f"{m.extra.get('analyst_publish_s') or 0:.2f} s"
            for m in (s.first for s in scales)
        ),
        "",
        *latency_lines(latent, LATENCY, latent.extra["max_concurrency"]),
    ]


def figures_json(header_lines: List[str], scales: Sequence[Scale], latent: Measurement) -> Any:
    """The figures for `--json`: header, every measurement, ratios and the latency bounds."""
    return {
        "header": header_lines + [s.setup for s in scales],
        "measurements": [
            {**asdict(m), "rows_per_s": m.rows_per_s} for m in _measurements(scales, latent)
        ],
        "first_run_to_raw_floor": _ratios(scales),
        "latency": {
            "seconds_per_call": LATENCY,
            "sequential_s": latent.api_calls * LATENCY,
            "slowest_stream_s": max(latent.pages_by_stream.values()) * LATENCY,
            "max_concurrency": latent.extra["max_concurrency"],
        },
    }
