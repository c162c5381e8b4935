"""Airflow DAG: every configured Zoho org hourly, one task group per org.

Copy (or symlink) this file into Airflow's `dags/` folder, with the project installed in
Airflow's environment and `.dlt/` next to the DAGs. The orgs are the default one
(`[sources.zoho_crm]`) and each `[sources.zoho_crm.orgs.NAME]` (or its
`SOURCES__ZOHO_CRM__ORGS__NAME__*` variables); each gets its own task group, so orgs run in
parallel across Airflow's workers. Airflow parses DAG files often: parsing reads only that
config and never calls Zoho; the source is built inside the task.

Each task is `zoho-deleted run --org NAME`: it loads what changed, records the run in `runs`
for `zoho-deleted status`, and fails when Zoho refused a module (the other modules loaded; the
next run reads the refused one from where it was). Point `DESTINATION__DUCKDB__CREDENTIALS` at
an absolute path (orgs writing one DuckDB file on one machine take turns), or use a remote
destination when workers run on several machines.

Nothing else in the project imports Airflow.
"""

from __future__ import annotations

from typing import Dict

import pendulum

from pipelines.names import PIPELINE_NAME
from pipelines.orgs import configured_orgs, run_org

try:
    from airflow.sdk import TaskGroup, dag, task  # Airflow 3
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task
    from airflow.utils.task_group import TaskGroup


@task
def run(org: str) -> Dict[str, int]:
    """One org's run; the rows it loaded per table go to XCom."""
    return run_org(org).row_counts


@dag(
    dag_id=PIPELINE_NAME,  # zoho_crm; earlier versions: zoho_crm_deleted (docs/upgrading-names.md)
    schedule="17 * * * *",  # hourly: see docs/running-in-production.md
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # never two runs of one org's pipeline at once
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=10)},
    tags=["zoho", "dlt"],
)
def zoho_crm_dag() -> None:
    for org in configured_orgs():
        with TaskGroup(group_id=f"org_{org}"):
            run(org)


zoho_crm_dag()
