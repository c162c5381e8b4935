"""Run the Zoho CRM deleted-records pipeline: one `run()` is what a scheduler calls."""

from __future__ import annotations

import logging
import os
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Dict, Iterator, List, Optional

import dlt
from dlt.common.schema.utils import get_columns_names_with_prop
from dlt.destinations.exceptions import DatabaseException
from dlt.pipeline.exceptions import PipelineStepFailed

from pipelines.analyst_file import (
    AnalystFileError,
    analyst_file_of,
    pipeline_duckdb_file,
    publish_analyst_file,
)
from pipelines.duckdb_file import duckdb_destination, wide_rows_destination, write_problem
from pipelines.errors import LoadStuckError, StoppedAfterLoadsError, damaged_duckdb_error, explain
from pipelines.exceptions import PipelineConfigError
from pipelines.landed_jobs import record_landed_jobs
from pipelines.locks import DUCKDB_WAIT, file_lock
from pipelines.names import DATASET_NAME, pipeline_name
from pipelines.old_names import adopt_old_state
from pipelines.progress import TerminalProgress, terminal_progress
from pipelines.record_values import row_id_settings
from pipelines.values_progress import PROGRESS_COLUMN, Progress, last_progress, run_progress
from pipelines.views import create_views
from sources.zoho_crm import DEFAULT_ORG, ZohoRun, org_name, run_packages
from sources.zoho_crm.errors import ZohoApiError
from sources.zoho_crm.related import RELATED_TABLE
from sources.zoho_crm.run_context import REJECTED_TABLE
from sources.zoho_crm.values import VALUES_PREFIX, values_name
from sources.zoho_crm.warehouse import BIN_TABLE, RECORDS_TABLE, Warehouse

SCHEMA_NAME = "zoho_crm"
logger = logging.getLogger(__name__)
TABLES = (RECORDS_TABLE, BIN_TABLE, RELATED_TABLE)
RUNS_TABLE = "runs"


@dataclass
class RunResult:
    """What one run loaded and spent."""

    row_counts: Dict[str, int]  # rows landed per table: inserted or replaced by this run
    api_calls: Dict[str, int]
    failed_modules: Dict[str, ZohoApiError] = field(default_factory=dict)
    # modules (or `recycle_bin`) Zoho answered with a malformed page -> the one line saying so
    malformed_modules: Dict[str, str] = field(default_factory=dict)
    rejected: List[str] = field(default_factory=list)  # a line per entry set aside
    refused_lists: Dict[str, ZohoApiError] = field(default_factory=dict)  # "Module.List"
    related_stop: Optional[str] = None  # why related records stopped short, if they did
    related_backlog: int = 0  # (bin entry, related list) pairs left for the next runs
    packages: int = 0
    modules: List[str] = field(default_factory=list)  # the modules the run was to read
    recovered_packages: int = 0
    analyst_file: Optional[str] = None  # the copy analysts open; None when not on DuckDB
    analyst_publish_s: Optional[float] = None  # what publishing it added to the run
    analyst_file_bytes: Optional[int] = None
    received_counts: Dict[str, int] = field(default_factory=dict)  # rows read, before merging
    # record values: rows landed per `values_<module>` table (read: `values_received`), where
    # each module's pass stands (`values_progress`), why they stopped short if they did
    values_rows: Dict[str, int] = field(default_factory=dict)
    values_received: Dict[str, int] = field(default_factory=dict)
    values_progress: Progress = field(default_factory=dict)
    values_stop: Optional[str] = None

    @property
    def total_calls(self) -> int:
        return sum(self.api_calls.values())


def make_pipeline(
    destination: Any = None,
    pipelines_dir: Optional[str] = None,
    org: str = DEFAULT_ORG,
    progress: bool = False,
) -> dlt.Pipeline:
    """The pipeline of one org; its destination and working folder follow dlt's config.
    `progress`: show the run's progress on stderr while it runs, if stderr is a terminal."""
    if isinstance(destination, str) and destination == "duckdb":
        destination = None
    return dlt.pipeline(
        pipeline_name=pipeline_name(org),
        destination=destination or duckdb_destination(),
        dataset_name=DATASET_NAME,
        pipelines_dir=pipelines_dir,
        progress=terminal_progress() if progress else None,
    )


@contextmanager
def exclusive(pipeline: dlt.Pipeline) -> Iterator[None]:
    """One run per pipeline at a time (a second one exits at once), and one writer per DuckDB
    file (runs of other orgs into the same file wait their turn, up to DUCKDB_WAIT). Holding
    them, a pipeline with no state yet takes over what its old-named pipeline left
    (`old_names`), and values tables of earlier versions get dlt's row ids on every load,
    pending packages of a killed run included (`row_id_settings`)."""
    os.makedirs(pipeline.pipelines_dir, exist_ok=True)
    path = os.path.join(pipeline.pipelines_dir, f".{pipeline.pipeline_name}.lock")
    busy = (
        f"another run of pipeline {pipeline.pipeline_name} is in progress (lock {path}); "
        "let it finish, or schedule runs further apart"
    )
    with file_lock(path, 0, busy), duckdb_file_lock(pipeline):
        adopt_old_state(pipeline)
        with dlt.config.values(row_id_settings(pipeline)):
            yield


@contextmanager
def duckdb_file_lock(pipeline: dlt.Pipeline) -> Iterator[None]:
    """One writer per DuckDB file, waited for up to DUCKDB_WAIT; nothing on other
    destinations."""
    database = pipeline_duckdb_file(pipeline)
    if database is None:
        yield
        return
    problem = write_problem(database)
    if problem:  # one line naming the file and the fix, not DuckDB's error mid-run
        raise PipelineConfigError(problem)
    waited = f"the DuckDB file {database} was busy with another run for {DUCKDB_WAIT:.0f} s"
    with file_lock(database + ".lock", DUCKDB_WAIT, waited):
        yield


def run(pipeline: Optional[dlt.Pipeline] = None, **source_args: Any) -> RunResult:
    """Extract what changed in Zoho and load it. Keyword arguments override dlt config.

    On DuckDB, packages of record values load without dictionary compression
    (`duckdb_file.wide_rows_destination`); the rest as the pipeline was made.

    Pending packages of a killed run are loaded first, so nothing a killed run extracted is
    lost and state never runs ahead of the data. Then the deleted lists and the bin, in load
    packages of at most `load_chunk_rows` rows a table (a longer pass goes on in the next
    package); then related records from their backlog, a package at a time, within the run's
    budget. After the data, one row goes to the `runs` table, which `status` reads.
    Last, the analyst file is published (on DuckDB); when that fails, the `AnalystFileError`
    raised carries the run's result.

    A run that fails after some of its packages loaded raises `StoppedAfterLoadsError` (from
    the error that stopped it), which says what did load.
    """
    org = source_args.get("org", DEFAULT_ORG)
    pipeline = pipeline or make_pipeline(org=org)
    zoho_run = ZohoRun()  # what the source's packages share; see `sources.zoho_crm.run_context`
    if isinstance(pipeline.collector, TerminalProgress):
        pipeline.collector.follow(lambda: (zoho_run.calls_made, zoho_run.last_module))
    counts: Counter = Counter()  # rows received per table
    landed: Counter = Counter()  # rows the merges inserted or replaced
    started_at = datetime.now(UTC)
    with exclusive(pipeline):
        analyst_file_of(pipeline)  # a misconfigured analyst file stops the run before it loads
        recovered = finish_interrupted(pipeline)
        packages = 0
        default = pipeline.destination
        wide = wide_rows_destination(default) if default is not None else None
        try:
            for source in run_packages(zoho_run, **source_args):
                values = wide is not None and any(
                    name.startswith(VALUES_PREFIX) for name in source.selected_resources
                )
                with _extract_workers(zoho_run):
                    destination = wide if values else default
                    pipeline.run(source, loader_file_format="parquet", destination=destination)
                received = _row_counts(pipeline)
                counts.update(received)
                landed.update(_landed(pipeline, received))
                packages += 1
        except Exception as error:
            if packages:
                stopped = StoppedAfterLoadsError(landed, packages, error)
                _record_failure(pipeline, org, started_at, zoho_run, stopped)
                raise stopped from error
            _record_failure(pipeline, org, started_at, zoho_run, error)
            raise
        rejected = zoho_run.rejected_rows()
        if rejected:  # this and the `runs` row as the pipeline was made
            load(pipeline, _rejected_resource(rejected), default)
        create_views(pipeline)
        backlog = Warehouse(org_name(org)).related_backlog_size(zoho_run.related_lists())
        values = _values_progress(pipeline, org, zoho_run, counts, landed, started_at)
        result = RunResult(
            row_counts={t: landed.get(t, 0) for t in TABLES},
            received_counts={t: counts.get(t, 0) for t in TABLES},
            api_calls=dict(zoho_run.calls),
            failed_modules=dict(zoho_run.failed_modules),
            malformed_modules={m: str(e) for m, e in zoho_run.malformed.items()},
            rejected=zoho_run.rejected_lines(),
            refused_lists=zoho_run.refused_by_name(),
            related_stop=zoho_run.related_stop if backlog else None,
            related_backlog=backlog,
            packages=packages,
            modules=list(zoho_run.modules or []),
            recovered_packages=recovered,
            values_rows=_values_tables(values, landed),
            values_received=_values_tables(values, counts),
            values_progress=values,
            values_stop=zoho_run.values_stop if any(p["pass"] for p in values.values()) else None,
        )
        _record(pipeline, {"org": org, **_run_row(started_at, result, zoho_run)}, default)
        try:
            published = publish_analyst_file(pipeline)
        except AnalystFileError as error:
            error.result = result
            raise
    if published:
        result.analyst_file = published.path
        result.analyst_publish_s = published.seconds
        result.analyst_file_bytes = published.size_bytes
    return result


@contextmanager
def _extract_workers(zoho_run: ZohoRun) -> Iterator[None]:
    """dlt's extract runs parallelized resources on its own pool (`[extract] workers`, 5 by
    default): as many workers as `max_concurrency`, so that many calls can be in flight (the
    client's cap keeps it there). An `EXTRACT__WORKERS` environment variable still wins."""
    with dlt.config.values({"extract.workers": zoho_run.max_concurrency}):
        yield


def _values_progress(
    pipeline: dlt.Pipeline,
    org: str,
    zoho_run: ZohoRun,
    read: Counter,
    landed: Counter,
    started_at: datetime,
) -> Progress:
    """Where each module of `record_values` stands after this run (see `values_progress`)."""
    if zoho_run.values_modules is None:
        return {}
    previous, _ = last_progress(pipeline, org)
    return run_progress(pipeline, zoho_run.values_modules, read, landed, started_at, previous)


def _values_tables(progress: Progress, rows: Counter) -> Dict[str, int]:
    """The rows of each module's `values_<module>` table (not its child tables)."""
    return {values_name(m): rows.get(values_name(m), 0) for m in progress}


def _row_counts(pipeline: dlt.Pipeline) -> Dict[str, int]:
    trace = pipeline.last_trace
    return dict(trace.last_normalize_info.row_counts) if trace.last_normalize_info else {}


def _landed(pipeline: dlt.Pipeline, received: Dict[str, int]) -> Dict[str, int]:
    """Rows of each table the package just loaded inserted or replaced: the distinct keys of
    the `received` rows its merge took from the staging dataset (dlt keeps them there until
    that table's next load). One query; the rows received where it cannot tell (a staging
    dataset truncated after loads: `load.truncate_staging_dataset`)."""
    schema = pipeline.default_schema
    values = [t for t in received if t.startswith(VALUES_PREFIX) and "__" not in t]  # no child
    counted = {t: n for t, n in received.items() if t in (*TABLES, *values)}
    keys = {
        t: get_columns_names_with_prop(schema.get_table(t), "primary_key")
        for t, n in counted.items()
        if n and schema.get_table(t).get("write_disposition") == "merge"
    }
    if not any(keys.values()):
        return counted
    try:
        with pipeline.sql_client() as client, client.with_staging_dataset():
            sql = " UNION ALL ".join(
                f"SELECT '{t}', count(*) FROM (SELECT DISTINCT "
                f"{', '.join(client.escape_column_name(c) for c in columns)} "
                f"FROM {client.make_qualified_table_name(t)}) AS merged"
                for t, columns in keys.items()
                if columns
            )
            distinct = {t: int(n) for t, n in client.execute_sql(sql)}
    except DatabaseException:
        distinct = {}
    return {t: distinct.get(t) or n for t, n in counted.items()}


def finish_interrupted(pipeline: dlt.Pipeline) -> int:
    """Load what an interrupted run extracted; returns how many packages that was.

    dlt's `run()` would do it too, but then skip extracting new data for that run; and
    earlier captured details are read back from the destination while extracting. A package
    the destination refuses again stops the run with `LoadStuckError`: nothing new is captured
    on top of a load that is not in, and the message says what to do. Jobs killed after
    their rows landed are not run again where that would double them (`landed_jobs`).
    """
    if not pipeline.has_pending_data:
        return 0
    pending = len(pipeline.list_extracted_load_packages()) + len(
        pipeline.list_normalized_load_packages()
    )
    try:
        record_landed_jobs(pipeline)
        pipeline.run()
    except PipelineStepFailed as error:
        if error.step != "load":
            raise
        raise LoadStuckError(pipeline.pipeline_name, error) from error
    except DatabaseException as error:  # the destination refused even the staging check
        raise LoadStuckError(pipeline.pipeline_name, error) from error
    return pending


def load(pipeline: dlt.Pipeline, resource: Any, destination: Any = None) -> None:
    """Load a small bookkeeping resource (runs, reviews, restore requests) into the dataset
    (into `destination`, when given, as `pipeline.run` takes it)."""
    schema = pipeline.default_schema if pipeline.default_schema_name else dlt.Schema(SCHEMA_NAME)
    pipeline.run(resource, schema=schema, destination=destination)


def _record(pipeline: dlt.Pipeline, row: Dict[str, Any], destination: Any = None) -> None:
    load(pipeline, _runs_resource(row), destination)


def _record_failure(
    pipeline: dlt.Pipeline,
    org: str,
    started_at: datetime,
    zoho_run: ZohoRun,
    error: BaseException,
) -> None:
    """Note a failed run in `runs` for `status`, if the destination can take it."""
    if pipeline.has_pending_data:
        return  # the load itself failed: the next run loads the package first
    if damaged_duckdb_error(error) is not None:
        return  # the file cannot take it; the error says how to recover it
    row = {
        "org": org,
        "started_at": started_at,
        "finished_at": datetime.now(UTC),
        "succeeded": False,
        "failed_modules": None,
        "error": explain(error)[1],
        "api_calls": zoho_run.calls_made,
    }
    try:
        _record(pipeline, row)
    except Exception as unrecorded:  # the original error is what the user needs to see
        logger.warning(
            "this failed run could not be noted in the runs table, so status will not show "
            "it (%s)",
            type(unrecorded).__name__,
        )


def _rejected_resource(rows: List[Dict[str, Any]]) -> Any:
    """Entries Zoho sent malformed, set aside (see `ZohoRun.reject`); a repeat replaces the
    row of the same key, so `rejected_at` is when a run last met it malformed."""
    return dlt.resource(
        rows,
        name=REJECTED_TABLE,
        primary_key=("org", "source", "module", "entry_key"),
        write_disposition="merge",
        columns={
            "id": {"data_type": "text", "nullable": True},
            "value": {"data_type": "text", "nullable": True},
            "rejected_at": {"data_type": "timestamp"},
        },
    )


def _runs_resource(row: Dict[str, Any]) -> Any:
    """One row per run, loaded after the run's data. Merged on (org, started_at), the run's
    id, so a load job that a kill makes dlt run twice leaves one row (rows of earlier versions,
    appended, have that key too)."""
    return dlt.resource(
        [row],
        name=RUNS_TABLE,
        primary_key=("org", "started_at"),
        write_disposition="merge",
        columns={
            "org": {"data_type": "text", "nullable": False},
            "started_at": {"data_type": "timestamp"},
            "finished_at": {"data_type": "timestamp"},
            "succeeded": {"data_type": "bool"},
            "failed_modules": {"data_type": "text", "nullable": True},
            "error": {"data_type": "text", "nullable": True},
            "api_calls": {"data_type": "bigint"},
            "related_calls": {"data_type": "bigint", "nullable": True},
            "related_backlog": {"data_type": "bigint", "nullable": True},
            "related_stop": {"data_type": "text", "nullable": True},
            "rejected_records": {"data_type": "bigint", "nullable": True},
            "values_rows": {"data_type": "bigint", "nullable": True},
            "values_calls": {"data_type": "bigint", "nullable": True},
            "values_stop": {"data_type": "text", "nullable": True},
            PROGRESS_COLUMN: {"data_type": "json", "nullable": True},
        },
    )


def _run_row(started_at: datetime, result: RunResult, zoho_run: ZohoRun) -> Dict[str, Any]:
    failed = zoho_run.summary()
    malformed = "; ".join(line for _, line in sorted(result.malformed_modules.items()))
    return {
        "started_at": started_at,
        "finished_at": datetime.now(UTC),
        "succeeded": not failed and not malformed,
        "failed_modules": ", ".join(f"{m} ({code})" for m, code in sorted(failed.items())) or None,
        "error": malformed or None,
        "rejected_records": len(result.rejected),
        "api_calls": result.total_calls,
        "related_calls": result.api_calls.get("related", 0),
        "related_backlog": result.related_backlog,
        "related_stop": result.related_stop,
        **_values_columns(result),
        **{f"{table}_rows": n for table, n in result.row_counts.items()},
    }


def _values_columns(result: RunResult) -> Dict[str, Any]:
    """The record values part of a run's `runs` row: none when the run captured none."""
    if not result.values_progress:
        return {}
    return {
        "values_rows": sum(result.values_rows.values()),
        "values_calls": result.api_calls.get("values", 0),
        "values_stop": result.values_stop,
        PROGRESS_COLUMN: result.values_progress,
    }
