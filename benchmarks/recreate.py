"""Benchmark of `restore --recreate --yes`: N captured Leads purged, then recreated.

    python -m benchmarks.recreate --records 1000

Against the stand-in (in this process), the `zoho-deleted` commands as children: a run captures
the Leads' values, they are deleted and purged, two runs see it; then the recreate is measured:
wall time of the whole child, its peak RSS from outside (`peak_rss`), the Create Records calls,
and the dry run's time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Dict

from benchmarks.peak_rss import run_child
from zoho_standin import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, Org, StandinServer
from zoho_standin.records import add_live_records
from zoho_standin.seed import USERS, add_standard_modules


def _env(server: StandinServer, folder: Path) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    env.update(
        SOURCES__ZOHO_CRM__CREDENTIALS__CLIENT_ID=CLIENT_ID,
        SOURCES__ZOHO_CRM__CREDENTIALS__CLIENT_SECRET=CLIENT_SECRET,
        SOURCES__ZOHO_CRM__CREDENTIALS__REFRESH_TOKEN=REFRESH_TOKEN,
        SOURCES__ZOHO_CRM__ACCOUNTS_SERVER=server.url,
        SOURCES__ZOHO_CRM__API_DOMAIN=server.url,
        SOURCES__ZOHO_CRM__MODULES='["Leads"]',
        SOURCES__ZOHO_CRM__RECORD_VALUES='["Leads"]',
        DESTINATION__DUCKDB__CREDENTIALS=str(folder / "zoho_crm.duckdb"),
        DLT_DATA_DIR=str(folder / "dlt"),
    )
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    records = parser.parse_args().records
    org = Org()
    add_standard_modules(org, ["Leads"], live_records=0)
    now = datetime.now(UTC).replace(microsecond=0)
    ids = [f"41088800070{n:09d}" for n in range(records)]
    add_live_records(org.live, "Leads", ids, now)
    with StandinServer(org) as server, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = _env(server, folder)
        zoho_deleted = str(Path(sys.executable).parent / "zoho-deleted")

        def child(*argv: str) -> tuple:
            started = time.monotonic()
            out, err, code, peak = run_child([zoho_deleted, *argv], folder, env)
            if code != 0:
                raise SystemExit(f"zoho-deleted {' '.join(argv)} exited {code}: {err[-2000:]}")
            return time.monotonic() - started, peak, out

        child("run")
        user, _ = USERS[0]
        for n, rid in enumerate(ids):
            org.delete("Leads", rid, now - timedelta(seconds=records - n), f"Person {n}", user)
        child("run")
        for rid in ids:
            org.purge("Leads", rid, now + timedelta(seconds=1))
        child("run")
        dry_s, dry_peak, _ = child("restore", "--module", "Leads", "--recreate")
        server.reset_counts()
        wet_s, wet_peak, out = child("restore", "--module", "Leads", "--recreate", "--yes")
        assert server.creates.count_created() == records, out
        calls = dict(server.calls)
    print(f"records            {records}")
    print(f"dry run            {dry_s:.1f} s, peak RSS {dry_peak / 1024:.0f} MB")
    print(f"--yes              {wet_s:.1f} s, peak RSS {wet_peak / 1024:.0f} MB, "
          f"{records / wet_s:.0f} records/s")  # fmt: skip
    print(f"API calls (--yes)  {', '.join(f'{k} {n}' for k, n in sorted(calls.items()))}")


if __name__ == "__main__":
    main()
