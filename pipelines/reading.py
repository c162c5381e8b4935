"""What the read-only commands read (`status`, `incidents`, `report`, `restore`'s dry run).

They never disturb a run and never create anything. On DuckDB a run holds the DuckDB file's
lock (`<file>.lock`) from start to end, publishing the analyst file last; dlt opens and closes
the file between steps, so a reader that opened it then would make the run's next step fail.
A reader therefore takes a shared lock on `<file>.lock`, never waited for: while it is free, it
opens the pipeline's file read-only under it (a run waits for it, a fraction of a second); while
a run holds it, it reads the analyst file instead (the last successful load) and says so, with
its age; so too while another process (a DuckDB shell) holds the pipeline's file. The lock
file, the DuckDB file and dlt's working folders are never created: with no DuckDB file the
command stops (exit 2) naming where it looked, and the pipeline's working folder (pending load
packages, the last trace) is read only when it exists. On other destinations readers share
the warehouse with runs and read it through dlt's SQL client.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

import dlt
import duckdb
from dlt.common.pipeline import get_dlt_pipelines_dir
from dlt.destinations.sql_client import SqlClientBase

from pipelines.analyst_file import analyst_file_of, analyst_file_path
from pipelines.duckdb_file import (
    DUCKDB_LOCKED,
    configured_duckdb_file,
    missing_file_line,
    run_blockers,
)
from pipelines.exceptions import PipelineConfigError
from pipelines.locks import PipelineBusyError, shared_lock
from pipelines.names import DATASET_NAME, pipeline_name
from pipelines.run import SCHEMA_NAME


class NothingPublishedError(PipelineBusyError):
    """A run holds the DuckDB file and no analyst file exists yet to read instead."""


@dataclass
class Reading:
    """One read of the warehouse: what `query` reads through, and what a reader should know."""

    dataset_name: str
    client: Callable[[], SqlClientBase]
    analyst_file: Optional[str] = None  # the file analysts open; None off DuckDB
    local: Optional[dlt.Pipeline] = None  # the pipeline's working folder, when no run uses it
    read_from: Optional[Dict[str, str]] = None  # the analyst file, when it stood in for a run
    blockers: List[str] = field(default_factory=list)  # what stops runs, one line each

    def sql_client(self) -> SqlClientBase:
        return self.client()

    def note(self) -> Optional[str]:
        """One line saying the analyst file was read instead of the pipeline's file, why (a run
        is loading it, another process holds it) and how old it is."""
        if not self.read_from:
            return None
        published = datetime.fromisoformat(self.read_from["published_at"])
        why = self.read_from["why"]
        return (
            f"{why[0].upper()}{why[1:]}: this reads the analyst file "
            f"{self.read_from['file']}, the last successful load, published "
            f"{self.read_from['age']} ago ({published:%Y-%m-%d %H:%M} UTC)."
        )


def reading_of(source: Union[dlt.Pipeline, Reading]) -> Reading:
    """`source` as a `Reading`: a dlt pipeline (the demo, tests, library callers) reads
    through its own SQL client and working folder."""
    if isinstance(source, Reading):
        return source
    return Reading(
        dataset_name=source.dataset_name,
        client=source.sql_client,
        analyst_file=analyst_file_of(source),
        local=source,
    )


@contextmanager
def open_reading(destination: Any, org: str) -> Iterator[Reading]:
    """Read one org's warehouse, as described above; the lock is held until the block ends."""
    name = pipeline_name(org)
    if destination is not None and destination != "duckdb":
        dataset = dlt.dataset(destination, DATASET_NAME, schema=dlt.Schema(SCHEMA_NAME))
        yield Reading(DATASET_NAME, lambda: dataset.sql_client, local=_working_folder(name))
        return
    path = configured_duckdb_file()
    analyst = analyst_file_path(path, DATASET_NAME)
    blockers = run_blockers(path)
    with shared_lock(f"{path}.lock") as free:
        if free and not os.path.isfile(path):
            raise PipelineConfigError(missing_file_line(path))
        why = "a run is loading the DuckDB file" if not free else _held_elsewhere(path)
        if not why:
            local = _working_folder(name)
            yield Reading(DATASET_NAME, _read_only(path), analyst, local, blockers=blockers)
        elif os.path.isfile(analyst):
            stood_in = _age(analyst, why)
            yield Reading(DATASET_NAME, _read_only(analyst), analyst, None, stood_in, blockers)
        else:
            raise NothingPublishedError(
                f"{why} ({path}) and no analyst file ({analyst}) has been published yet to read "
                "instead: ask again when it has finished"
            )


def _held_elsewhere(path: str) -> Optional[str]:
    """Why the DuckDB file at `path` cannot be read now though no run holds it: another
    process (a DuckDB shell, a notebook) has it open for writing; None when it can be read."""
    try:
        duckdb.connect(path, read_only=True).close()
    except duckdb.IOException as error:
        if DUCKDB_LOCKED not in str(error):
            raise
        return "another process has the DuckDB file open"
    return None


def _read_only(path: str) -> Callable[[], SqlClientBase]:
    """A read-only DuckDB client of the file at `path`, through dlt."""
    destination = dlt.destinations.duckdb(credentials={"database": path, "read_only": True})
    dataset = dlt.dataset(destination, DATASET_NAME, schema=dlt.Schema(SCHEMA_NAME))
    return lambda: dataset.sql_client


def _working_folder(name: str) -> Optional[dlt.Pipeline]:
    """The pipeline's local working folder, attached when it holds a state; None (nothing
    created) when it does not exist."""
    pipelines_dir = get_dlt_pipelines_dir()
    if not os.path.isfile(os.path.join(pipelines_dir, name, dlt.Pipeline.STATE_FILE)):
        return None
    return dlt.attach(name, pipelines_dir=pipelines_dir)


def _age(path: str, why: str) -> Dict[str, str]:
    published = datetime.fromtimestamp(os.path.getmtime(path), UTC)
    minutes = max(0, round((datetime.now(UTC) - published).total_seconds() / 60))
    age = f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} hours"
    return {
        "file": path,
        "published_at": published.isoformat(),
        "age": age,
        "why": why,
    }
