"""The DuckDB file the pipeline loads into, through dlt's plain DuckDB destination.

The file is `zoho_crm.duckdb` in the working directory (dlt's default for pipeline `zoho_crm`)
unless `destination.duckdb.credentials` names another; every org's pipeline loads into it, so
it is configured explicitly for all of them. Its name never matches the dataset's: DuckDB names
a file's catalog after the file, and `zoho_crm_deleted.<table>` would be ambiguous.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, List, Optional

import dlt
from dlt.common.pipeline import get_dlt_pipelines_dir

from pipelines.analyst_file import analyst_file_path
from pipelines.config import CREDENTIALS_KEY, duckdb_file_settings
from pipelines.exceptions import PipelineConfigError
from pipelines.locks import lock_file_problem, user_name
from pipelines.names import (
    DATASET_NAME,
    DUCKDB_FILE,
    OLD_DUCKDB_FILE,
    PIPELINE_NAME,
    catalog_name,
    names_the_dataset,
)
from pipelines.old_names import move_old_duckdb_file

# DuckDB's memory: what it holds beyond `memory_limit` (a load's rows before they are
# checkpointed, the checkpoint's rewrite of a table's last row group) grows with the limit and
# with its threads. Measured on the record values benchmark (100,000 records of 30 fields,
# about 21,000 rows a package), whole-process peak: 508 MB with 192MB and 2 threads, 403 MB
# with 96MB and 1 thread, 343-386 MB with 64MB and 1 thread; 64MB with 2 threads failed a
# merge with DuckDB's out-of-memory error. Loads stay small enough for it: packages of
# `load_chunk_rows` rows, values packages of PACKAGE_BYTES (`sources.zoho_crm.values`).
DUCKDB_MEMORY_LIMIT = "64MB"
DUCKDB_THREADS = 1
# A checkpoint weighs each compression for each column of a row group it writes; dictionary
# compression's weighing holds the column's distinct strings, and a row group of wide unique
# strings (record values' `field_values`, about 1 KB each) makes that the run's peak. Without
# it (FSST still compresses strings) the checkpoint after a merge took half as much (plain
# DuckDB, 20,000-row merges: 232 -> 118-125 MB above the process's base). Only the loads of
# record values go without it (`wide_rows_destination`): the deleted lists' low-cardinality
# columns need it (their 1,000,000-record file: 57 MB with it, 102 MB without).
WIDE_ROWS_CONFIG = {"disabled_compression_methods": "dictionary"}
# One load job at a time: jobs into one DuckDB file gain little from running side by side, and
# each holds its own buffers (measured on the 200,000-record benchmark, DuckDB 1.5.6: peak RSS
# 436 MB with dlt's 20 parallel jobs, 384 MB with 2, 344 MB with 1; wall time within noise).
DUCKDB_LOAD_JOBS = 1
NEWER_DUCKDB_FILE = "created with a newer version of DuckDB"  # DuckDB's words for such a file
DUCKDB_LOCKED = "Could not set lock on file"  # DuckDB's words for a file another process holds
# DuckDB's words for a damaged file: not a DuckDB file at all, cut short, a block's checksum
DAMAGED_DUCKDB_FILE = (
    "is not a valid DuckDB database file",
    "Could not read enough bytes from file",
    "Corrupt database file",
)


def _configured_path() -> Optional[str]:
    """The file `destination.duckdb.credentials` names (a path, or `database` in a table)."""
    return duckdb_file_settings().credentials.database or None


def checked_duckdb_file(path: str) -> str:
    """`path` as an absolute path, or a config error naming `destination.duckdb.credentials`
    when it cannot be the pipeline's DuckDB file."""
    key = CREDENTIALS_KEY
    if path.startswith(":"):
        raise PipelineConfigError(
            f"{key} {path!r} is not a file: set it to a DuckDB file path, e.g. {DUCKDB_FILE}"
        )
    absolute = Path(os.path.abspath(path))
    if absolute.is_dir():
        raise PipelineConfigError(
            f"{key} {path!r} is a directory: set it to a DuckDB file, e.g. {absolute / DUCKDB_FILE}"
        )
    if not absolute.parent.is_dir():
        raise PipelineConfigError(
            f"{key} {path!r}: the folder {absolute.parent} does not exist; create it, or "
            "choose a file in an existing folder"
        )
    if names_the_dataset(path):
        renamed = absolute.with_name(DUCKDB_FILE)
        fix = f"rename the file (mv {absolute} {renamed}, and its .wal if there is one) and "
        raise PipelineConfigError(
            f"{key} {path!r} names its DuckDB catalog {catalog_name(path)}, as the dataset is "
            f"named, which makes {DATASET_NAME}.<table> ambiguous: "
            f"{fix if absolute.exists() else ''}set {key} to {renamed}"
        )
    return str(absolute)


def configured_duckdb_file() -> str:
    """The file in dlt's destination config (`DESTINATION__DUCKDB__CREDENTIALS`), else the
    default, as an absolute path."""
    return checked_duckdb_file(_configured_path() or DUCKDB_FILE)


def duckdb_file() -> str:
    """The pipeline's DuckDB file (`configured_duckdb_file`), once the default file, when no
    other is configured, holds what an earlier version left under the old name."""
    path = configured_duckdb_file()
    if _configured_path() is None:
        move_old_duckdb_file(path)
    return path


def duckdb_destination(path: Optional[str] = None) -> Any:
    """dlt's DuckDB destination at `path`, else at `duckdb_file()`.

    DuckDB's `memory_limit` defaults to DUCKDB_MEMORY_LIMIT (DuckDB spills to `<file>.tmp`,
    its default `temp_directory`, beyond it), its `threads` to DUCKDB_THREADS, and load jobs
    run one at a time; every merge is one load package's rows (the source's `load_chunk_rows`,
    and a record values package's bytes), which keeps a first run's whole process under
    400 MB (measured, docs/values-benchmark.md); `[destination.duckdb.credentials]
    global_config` and `local_config` override these, as in dlt's own config.
    """
    database = checked_duckdb_file(path) if path else duckdb_file()
    configured = duckdb_file_settings().credentials
    credentials = {  # dlt's DuckDB credentials, as its config takes them
        "database": database,
        "global_config": {
            "memory_limit": DUCKDB_MEMORY_LIMIT,
            "threads": DUCKDB_THREADS,
            **(configured.global_config or {}),
        },
        "local_config": configured.local_config or None,
    }
    return dlt.destinations.duckdb(credentials=credentials, max_parallel_load_jobs=DUCKDB_LOAD_JOBS)


def wide_rows_destination(destination: Any) -> Optional[Any]:
    """`destination` (a DuckDB destination made by `duckdb_destination`) with WIDE_ROWS_CONFIG
    added to its global config, unless that config sets them already; None for a destination
    made otherwise (its settings are left as they are)."""
    credentials = destination.config_params.get("credentials")
    if destination.destination_name != "duckdb" or not isinstance(credentials, dict):
        return None
    global_config = {**WIDE_ROWS_CONFIG, **(credentials.get("global_config") or {})}
    wide = {**credentials, "global_config": global_config}
    config = {**destination.config_params, "credentials": wide}
    return dlt.destinations.duckdb(**config, **destination.caps_params)


def write_problem(path: str) -> Optional[str]:
    """Why a run cannot write the DuckDB file at `path` as this user (the file, or its folder,
    which holds its `.wal` and `.lock`), in one line with the fix; None when it can."""
    user = user_name()
    folder = os.path.dirname(path)
    if os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        return (
            f"runs as {user} cannot load into the DuckDB file {path}: it is read-only for "
            f"{user}; give {user} write access (chown {user} {path}, or chmod u+w), or run as "
            "its owner"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"runs as {user} cannot load into the DuckDB file {path}: its folder is read-only "
            f"for {user}, and runs write its .wal and .lock there; give {user} write access to "
            "it, or run as its owner"
        )
    return None


def run_blockers(path: str) -> List[str]:
    """What stops runs from loading into the DuckDB file at `path`, one line each."""
    return [p for p in (write_problem(path), lock_file_problem(f"{path}.lock")) if p]


def missing_file_line(path: str) -> str:
    """One line for a reader that finds no DuckDB file at `path`: where it looked, what to do."""
    configured = _configured_path() is not None
    old = os.path.join(os.path.dirname(path), OLD_DUCKDB_FILE)
    if not configured and os.path.isfile(old):
        return (
            f"no warehouse at {path}, but {old} of an earlier version is there: the next "
            "`zoho-deleted run` renames it, then this command reads it"
        )
    where = CREDENTIALS_KEY if configured else "the default file in the working directory"
    return (
        f"no warehouse at {path} ({where}): run `zoho-deleted run` first, or point "
        "DESTINATION__DUCKDB__CREDENTIALS at the file runs load into"
    )


def damaged_file_line(error: BaseException) -> str:
    """One line for a DuckDB file that DuckDB cannot read (`DAMAGED_DUCKDB_FILE`): which file,
    and how to recover from the analyst file, the last good copy."""
    said = next(iter(str(error).splitlines()), "")
    try:
        path = configured_duckdb_file()
        analyst = analyst_file_path(path, DATASET_NAME)
    except PipelineConfigError:
        return f"the DuckDB file is damaged (DuckDB: {said}); check {CREDENTIALS_KEY}"
    named = re.search(r'"([^"]+)"', said)
    if named and os.path.abspath(named.group(1)) == analyst:
        return (
            f"the analyst file {analyst} is damaged (DuckDB: {said}): delete it; the next run "
            f"publishes it again from {path}"
        )
    folders = os.path.join(get_dlt_pipelines_dir(), f"{PIPELINE_NAME}*")
    fresh = f"delete the pipelines' working folders ({folders}) so runs take their state from "
    if os.path.isfile(analyst):
        published = f"{datetime.fromtimestamp(os.path.getmtime(analyst), UTC):%Y-%m-%d %H:%M}"
        recover = (
            f"the analyst file {analyst} is the last good copy (published {published} UTC): "
            f"move the damaged file aside (mv {path} {path}.damaged, and its .wal), "
            f"copy that copy back (cp {analyst} {path} && chmod u+w {path}), {fresh}it, and "
            "run again: runs read again from Zoho what came after it"
        )
    else:
        recover = (
            f"there is no analyst file to recover from: move it aside (mv {path} "
            f"{path}.damaged), {fresh}the new file, and run again"
        )
    return f"the DuckDB file {path} is damaged (DuckDB: {said}); {recover}"
