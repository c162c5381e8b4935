"""What the warehouse holds, per module, and when the pipeline last ran well."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Optional

import dlt
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from pipelines.zoho_crm_deleted import RUNS_TABLE


@dataclass
class Status:
    last_success_at: Optional[datetime]
    last_run_at: Optional[datetime]
    last_run_failed_modules: Optional[str]
    modules: Dict[str, Dict[str, int]] = field(default_factory=dict)


def _query(pipeline: dlt.Pipeline, sql: str) -> List[Any]:
    try:
        with pipeline.sql_client() as client:
            return list(
                client.execute_sql(sql.format(ds=client.fully_qualified_dataset_name())) or []
            )
    except DatabaseUndefinedRelation:
        return []


def read_status(pipeline: dlt.Pipeline) -> Status:
    runs = _query(
        pipeline,
        "SELECT max(CASE WHEN succeeded THEN finished_at END), max(finished_at) "
        f"FROM {{ds}}.{RUNS_TABLE}",
    )
    last_success, last_run = runs[0] if runs else (None, None)
    failed = _query(
        pipeline,
        f"SELECT failed_modules FROM {{ds}}.{RUNS_TABLE} ORDER BY finished_at DESC LIMIT 1",
    )
    status = Status(last_success, last_run, failed[0][0] if failed else None)
    for module, kind, count in _query(
        pipeline, "SELECT module, type, count(*) FROM {ds}.deleted_records GROUP BY 1, 2 ORDER BY 1"
    ):
        status.modules.setdefault(module, {"recycle": 0, "permanent": 0})[kind] = count
    return status
