"""What earlier versions left under the old names moves by itself (see `pipelines.names`).

Earlier versions named the pipeline `zoho_crm_deleted` (`zoho_crm_deleted_<org>` per org) and
so loaded into `zoho_crm_deleted.duckdb`. Their data moves by itself rather than stopping runs
with a line saying how to move it: runs are scheduled, and a run that stops captures nothing
while Zoho empties its bin, whereas each step here loses nothing when interrupted and is safe to
repeat:

- The DuckDB file, when none is configured: `zoho_crm_deleted.duckdb` is checkpointed (its
  write-ahead log then holds nothing) and renamed to `zoho_crm.duckdb` in the same folder, under
  the lock earlier versions took on it, so runs of several orgs move it once. When both files
  exist nothing moves: the run stops (exit 2) naming both. The analyst copy the old file had
  (`zoho_crm_deleted_analyst.duckdb`) is removed, so no reader goes on seeing a copy that is
  never updated again; the next run publishes `zoho_crm_analyst.duckdb`. A file *configured*
  under the old name cannot be renamed behind its configuration: `duckdb_file` refuses it
  with the command that renames it.
- The pipeline state (incremental cursors) and schemas: before a command writes, a pipeline
  with no source state yet takes over those of its old-named pipeline, read through dlt as dlt
  restores any pipeline (its local working folder, else the destination's
  `_dlt_pipeline_state` and `_dlt_version`), after loading any package an interrupted run of it
  left. The old working folder is then removed; the destination keeps the old pipeline's rows.
  The next run goes on incrementally, nothing read twice.
"""

from __future__ import annotations

import logging
import os
import shutil
from copy import deepcopy

import dlt
import duckdb

from pipelines.analyst_file import default_analyst_file
from pipelines.config import duckdb_file_settings
from pipelines.exceptions import PipelineConfigError
from pipelines.locks import DUCKDB_WAIT, file_lock
from pipelines.names import DUCKDB_FILE, OLD_DUCKDB_FILE, old_pipeline_name

logger = logging.getLogger(__name__)


def move_old_duckdb_file(path: str) -> None:
    """Rename the DuckDB file an earlier version left beside `path` (the default file) to
    `path`; nothing when there is none."""
    old = os.path.join(os.path.dirname(path), OLD_DUCKDB_FILE)
    if not os.path.exists(old):
        return
    lock = f"{old}.lock"  # the lock earlier versions' runs held on it
    waited = f"the DuckDB file {old} was busy with another run for {DUCKDB_WAIT:.0f} s"
    with file_lock(lock, DUCKDB_WAIT, waited):
        if not os.path.exists(old):
            return  # another run moved it meanwhile
        if os.path.exists(path):
            raise PipelineConfigError(
                f"{old} (the DuckDB file of an earlier version, renamed to {DUCKDB_FILE} by "
                f"itself) cannot be renamed: {path} exists too. Move away whichever of the two "
                "you do not need, then run again"
            )
        with duckdb.connect(old) as db:
            db.execute("CHECKPOINT")  # the write-ahead log's commits into the file itself
        os.rename(old, path)
        os.unlink(lock)
    stale = default_analyst_file(old)
    removed = ""
    if stale.exists() and not duckdb_file_settings().analyst_file:
        stale.unlink()
        removed = f"; removed {stale.name}, which no run updates any more (analysts open "
        removed += f"{default_analyst_file(path).name})"
    logger.warning(
        "renamed %s to %s: DuckDB names a file's catalog after the file, and the old name was "
        "the dataset's%s",
        old,
        path,
        removed,
    )


def adopt_old_state(pipeline: dlt.Pipeline) -> bool:
    """Give `pipeline`, when it has no source state yet, the state and schemas its old-named
    pipeline left; True when it did. Call it holding the pipeline's locks (`exclusive`)."""
    old_name = old_pipeline_name(pipeline.pipeline_name)
    if old_name is None or pipeline.state.get("sources"):
        return False
    pipeline.sync_destination()  # its state may be in the destination only (a new container)
    if pipeline.state.get("sources"):
        return False
    old = dlt.pipeline(
        old_name,
        destination=pipeline.destination,
        dataset_name=pipeline.dataset_name,
        pipelines_dir=pipeline.pipelines_dir,
    )
    try:
        if old.has_pending_data:
            old.run()  # what an interrupted run of an earlier version extracted, under its name
        old.sync_destination()
        sources = old.state.get("sources")
        if sources:
            for name in old.schema_names:
                pipeline.schemas.save_schema(old.schemas[name])
            with pipeline.managed_state() as state:
                state["sources"] = deepcopy(sources)
    finally:
        pipeline.activate()
    shutil.rmtree(old.working_dir)  # its state lives on in `pipeline`, and in the destination
    if sources:
        logger.warning("pipeline %s took over the state of %s", pipeline.pipeline_name, old_name)
    return bool(sources)
