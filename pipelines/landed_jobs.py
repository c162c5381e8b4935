"""Load jobs a killed run left unrecorded although their rows had landed.

dlt notes a load job's outcome in its package (a pending transition, then the job file moves
to `completed_jobs`) only after the destination committed the job's rows. A run killed between
the two leaves the job "started", and the next load runs it again, copying its rows into the
staging dataset a second time. dlt truncates a package's staging tables only when it first
initializes the package, never when it resumes one (that would lose the rows of the jobs that
completed before the kill), and `truncate_staging_dataset` empties them only after the package.

A delete-insert merge takes that in its stride: it de-duplicates staging by primary key. An
insert-only merge does not: dlt's `MERGE ... WHEN NOT MATCHED THEN INSERT` takes every staging
row, so the job's rows would land twice (`deletion_events`, whose insert-only merge keeps the
first `observed_at` of each event). So before a pending package loads again, each started job
of an insert-only table whose rows are already in staging is recorded as completed, the way dlt
records it, and dlt goes on to the merge without running it again. A copy job is one
transaction (all its rows or none), and an event is in at most one job of a package (the run's
`EmittedEvents`), so the file's first row tells whether the job landed.
"""

from __future__ import annotations

import csv
import gzip
import logging
import os
from typing import Any, List, Optional

import dlt
import pyarrow.parquet as pq
from dlt.common.schema.utils import get_columns_names_with_prop, get_merge_strategy
from dlt.common.storages import FileStorage
from dlt.common.storages.load_package import LoadJobInfo, PackageStorage
from dlt.destinations.exceptions import DatabaseUndefinedRelation

logger = logging.getLogger(__name__)


def record_landed_jobs(pipeline: dlt.Pipeline) -> int:
    """Record as completed the started jobs of insert-only tables whose rows are in staging;
    returns how many."""
    recorded = 0
    for load_id in pipeline.list_normalized_load_packages():
        info = pipeline.get_load_package_info(load_id)
        packages = PackageStorage(FileStorage(os.path.dirname(info.package_path)), "normalized")
        for job in info.jobs.get("started_jobs", []):
            name = os.path.basename(job.file_path)
            if packages.load_pending_transition(load_id, name) is not None:
                continue  # dlt recorded its outcome
            key = _insert_only_key(info.schema, job)
            landed = key and _landed(pipeline, job, key)
            if landed or _state_landed(pipeline, info.schema, job, load_id):
                packages.save_pending_transition(load_id, name, "completed")
                logger.info("load job %s of package %s had landed: not run again", name, load_id)
                recorded += 1
    return recorded


def _state_landed(
    pipeline: dlt.Pipeline, schema: dlt.Schema, job: LoadJobInfo, load_id: str
) -> bool:
    """Whether the job is the package's `_dlt_pipeline_state` row and that row is in the
    destination (it carries the package's load id). dlt appends it, and PostgreSQL keeps
    `_dlt_id` unique: running the job again would fail the package for good."""
    table = job.job_file_info.table_name
    if table != schema.state_table_name:
        return False
    with pipeline.sql_client() as client:
        name = client.make_qualified_table_name(table)
        try:
            found = client.execute_sql(f"SELECT 1 FROM {name} WHERE _dlt_load_id = %s", load_id)
        except DatabaseUndefinedRelation:
            return False  # no state table yet: nothing landed
    return bool(found)


def _insert_only_key(schema: dlt.Schema, job: LoadJobInfo) -> Optional[List[str]]:
    """The primary key of the job's table if an insert-only merge loads it from a Parquet or
    CSV file (what dlt makes of the Arrow tables this project gives such tables: Parquet for
    DuckDB, CSV for PostgreSQL without an ADBC driver), else None."""
    table = job.job_file_info.table_name
    if job.job_file_info.file_format not in ("parquet", "csv") or table not in schema.tables:
        return None
    if get_merge_strategy(schema.tables, table) != "insert-only":
        return None
    return get_columns_names_with_prop(schema.tables[table], "primary_key") or None


def _first_row(job: LoadJobInfo, key: List[str]) -> Optional[List[Any]]:
    """The `key` values of the first row of the job's file (CSV values as text); None if it
    has no row, or its CSV is not laid out as dlt writes it by default."""
    if job.job_file_info.file_format == "parquet":
        batches = pq.ParquetFile(job.file_path).iter_batches(batch_size=1, columns=key)
        first = next(batches, None)
        if first is None or first.num_rows == 0:
            return None
        return [first.column(c)[0].as_py() for c in key]
    opener: Any = gzip.open if job.file_path.endswith(".gz") else open
    with opener(job.file_path, "rt", encoding="utf-8", newline="") as lines:
        row = next(csv.DictReader(lines), None)
    if row is None or any(c not in row for c in key):
        return None  # not dlt's default CSV layout (a header, commas): left to dlt
    return [row[c] for c in key]


def _landed(pipeline: dlt.Pipeline, job: LoadJobInfo, key: List[str]) -> bool:
    """Whether the staging table holds the first row of the job's file."""
    values = _first_row(job, key)
    if values is None:
        return False
    with pipeline.sql_client() as client, client.with_staging_dataset():
        where = " AND ".join(f"{client.escape_column_name(c)} = %s" for c in key)
        table = client.make_qualified_table_name(job.job_file_info.table_name)
        try:
            return bool(client.execute_sql(f"SELECT 1 FROM {table} WHERE {where}", *values))
        except DatabaseUndefinedRelation:
            return False  # no staging table yet: nothing landed
