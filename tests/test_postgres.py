"""The same invariants on a real PostgreSQL server (CI starts one: .ci/postgres.sh)."""

from __future__ import annotations

import fcntl
import os
import tempfile
from datetime import timedelta
from pathlib import Path

import dlt
import pytest
from conftest import NOW, delete, env_for, query, run_once, source_args
from test_incidents import PATRICIA, burst
from test_readme_queries import QUERIES

from pipelines.demo import DEMO_RECORD_VALUES, DEMO_RELATED_LISTS, change_between_runs
from pipelines.incidents import read_incidents
from pipelines.ledger import acknowledge
from pipelines.restore import Selection, plan, restore
from pipelines.run import make_pipeline, run
from pipelines.status import read_status
from zoho_standin.seed import DEMO_MODULES, seed_demo

URL = os.environ.get("ZOHO_TEST_POSTGRES")
pytestmark = pytest.mark.skipif(
    not URL,
    reason="no PostgreSQL server: set ZOHO_TEST_POSTGRES=postgresql://user:pass@127.0.0.1/db "
    "(bash .ci/postgres.sh starts one and prints the URL; CI does)",
)
DS = "zoho_crm_deleted"


@pytest.fixture
def pg_pipeline(tmp_path):
    """A pipeline into the test database's dataset, emptied first. The tests share that one
    dataset, so they take turns (a lock across the suite's parallel workers)."""
    import psycopg2

    with open(Path(tempfile.gettempdir()) / "zoho-deleted-postgres-tests.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with psycopg2.connect(URL) as connection, connection.cursor() as cursor:
            for dataset in (DS, f"{DS}_staging"):  # staging too: no table of an earlier test
                cursor.execute(f"DROP SCHEMA IF EXISTS {dataset} CASCADE")
        yield make_pipeline(
            destination=dlt.destinations.postgres(credentials=URL),
            pipelines_dir=str(tmp_path / "pipelines"),
        )


def test_the_invariants_hold_on_postgres(org, server, pg_pipeline):
    seed_demo(org, per_module=120)
    args = {
        "modules": list(DEMO_MODULES),
        "related_lists": DEMO_RELATED_LISTS,
        "record_values": DEMO_RECORD_VALUES,
    }
    first = run_once(server, pg_pipeline, **args)
    assert first.row_counts["deleted_records"] == len(org.entries)
    assert first.analyst_file is None  # readers share PostgreSQL with the run: no copy
    assert read_status(pg_pipeline).analyst_file is None

    binned = sorted(k for k, e in org.entries.items() if e.type == "recycle")
    module, kept = binned[0]
    name = org.entries[(module, kept)].display_name
    org.purge(module, kept, NOW + timedelta(seconds=2))
    delete(org, "Deals", "9001", NOW + timedelta(seconds=1))
    change_between_runs(org)
    for _ in range(2):
        run_once(server, pg_pipeline, reconcile=True, **args)

    def one(sql):
        return query(pg_pipeline, sql)

    assert one(
        f"SELECT count(*) FROM (SELECT org, module, id FROM {DS}.deleted_records "
        "GROUP BY 1, 2, 3 HAVING count(*) > 1) d"
    ) == [(0,)]
    assert one(f"SELECT count(*) FROM {DS}.deleted_records") == [(len(org.entries) + 1,)]
    assert one(
        f"SELECT type, display_name FROM {DS}.deleted_records WHERE module = '{module}' "
        f"AND id = '{kept}'"
    ) == [("permanent", name)]
    assert one(
        f"SELECT count(*) FROM (SELECT org, module, id, event FROM {DS}.deletion_events "
        "GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d"
    ) == [(0,)]
    assert one(f"SELECT count(*) FROM {DS}.deletion_events WHERE event = 'restored'") == [(1,)]
    assert one(
        f"SELECT count(*) FROM (SELECT 1 FROM {DS}.deleted_related_records "
        "GROUP BY org, parent_module, parent_id, related_list, id HAVING count(*) > 1) d"
    ) == [(0,)]
    for sql in QUERIES:  # the README's and docs' queries, and so the views, on PostgreSQL too
        assert query(pg_pipeline, sql.strip().rstrip(";")), sql


def test_incidents_reviews_and_restores_on_postgres(
    org, server, pg_pipeline, monkeypatch, tmp_path
):
    for key, value in env_for(server, tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SOURCES__ZOHO_CRM__INCIDENT_THRESHOLD", "5")
    ids = burst(org, "Leads", PATRICIA, NOW - timedelta(hours=2), 6, 1000)
    run_once(server, pg_pipeline)
    [incident] = read_incidents(pg_pipeline, "default", open_only=True)
    assert (incident["records"], incident["in_bin"]) == (6, 6)
    assert query(pg_pipeline, f"SELECT incident_id, is_open FROM {DS}.deletion_incidents") == [
        (incident["incident_id"], True)
    ]

    acknowledge(pg_pipeline, "default", incident["incident_id"])
    assert read_incidents(pg_pipeline, "default", open_only=True) == []
    assert query(pg_pipeline, f"SELECT count(reviewed_at) FROM {DS}.deletion_incidents") == [(1,)]

    chosen = Selection(incident=incident["incident_id"])
    assert [e.id for e in plan(pg_pipeline, "default", chosen).send] == ids
    assert restore(pg_pipeline, "default", chosen, True, lambda line: None) == 0
    assert server.restores.calls == [ids]
    assert plan(pg_pipeline, "default", chosen).left_out["requested"] == 6


def test_the_state_an_earlier_version_left_carries_over_on_postgres(
    org, server, pg_pipeline, tmp_path
):
    """Earlier versions named the pipeline zoho_crm_deleted; its state is in PostgreSQL only
    (no working folder here): the renamed pipeline takes it over and goes on incrementally."""
    for n in range(3):
        delete(org, "Leads", f"10{n}", NOW - timedelta(days=2))
    earlier = dlt.pipeline(
        "zoho_crm_deleted",
        destination=dlt.destinations.postgres(credentials=URL),
        dataset_name=DS,
        pipelines_dir=str(tmp_path / "elsewhere"),
    )
    assert run(earlier, **source_args(server)).row_counts["deleted_records"] == 3
    delete(org, "Leads", "103", NOW - timedelta(hours=1))

    assert run_once(server, pg_pipeline).row_counts["deleted_records"] == 1  # 103 only
    leads = [h.get("If-Modified-Since") for _, path, h in server.requests if "/Leads/del" in path]
    assert leads and all(leads)
    keys = f"SELECT count(*), count(DISTINCT (org, module, id)) FROM {DS}.deleted_records"
    assert query(pg_pipeline, keys) == [(4, 4)]
