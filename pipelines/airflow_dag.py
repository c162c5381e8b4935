"""Airflow DAG: the zoho_crm_deleted pipeline hourly, run by dlt's Airflow helper.

Copy (or symlink) this file into Airflow's `dags/` folder, with the project installed in
Airflow's environment and `.dlt/` next to the DAGs. Airflow parses DAG files often and the
source is built at parse time, so set `modules` to an explicit list there (`"all"` would ask
Zoho on every parse), and point `DESTINATION__DUCKDB__CREDENTIALS` at an absolute path (or use
another destination): dlt's helper runs each task in a fresh working folder and restores the
pipeline state from the destination.

Nothing else in the project imports Airflow.
"""

from __future__ import annotations

import pendulum
from dlt.helpers.airflow_helper import PipelineTasksGroup

from pipelines.zoho_crm_deleted import PIPELINE_NAME, make_pipeline, publish
from sources.zoho_crm import zoho_crm

try:
    from airflow.sdk import dag, task  # Airflow 3
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task


@dag(
    dag_id="zoho_crm_deleted",
    schedule="17 * * * *",  # hourly: see the README's "Running in production"
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # never two runs of the pipeline at once
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=10)},
    tags=["zoho", "dlt"],
)
def zoho_crm_deleted_dag() -> None:
    tasks = PipelineTasksGroup(PIPELINE_NAME, use_data_folder=False, wipe_local_data=True)
    pipeline = make_pipeline()
    loaded = tasks.add_run(pipeline, zoho_crm(), decompose="none", loader_file_format="parquet")

    @task
    def publish_views() -> None:
        """The analyst views, a `runs` row for `zoho-deleted status`, the analyst file."""
        publish(make_pipeline())

    loaded[-1] >> publish_views()


zoho_crm_deleted_dag()
