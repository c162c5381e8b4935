"""Measuring one child against the stand-in: its environment, its figures, and what the
stand-in counted while it ran (API calls by route, pages by stream, calls in flight)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional
from urllib.parse import parse_qs, urlsplit

from benchmarks.peak_rss import run_child

if TYPE_CHECKING:
    from zoho_standin import StandinServer

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().with_name("bench.py")  # a child is `bench.py --child KIND SPEC`
# rows counted (`values_leads`: the record values' benchmark)
DATA_TABLES = ("deleted_records", "recycle_bin", "deleted_related_records", "values_leads")


@dataclass
class Measurement:
    """One measured subprocess run."""

    name: str
    wall_s: float  # the work alone, timed inside the child (after imports)
    cpu_s: float  # CPU the child spent on the work, all its threads
    process_s: float  # the whole child: interpreter start, imports, work, exit
    rows: int
    rows_by_table: Dict[str, int]
    peak_rss_mb: float
    api_calls: int
    calls_by_route: Dict[str, int]
    pages_by_stream: Dict[str, int]
    standin_cpu_s: float  # CPU the stand-in (this process) spent answering
    max_in_flight: int
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> Optional[float]:
        return self.rows / self.wall_s if self.rows and self.wall_s else None


def child_env(data_dir: Path) -> Dict[str, str]:
    """The children's environment: no project `.dlt` config, quiet dlt, no telemetry."""
    from zoho_standin import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SOURCES__", "DESTINATION__", "RUNTIME__", "NORMALIZE__", "LOAD__"))
    }
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
            "DLT_DATA_DIR": str(data_dir),
            "RUNTIME__LOG_LEVEL": "WARNING",
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "SOURCES__ZOHO_CRM__CREDENTIALS__CLIENT_ID": CLIENT_ID,
            "SOURCES__ZOHO_CRM__CREDENTIALS__CLIENT_SECRET": CLIENT_SECRET,
            "SOURCES__ZOHO_CRM__CREDENTIALS__REFRESH_TOKEN": REFRESH_TOKEN,
        }
    )
    return env


def _stream(route: str, target: str) -> str:
    """The stream a request belongs to: a module's deleted records, or (a module's part of)
    the recycle bin."""
    if route == "deleted":
        return urlsplit(target).path.split("/")[3]
    filters = parse_qs(urlsplit(target).query).get("filters")
    if route == "recycle_bin" and filters:
        module = [
            c["value"]
            for c in json.loads(filters[0])["group"]
            if c["field"]["api_name"] == "module"
        ]
        if module:
            return f"recycle_bin:{module[0]}"
    return route


def measure(
    name: str, kind: str, server: StandinServer, spec: Dict[str, Any], workdir: Path
) -> Measurement:
    """Run one child against `server` and collect its figures and the stand-in's counts."""
    server.reset_counts()
    cpu_before, started = time.process_time(), time.perf_counter()
    out, err, returncode, peak_kb = run_child(
        [sys.executable, str(BENCH), "--child", kind, json.dumps(spec)],
        workdir,
        child_env(workdir / "dlt_data"),
    )
    process_s = time.perf_counter() - started
    standin_cpu = time.process_time() - cpu_before
    if returncode != 0:
        sys.stderr.write(out + err)
        raise SystemExit(f"{name}: child exited with {returncode}")
    figures = json.loads(out.strip().splitlines()[-1])
    # The child has exited: nothing else touches the stand-in's counts now.
    calls = {route: n for route, n in server.calls.items() if route != "token" and n}
    pages = Counter(_stream(route, target) for route, target, _ in server.requests)
    extra = {k: v for k, v in figures.items() if k not in ("wall", "cpu", "rows", "peak_rss_mb")}
    extra["statuses"] = dict(server.statuses)
    return Measurement(
        name=name,
        wall_s=figures["wall"],
        cpu_s=figures["cpu"],
        process_s=process_s,
        rows=sum(figures["rows"].get(t, 0) for t in DATA_TABLES),
        rows_by_table=figures["rows"],
        peak_rss_mb=peak_kb / 1024,
        api_calls=server.api_calls(),
        calls_by_route=calls,
        pages_by_stream=dict(pages),
        standin_cpu_s=standin_cpu,
        max_in_flight=server.max_in_flight,
        extra=extra,
    )
