"""The analyst file: a read-only copy of the DuckDB file that each successful run publishes.

DuckDB lets one process write a file or several processes read it, never both, so an analyst
holding the pipeline's own file open (a notebook, a BI tool, a DuckDB shell) would stop every
run. Analysts open this copy instead. After each successful load, with the DuckDB file's lock
held (so it holds every org's latest load), the run checkpoints the file if its write-ahead log
holds anything, copies it to a temporary file next to the analyst file, flushes it to disk,
and renames it over the analyst file: connections already open keep the version they opened,
new ones see the new load, and a run killed while copying leaves the previous copy in place
(the next run removes the leftover).

The copy goes through `os.copy_file_range`: on btrfs and XFS (and NFS 4.2) the kernel shares
the blocks instead of copying them (a reflink), on other filesystems it copies in the kernel.
Its name defaults to `<file>_analyst.duckdb` next to the pipeline's file
(`zoho_crm_analyst.duckdb`); DuckDB names a file's catalog after the file, so that name keeps
`zoho_crm_deleted.<table>` unambiguous in it.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Optional

import dlt

from pipelines.config import ANALYST_FILE_KEY, duckdb_file_settings
from pipelines.exceptions import PipelineConfigError, PipelineError
from pipelines.names import catalog_name, names_the_dataset

ANALYST_SUFFIX = "_analyst"
COPY_CHUNK = 1 << 30  # bytes per copy_file_range call
# copy_file_range cannot copy between these two files here: copy through user space instead
NO_KERNEL_COPY = (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL)


class AnalystFileError(PipelineError):
    """The load succeeded, but its copy for analysts could not be published."""

    result: Any = None  # the run's RunResult, when a run raised it


@dataclass
class PublishedCopy:
    """One publication of the analyst file."""

    path: str
    seconds: float  # checkpoint, copy, flush and rename
    size_bytes: int


def pipeline_duckdb_file(pipeline: dlt.Pipeline) -> Optional[str]:
    """The DuckDB file the pipeline writes; None when its destination is not DuckDB."""
    if pipeline.destination is None or pipeline.destination.destination_name != "duckdb":
        return None
    return str(pipeline.destination_client().config.credentials.database)


def default_analyst_file(duckdb_file: str) -> Path:
    """`<stem>_analyst.duckdb` beside the DuckDB file."""
    return Path(duckdb_file).with_name(f"{Path(duckdb_file).stem}{ANALYST_SUFFIX}.duckdb")


def analyst_file_path(duckdb_file: str, dataset_name: str) -> str:
    """The analyst file for the pipeline's DuckDB file: `destination.duckdb.analyst_file`,
    else `default_analyst_file`; absolute."""
    default = default_analyst_file(duckdb_file)
    configured = duckdb_file_settings().analyst_file
    path = Path(os.path.abspath(str(configured))) if configured else default
    if path == Path(os.path.abspath(duckdb_file)):
        raise PipelineConfigError(
            f"{ANALYST_FILE_KEY} {str(configured)!r} is the pipeline's own DuckDB file: "
            f"choose another file, e.g. {default.name}"
        )
    if names_the_dataset(str(path), dataset_name):
        raise PipelineConfigError(
            f"{ANALYST_FILE_KEY} {str(configured)!r} names its DuckDB catalog "
            f"{catalog_name(str(path))}, as the dataset is named, which makes "
            f"{dataset_name}.<table> ambiguous: choose another name, e.g. {default.name}"
        )
    if path.is_dir():
        raise PipelineConfigError(
            f"{ANALYST_FILE_KEY} {str(configured)!r} is a directory: set it to a file, e.g. "
            f"{path / default.name}"
        )
    if not path.parent.is_dir():
        raise PipelineConfigError(
            f"{ANALYST_FILE_KEY} {str(configured)!r}: the folder {path.parent} does not exist; "
            "create it, or choose a file in an existing folder"
        )
    return str(path)


def analyst_file_of(pipeline: dlt.Pipeline) -> Optional[str]:
    """The file analysts open; None when the destination is not DuckDB (its readers and the
    run share the warehouse without a copy)."""
    duckdb_file = pipeline_duckdb_file(pipeline)
    return None if duckdb_file is None else analyst_file_path(duckdb_file, pipeline.dataset_name)


def publish_analyst_file(pipeline: dlt.Pipeline) -> Optional[PublishedCopy]:
    """Publish the pipeline's DuckDB file as the analyst file; None when not on DuckDB.

    Call it with the DuckDB file's lock held (`exclusive`), so no run writes while it copies.
    """
    duckdb_file = pipeline_duckdb_file(pipeline)
    if duckdb_file is None:
        return None
    target = analyst_file_path(duckdb_file, pipeline.dataset_name)
    started = time.perf_counter()
    partial = Path(target).with_name(f".{Path(target).name}.publishing")
    partial.unlink(missing_ok=True)  # left by a run killed while publishing
    try:
        _checkpoint(pipeline, duckdb_file)
        with open(duckdb_file, "rb") as source, open(partial, "wb") as copy:
            copy_file(source, copy)
            os.fsync(copy.fileno())
        # readable as the pipeline's file is, by no one more; writable by no one, so a DuckDB
        # client must open it read-only and never leaves a WAL beside it
        os.chmod(partial, stat.S_IMODE(os.stat(duckdb_file).st_mode) & 0o444)
        os.replace(partial, target)
        _sync_directory(os.path.dirname(target))
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise AnalystFileError(
            f"the run loaded its data, but could not publish the analyst file {target} "
            f"({error.strerror or error}); analysts still see the previous load, and the next "
            "run publishes again: check the disk space and permissions of that folder"
        ) from error
    return PublishedCopy(target, time.perf_counter() - started, os.path.getsize(target))


def _checkpoint(pipeline: dlt.Pipeline, duckdb_file: str) -> None:
    """Move what DuckDB's write-ahead log holds into the file itself. dlt checkpoints when it
    closes the file, so there is seldom anything: then the file is not even opened (measured:
    opening it costs more than copying a file of 20,000 records)."""
    wal = f"{duckdb_file}.wal"
    if os.path.exists(wal) and os.path.getsize(wal):
        with pipeline.sql_client() as client:
            client.execute_sql("CHECKPOINT")


def copy_file(source: BinaryIO, copy: BinaryIO) -> None:
    """Copy `source` into the empty `copy` in the kernel (a reflink where the filesystem can
    share blocks), else through user space."""
    kernel_copy = getattr(os, "copy_file_range", None)  # Linux only
    if kernel_copy is None:
        shutil.copyfileobj(source, copy)
        return
    size = os.fstat(source.fileno()).st_size
    done = 0
    try:
        while done < size:
            copied = kernel_copy(source.fileno(), copy.fileno(), COPY_CHUNK)
            if copied == 0:
                break
            done += copied
    except OSError as error:
        if error.errno not in NO_KERNEL_COPY or done:
            raise
        shutil.copyfileobj(source, copy)


def _sync_directory(path: str) -> None:
    """Make a rename in `path` durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
