"""Benchmark the Zoho CRM deleted-records pipeline against the local Zoho stand-in.

Run from the project root: `python benchmarks/bench.py [--records N [N ...]] [--json PATH]`.

For each org size (100,000, 200,000 and 1,000,000 deleted records by default; a fifth of each
module's records purged at one instant, which becomes the high-water mark), measures, each in
its own subprocess, against a stand-in served from this process on 127.0.0.1:

1. the raw floor: plain requests + json + pyarrow + duckdb, one page after another;
2. the pipeline's first run into a fresh DuckDB file and pipelines dir;
3. a second run with nothing new (same dir and file);

then once a first run against a small org (8 pages per module) with 150 ms added to every
API call. Peak RSS is the whole child's, as the kernel counts it (its `VmHWM`, read from
outside until it exits: what a container limit or systemd's MemoryMax sees), not a reading
taken inside.

Offline: the stand-in is local and dlt's telemetry is switched off in the children.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Tuple
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/bench.py`: make the project importable
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from zoho_standin import StandinServer

MODULES = ("Leads", "Contacts", "Deals", "Accounts", "Cases")
PURGED_FRACTION = 0.2
PER_PAGE = 200
LATENCY = 0.15
LATENCY_PAGES_PER_MODULE = 8
CHILD_TIMEOUT = 1800  # seconds; a hung child fails the benchmark instead of stalling it
DATA_TABLES = ("deleted_records", "recycle_bin", "deleted_related_records")


# -- the children -----------------------------------------------------------------------------
def _raw_pages(
    session: Any, url: str, params: Dict[str, Any], data_key: str, wait: List[float]
) -> Iterator[List[Dict[str, Any]]]:
    """Every page of a Zoho list, following `next_page_token` (else `page`); adds HTTP time
    to `wait[0]`. The floor re-states Zoho's paging rule (`sources.zoho_crm.client.next_page`)
    on purpose: it must not import the pipeline's code, or dlt with it."""
    query: Dict[str, Any] = {**params, "per_page": PER_PAGE, "page": 1}
    while True:
        started = time.perf_counter()
        response = session.get(url, params=query)
        if response.status_code == 204:
            wait[0] += time.perf_counter() - started
            return
        response.raise_for_status()
        body = json.loads(response.content)
        wait[0] += time.perf_counter() - started
        records = body.get(data_key) or []
        if records:
            yield records
        info = body.get("info") or {}
        if not info.get("more_records"):
            return
        token = info.get("next_page_token")
        query = {k: v for k, v in query.items() if k not in ("page", "page_token")}
        if token:
            query["page_token"] = token
        else:
            query["page"] = int(info.get("page", 1)) + 1


def _raw_floor(spec: Dict[str, Any]) -> Dict[str, Any]:
    """The least any pipeline must do: fetch every page, type it with Arrow, insert it."""
    import duckdb
    import pyarrow as pa
    import requests

    user = pa.struct([("name", pa.string()), ("id", pa.string())])
    deleted_schema = pa.schema(
        [
            ("id", pa.string()),
            ("display_name", pa.string()),
            ("type", pa.string()),
            ("deleted_time", pa.string()),
            ("deleted_by", user),
            ("created_by", user),
        ]
    )
    bin_schema = pa.schema(
        [
            ("id", pa.string()),
            ("module", pa.struct([("api_name", pa.string()), ("id", pa.string())])),
            ("display_name", pa.string()),
            ("deleted_time", pa.string()),
            ("deleted_by", user),
            ("owner", user),
        ]
    )
    timestamp = pa.timestamp("us", tz="UTC")

    def to_arrow(page: List[Dict[str, Any]], schema: pa.Schema) -> pa.Table:
        table = pa.Table.from_pylist(page, schema=schema).flatten()
        column = table.schema.get_field_index("deleted_time")
        return table.set_column(column, "deleted_time", table["deleted_time"].cast(timestamp))

    url, started, cpu_started = spec["url"], time.perf_counter(), time.process_time()
    wait = [0.0]
    rows: Counter[str] = Counter()
    con = duckdb.connect(spec["db"])

    def insert(table_name: str, page: pa.Table) -> None:
        con.register("page", page)
        if rows[table_name]:
            con.execute(f"INSERT INTO {table_name} SELECT * FROM page")
        else:
            con.execute(f"CREATE TABLE {table_name} AS SELECT * FROM page")
        con.unregister("page")
        rows[table_name] += page.num_rows

    with requests.Session() as session:
        grant = session.post(
            f"{url}/oauth/v2/token",
            data={
                "grant_type": "refresh_token",
                "client_id": os.environ["SOURCES__ZOHO_CRM__CREDENTIALS__CLIENT_ID"],
                "client_secret": os.environ["SOURCES__ZOHO_CRM__CREDENTIALS__CLIENT_SECRET"],
                "refresh_token": os.environ["SOURCES__ZOHO_CRM__CREDENTIALS__REFRESH_TOKEN"],
            },
        )
        grant.raise_for_status()
        session.headers["Authorization"] = f"Zoho-oauthtoken {grant.json()['access_token']}"
        for module in spec["modules"]:
            pages = _raw_pages(
                session, f"{url}/crm/v8/{module}/deleted", {"type": "all"}, "data", wait
            )
            for page in pages:
                table = to_arrow(page, deleted_schema)
                table = table.add_column(0, "module", pa.array([module] * table.num_rows))
                insert("deleted_records", table)
        bin_params = {"sort_by": "deleted_time", "sort_order": "asc"}
        bin_url = f"{url}/crm/v8/settings/recycle_bin"
        for page in _raw_pages(session, bin_url, bin_params, "recycle_bin", wait):
            insert("recycle_bin", to_arrow(page, bin_schema))
    con.close()
    return {
        "wall": time.perf_counter() - started,
        "cpu": time.process_time() - cpu_started,
        "rows": dict(rows),
        "http_wait": wait[0],
    }


def _pipeline_run(spec: Dict[str, Any]) -> Dict[str, Any]:
    """One `run()` of the pipeline; credentials come from dlt's environment variables."""
    from pipelines.zoho_crm_deleted import make_pipeline, run
    from sources.zoho_crm import DEFAULT_MAX_CONCURRENCY

    os.environ["DESTINATION__DUCKDB__CREDENTIALS"] = spec["db"]  # as a user configures it
    pipeline = make_pipeline(pipelines_dir=spec["pipelines_dir"])
    started, cpu_started = time.perf_counter(), time.process_time()
    result = run(
        pipeline,
        accounts_server=spec["url"],
        api_domain=spec["url"],
        modules=list(spec["modules"]),
    )
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if result.failed_modules:
        raise SystemExit(f"modules failed: {result.failed_modules}")
    return {
        "wall": wall,
        "cpu": cpu,
        "rows": {t: n for t, n in result.row_counts.items() if n},
        "client_calls": result.total_calls,
        "max_concurrency": DEFAULT_MAX_CONCURRENCY,
        "packages": result.packages,
        "analyst_publish_s": result.analyst_publish_s,
        "analyst_file_mb": (result.analyst_file_bytes or 0) / 1e6,
    }


def child_main(kind: str, spec_json: str) -> None:
    """Entry point of a measured subprocess: do one job, print its figures as one JSON line."""
    spec = json.loads(spec_json)
    figures = _raw_floor(spec) if kind == "raw" else _pipeline_run(spec)
    print(json.dumps(figures))


# -- the parent -------------------------------------------------------------------------------
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
        [sys.executable, str(Path(__file__).resolve()), "--child", kind, json.dumps(spec)],
        workdir,
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


def run_child(argv: List[str], workdir: Path) -> Tuple[str, str, int, int]:
    """Run a child to its end: (stdout, stderr, exit code, peak RSS in KiB).

    The peak is the kernel's high-water mark of the child's whole memory (`VmHWM` in
    `/proc/<pid>/status`, read every 10 ms until it exits), so it includes what happens after
    the child's last word: load, merge, close and exit. (`wait4`'s `ru_maxrss` would not do:
    Linux carries the forked parent's size across `exec` into it.)
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(
            argv, cwd=workdir, env=child_env(workdir / "dlt_data"), stdout=out, stderr=err,
            text=True,
        )  # fmt: skip
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


def seeded_server(records: int, latency: float = 0.0) -> Tuple[StandinServer, int]:
    """A started stand-in holding `records` deleted records (a fifth purged)."""
    from zoho_standin import Org, StandinServer
    from zoho_standin.seed import seed_bulk

    org = Org()
    seed_bulk(org, records, modules=MODULES, purged_fraction=PURGED_FRACTION)
    return StandinServer(org, latency=latency).start(), len(org.entries)


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


def measure_scale(records: int, work: Path) -> Tuple[List[Measurement], str]:
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
    return measured, setup


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


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--records",
        type=int,
        nargs="+",
        default=[100_000, 200_000, 1_000_000],
        help="org sizes to measure (deleted records to seed)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--child", choices=("raw", "pipeline"), help=argparse.SUPPRESS)
    parser.add_argument("spec", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child, args.spec)
        return

    lines = header()
    print("\n".join(lines), flush=True)
    measurements: List[Measurement] = []
    setups: List[str] = []
    ratios: Dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="zoho-bench-") as tmp:
        for records in args.records:
            (raw, first, second), setup = measure_scale(records, Path(tmp) / str(records))
            measurements += [raw, first, second]
            setups.append(setup)
            ratios[first.name] = first.wall_s / raw.wall_s
            if raw.rows != first.rows:
                print(f"  rows MISMATCH: raw {raw.rows_by_table}, pipeline {first.rows_by_table}")
        latent = measure_latency(Path(tmp))
    measurements.append(latent)
    concurrency = latent.extra["max_concurrency"]
    firsts = [m for m in measurements if m.name.endswith("first run")]
    report = [
        "",
        *table(measurements),
        "",
        "wall s          the work alone, timed in the child (after its imports)",
        "CPU s           CPU the child spent on the work, all threads: its own cost",
        "peak RSS MB     the whole child's peak, as the kernel counts it (VmHWM, read to exit)",
        "process s       the whole child: interpreter start, imports, work, exit",
        "stand-in CPU s  CPU the stand-in spent answering (it runs in the benchmark process)",
        "",
        *(f"{name} / raw floor: wall {ratio:.2f}x" for name, ratio in ratios.items()),
        *(
            f"{m.name}: {m.extra.get('packages', 1)} load packages, peak RSS "
            f"{m.peak_rss_mb / firsts[0].peak_rss_mb:.2f}x the smallest org's; analyst file "
            f"{m.extra.get('analyst_file_mb', 0):.1f} MB published in "
            f"{m.extra.get('analyst_publish_s') or 0:.2f} s"
            for m in firsts
        ),
        "",
        *latency_lines(latent, LATENCY, concurrency),
    ]
    print("\n".join(report))
    if args.json:
        payload = {
            "header": lines + setups,
            "measurements": [{**asdict(m), "rows_per_s": m.rows_per_s} for m in measurements],
            "first_run_to_raw_floor": ratios,
            "latency": {
                "seconds_per_call": LATENCY,
                "sequential_s": latent.api_calls * LATENCY,
                "slowest_stream_s": max(latent.pages_by_stream.values()) * LATENCY,
                "max_concurrency": concurrency,
            },
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"\nfigures written to {args.json}")


if __name__ == "__main__":
    main()
