"""Mass-deletion incidents: bursts of deletions by one user in one module.

Deletions by one user (`deleted_by__id`) in one module with no gap longer than `incident_gap`
between consecutive ones form a burst; a burst of at least `incident_threshold` records is an
incident. Times are the best the warehouse has: the `binned` event's time where a run saw the
record in the bin (a purge moves Zoho's deleted_time to the purge), else Zoho's deleted_time.
Records whose deleter is unknown (purged before any run saw them) belong to no incident.

`incident_id` is a hash of org, module, deleter id, the burst's first deletion time and that
first record's id. Later deletions that extend a burst keep its id (its start does not move),
and so do restores and purges (the rows stay, the binned time does not change). A burst gets a
new id only when a deletion *earlier* than its start joins it: one captured late, or one that
fills the gap to an earlier burst, which then absorbs it.

The `deletion_incidents` view is recreated after every run with the settings of that moment;
the commands (`status`, `incidents`, `restore --incident`, `report`) run the same SELECT with
the settings in force when they run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Dict, List, Optional

from pipelines.config import command_settings
from pipelines.sql import query_rows
from sources.zoho_crm.events import EVENTS_TABLE
from sources.zoho_crm.warehouse import Queryable, existing_tables

REVIEWS_TABLE = "incident_reviews"
COLUMNS = (
    "incident_id",
    "org",
    "module",
    "deleted_by__id",
    "deleted_by__name",
    "started_at",
    "ended_at",
    "records",
    "in_bin",
    "first_expiry",
    "reviewed_at",
    "reviewed_by",
    "is_open",
    "restored",
    "recreated",
)
# Entries Zoho can still restore, as far as the warehouse knows.
RESTORABLE = "type = 'recycle' AND restored_at IS NULL AND expires_at > CURRENT_TIMESTAMP"

# The best deletion time of each record: shared with `restore --incident`'s selection.
DELETED_AT = "COALESCE(b.event_time, r.deleted_time)"
BINNED_JOIN = """LEFT JOIN {events} b
  ON b.org = r.org AND b.module = r.module AND b.id = r.id AND b.event = 'binned'"""

INCIDENTS = f"""
WITH deletions AS (
  SELECT r.org, r.module, r.id, r.type, r.expires_at, r.restored_at,
         r.deleted_by__id, r.deleted_by__name, {DELETED_AT} AS deleted_at,
         EXISTS (SELECT 1 FROM {{events}} e WHERE e.org = r.org AND e.module = r.module
                 AND e.id = r.id AND e.event = 'recreated') AS recreated
  FROM {{records}} r
  {BINNED_JOIN}
  WHERE r.deleted_by__id IS NOT NULL
),
marked AS (
  SELECT d.*,
         CASE WHEN deleted_at - LAG(deleted_at) OVER (
                     PARTITION BY org, module, deleted_by__id ORDER BY deleted_at, id)
                   <= INTERVAL '{{gap}} seconds'
              THEN 0 ELSE 1 END AS starts
  FROM deletions d
),
numbered AS (
  SELECT m.*,
         SUM(starts) OVER (PARTITION BY org, module, deleted_by__id ORDER BY deleted_at, id
                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS burst
  FROM marked m
),
bursts AS (
  SELECT org, module, deleted_by__id, max(deleted_by__name) AS deleted_by__name,
         min(deleted_at) AS started_at, max(deleted_at) AS ended_at, count(*) AS records,
         count(*) FILTER (WHERE {RESTORABLE}) AS in_bin,
         min(expires_at) FILTER (WHERE {RESTORABLE}) AS first_expiry,
         count(*) FILTER (WHERE restored_at IS NOT NULL) AS restored,
         count(*) FILTER (WHERE recreated) AS recreated,
         min(CASE WHEN starts = 1 THEN id END) AS first_id
  FROM numbered
  GROUP BY org, module, deleted_by__id, burst
  HAVING count(*) >= {{threshold}}
),
incidents AS (
  SELECT substr(md5(concat_ws('|', org, module, deleted_by__id,
                              CAST(CAST(EXTRACT(EPOCH FROM started_at) AS BIGINT) AS VARCHAR),
                              first_id)), 1, 12) AS incident_id,
         bursts.*
  FROM bursts
)
SELECT i.incident_id, i.org, i.module, i.deleted_by__id, i.deleted_by__name,
       i.started_at, i.ended_at, i.records, i.in_bin, i.first_expiry,
       {{reviewed}},
       (i.in_bin > 0 AND {{unreviewed}}) AS is_open, i.restored, i.recreated
FROM incidents i
{{reviews_join}}
"""
# A review counts for the burst as it was then: deletions after it reopen the incident.
REVIEWED = "v.reviewed_at AS reviewed_at, v.reviewed_by AS reviewed_by"
REVIEWS_JOIN = """LEFT JOIN {reviews} v
  ON v.org = i.org AND v.incident_id = i.incident_id AND v.reviewed_at >= i.ended_at"""
NEVER_REVIEWED = (
    "CAST(NULL AS TIMESTAMP WITH TIME ZONE) AS reviewed_at, CAST(NULL AS VARCHAR) AS reviewed_by"
)


def incidents_select(prefix: str, reviews: bool) -> str:
    """The incidents' SELECT with today's settings; `prefix` qualifies the tables, `reviews`
    says whether the reviews table exists yet."""
    threshold, gap = command_settings().incident_rule()
    return INCIDENTS.format(
        records=f"{prefix}deleted_records",
        events=f"{prefix}deletion_events",
        gap=max(1, round(gap.total_seconds())),
        threshold=threshold,
        reviewed=REVIEWED if reviews else NEVER_REVIEWED,
        unreviewed="v.reviewed_at IS NULL" if reviews else "TRUE",
        reviews_join=REVIEWS_JOIN.format(reviews=f"{prefix}{REVIEWS_TABLE}") if reviews else "",
    )


def read_incidents(
    pipeline: Queryable, org: str, open_only: bool = False, incident_id: Optional[str] = None
) -> List[Dict[str, Any]]:
    """One org's incidents, latest first, as dicts of COLUMNS."""
    tables = existing_tables(pipeline)
    select = incidents_select("{ds}.", REVIEWS_TABLE in tables)
    if EVENTS_TABLE not in tables:
        return []
    where, args = ["org = %s"], [org]
    if open_only:
        where.append("is_open")
    if incident_id is not None:
        where.append("incident_id = %s")
        args.append(incident_id)
    sql = f"SELECT * FROM ({select}) x WHERE {' AND '.join(where)} ORDER BY started_at DESC"
    return [dict(zip(COLUMNS, row, strict=True)) for row in query_rows(pipeline, sql, *args)]


def describe_incident(incident: Dict[str, Any]) -> str:
    """One line: id, who, where, when, how many, what is left in the bin."""
    if incident["reviewed_at"]:
        state = f"reviewed {utc(incident['reviewed_at'])} by {incident['reviewed_by']}"
    else:
        state = "OPEN" if incident["is_open"] else "nothing left in the bin"
    expiry = f", first expiry {utc(incident['first_expiry'])}" if incident["first_expiry"] else ""
    if incident["restored"] or incident["recreated"]:
        expiry += f", {incident['restored']} restored, {incident['recreated']} recreated"
    return (
        f"{incident['incident_id']}  {incident['module']}: {incident['records']} records deleted "
        f"by {incident['deleted_by__name'] or incident['deleted_by__id']} "
        f"{utc(incident['started_at'])} -> {utc(incident['ended_at'])}; "
        f"{incident['in_bin']} in the bin{expiry}; {state}"
    )


def utc(instant: datetime) -> str:
    """An instant as `2026-11-23 14:05 UTC`, whatever time zone the destination answered in."""
    return f"{instant.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
