"""The pipeline's run, a measured child's job: one `run()` into the DuckDB file and pipelines
dir the parent names (a first run on a fresh one, a nothing-new run on the same again)."""

from __future__ import annotations

import os
import time
from typing import Any, Dict

VALUES_ARGS = ("record_values", "values_calls_per_run", "load_chunk_rows")  # passed when given


def pipeline_run(spec: Dict[str, Any]) -> Dict[str, Any]:
    """One `run()` of the pipeline; credentials come from dlt's environment variables."""
    from pipelines.run import make_pipeline, run
    from sources.zoho_crm import DEFAULT_MAX_CONCURRENCY

    os.environ["DESTINATION__DUCKDB__CREDENTIALS"] = spec["db"]  # as a user configures it
    pipeline = make_pipeline(pipelines_dir=spec["pipelines_dir"])
    started, cpu_started = time.perf_counter(), time.process_time()
    result = run(
        pipeline,
        accounts_server=spec["url"],
        api_domain=spec["url"],
        modules=list(spec["modules"]),
        **{k: spec[k] for k in VALUES_ARGS if k in spec},
    )
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if result.failed_modules:
        raise SystemExit(f"modules failed: {result.failed_modules}")
    rows = {t: n for t, n in result.row_counts.items() if n}
    with pipeline.sql_client() as client:  # record values: the rows each table holds
        for module in spec.get("record_values", []):
            table = f"values_{module.lower()}"
            rows[table] = client.execute_sql(f"SELECT count(*) FROM {table}")[0][0]
    return {
        "wall": wall,
        "cpu": cpu,
        "rows": rows,
        "client_calls": result.total_calls,
        "max_concurrency": DEFAULT_MAX_CONCURRENCY,
        "packages": result.packages,
        "analyst_publish_s": result.analyst_publish_s,
        "analyst_file_mb": (result.analyst_file_bytes or 0) / 1e6,
    }
