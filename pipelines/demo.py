"""`zoho-deleted demo`: the whole pipeline against the built-in Zoho stand-in, twice."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Dict

import dlt

from pipelines.zoho_crm_deleted import PIPELINE_NAME, RunResult, make_pipeline, run
from zoho_standin import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, Org, StandinServer
from zoho_standin.seed import DEMO_MODULES, USERS, record_id, seed_demo

DEMO_DUCKDB_FILE = "zoho_crm_demo.duckdb"
DEMO_STATE_DIR = ".zoho-demo"
DEMO_RELATED_LISTS = {
    "Leads": {"Campaigns": ["Owner", "Campaign_Name"], "Products": ["Owner", "Product_Name"]},
    "Contacts": {"Deals": ["Owner", "Deal_Name", "Amount"]},
}
SAMPLE_QUERY = """SELECT module, type, count(*) AS records,
       count(display_name) AS with_details,
       min(deleted_time) AS oldest, max(deleted_time) AS newest
FROM zoho_crm_deleted.deleted_records
GROUP BY module, type ORDER BY module, type"""


def demo_source_args(server: StandinServer) -> Dict[str, Any]:
    return {
        "credentials": {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
        },
        "accounts_server": server.url,
        "api_domain": server.url,
        "modules": list(DEMO_MODULES),
        "related_lists": DEMO_RELATED_LISTS,
    }


def change_between_runs(org: Org) -> str:
    """What happens in Zoho between the two demo runs: new deletions and purges."""
    now = datetime.now(UTC).replace(microsecond=0)
    for k in range(3):
        user, tz = USERS[k]
        org.delete(
            "Deals", record_id(2, 5000 + k), now.astimezone(tz), f"New Deal {k}", user, user, user
        )
    binned = sorted(
        e.id for e in org.entries.values() if e.module == "Leads" and e.type == "recycle"
    )
    for rid in binned[:2]:
        org.purge("Leads", rid, now + timedelta(seconds=1))
    org.restore("Leads", binned[2])
    return "3 new Deals deleted, 2 Leads purged from the bin, 1 Lead restored"


def demo(say: Callable[[str], None], print_result: Callable[[RunResult], None]) -> dlt.Pipeline:
    """Run against a fresh stand-in into a fresh demo DuckDB file; returns the pipeline."""
    shutil.rmtree(DEMO_STATE_DIR, ignore_errors=True)
    Path(DEMO_DUCKDB_FILE).unlink(missing_ok=True)
    pipeline = make_pipeline(
        destination=dlt.destinations.duckdb(credentials=DEMO_DUCKDB_FILE),
        pipelines_dir=str(Path(DEMO_STATE_DIR) / "pipelines"),
    )
    org = Org()
    seed_demo(org)
    with StandinServer(org) as server:
        say(f"Zoho stand-in listening on {server.url} ({len(org.entries)} deleted records)")
        say(f"\nRun 1: pipeline {PIPELINE_NAME} into {DEMO_DUCKDB_FILE}")
        print_result(run(pipeline, **demo_source_args(server)))
        say(f"\nIn Zoho meanwhile: {change_between_runs(org)}")
        say("Run 2 (zoho-deleted run --reconcile): what changed, plus the full pass for restores")
        print_result(run(pipeline, reconcile=True, **demo_source_args(server)))
    return pipeline
