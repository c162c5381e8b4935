"""What the commands write down in the dataset besides runs: incident reviews and restore
requests. Loaded with dlt through the org's pipeline, so they land on any destination."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Any, Dict, List, Tuple

import dlt

from pipelines.exceptions import PipelineConfigError
from pipelines.incidents import REVIEWS_TABLE, read_incidents
from pipelines.run import exclusive, finish_interrupted, load
from pipelines.views import create_views

RESTORE_REQUESTS = "restore_requests"


def who() -> str:
    """The user the command runs as, for `reviewed_by` and `requested_by`."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "unknown"


def acknowledge(pipeline: dlt.Pipeline, org: str, incident_id: str) -> Dict[str, Any]:
    """Mark an incident reviewed (who and when); returns the incident as it was before.

    One row per incident (merge on org and incident id): a second acknowledgement records the
    latest review. A review covers the burst as it was: later deletions in it reopen it.
    """
    with exclusive(pipeline):
        found = read_incidents(pipeline, org, incident_id=incident_id)
        if not found:
            raise PipelineConfigError(
                f"no incident {incident_id!r} in org {org}: `zoho-deleted incidents` lists "
                "their ids"
            )
        finish_interrupted(pipeline)
        row = {"org": org, "incident_id": incident_id, "reviewed_at": datetime.now(UTC)}
        load(
            pipeline,
            dlt.resource(
                [{**row, "reviewed_by": who()}],
                name=REVIEWS_TABLE,
                primary_key=("org", "incident_id"),
                write_disposition="merge",
                columns={
                    "org": {"data_type": "text", "nullable": False},
                    "incident_id": {"data_type": "text", "nullable": False},
                    "reviewed_at": {"data_type": "timestamp"},
                    "reviewed_by": {"data_type": "text"},
                },
            ),
        )
        create_views(pipeline)  # the view now joins the reviews
    return found[0]


def record_restores(pipeline: dlt.Pipeline, outcomes: List[Dict[str, Any]]) -> None:
    """Add each id's restore outcome; the caller holds the pipeline's lock.

    Merged on (org, module, id, requested_at), one row per id a restore call sent, so a load
    job that a kill makes dlt run twice leaves one row (rows of earlier versions, appended,
    have that key too).
    """
    key = ("org", "module", "id", "requested_at")
    columns: Dict[str, Any] = {c: {"data_type": "text", "nullable": False} for c in key[:3]}
    columns["requested_at"] = {"data_type": "timestamp"}
    columns.update({c: {"data_type": "text"} for c in ("requested_by", "code")})
    columns["message"] = {"data_type": "text", "nullable": True}
    load_audit(pipeline, RESTORE_REQUESTS, outcomes, key, columns)


def load_audit(
    pipeline: dlt.Pipeline,
    table: str,
    rows: List[Dict[str, Any]],
    key: Tuple[str, ...],
    columns: Dict[str, Any],
) -> None:
    """Merge audit `rows` into `table` on `key` (the caller holds the pipeline's lock), after
    loading what an interrupted command left."""
    if not rows:
        return
    finish_interrupted(pipeline)
    load(
        pipeline,
        dlt.resource(
            rows, name=table, primary_key=key, write_disposition="merge", columns=columns
        ),
    )
