"""`zoho-deleted report`: one self-contained HTML file of what the warehouse holds.

Charts are plotly's (the optional extra `report`); plotly.js is inlined once in the page, so
the file opens offline, with no network, in any browser.
"""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from pipelines.incidents import read_incidents, utc
from sources.zoho_crm.errors import ZohoConfigError
from sources.zoho_crm.warehouse import Queryable, query_rows

DEFAULT_OUTPUT = "zoho-deleted-report.html"
LEAVING_HORIZON = timedelta(days=14)
UNKNOWN_USER = "unknown (purged before a run saw it)"

DAILY = """
SELECT day, module, deleted_by, sum(deletions) FROM {ds}.deletions_daily
WHERE org = %s GROUP BY day, module, deleted_by ORDER BY day
"""
LEAVING = """
SELECT CAST(timezone('UTC', expires_at) AS DATE) AS day, module, count(*)
FROM {ds}.deleted_records
WHERE org = %s AND type = 'recycle' AND restored_at IS NULL
  AND expires_at >= %s AND expires_at < %s
GROUP BY 1, 2 ORDER BY 1, 2
"""
DETAILS = "display_name IS NOT NULL OR deleted_by__name IS NOT NULL OR created_by__name IS NOT NULL"
COVERAGE = f"""
SELECT module, count(*) FILTER (WHERE {DETAILS}), count(*) FILTER (WHERE NOT ({DETAILS}))
FROM {{ds}}.deleted_records WHERE org = %s GROUP BY module ORDER BY module
"""
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left; }
.note { color: #666; font-size: 0.9em; }
"""


def plotly() -> Any:
    """plotly's graph objects and offline module; a config error naming the extra without it."""
    try:
        import plotly.graph_objects as go
        import plotly.offline
    except ImportError:
        raise ZohoConfigError(
            "the report needs the optional extra `report` (plotly): pip install '.[report]'"
        ) from None
    return go, plotly.offline


def _stacked(go: Any, rows: Sequence[Tuple[Any, str, int]], title: str, x_title: str) -> Any:
    """A stacked bar chart: one trace per series, x the first column."""
    series: Dict[str, Dict[Any, int]] = defaultdict(lambda: defaultdict(int))
    for x, name, count in rows:
        series[name][x] += int(count)
    figure = go.Figure(
        [
            go.Bar(name=name, x=[str(x) for x in points], y=list(points.values()))
            for name, points in sorted(series.items())
        ]
    )
    figure.update_layout(barmode="stack", title=title, xaxis_title=x_title, height=380)
    return figure


def _timeline(go: Any, incidents: List[Dict[str, Any]]) -> Any:
    """Each incident as a line from its first to its last deletion, on its module and user."""
    figure = go.Figure()
    for incident in incidents:
        who = incident["deleted_by__name"] or incident["deleted_by__id"]
        figure.add_trace(
            go.Scatter(
                x=[_iso(incident["started_at"]), _iso(incident["ended_at"])],
                y=[f"{incident['module']} / {who}"] * 2,
                mode="lines+markers",
                name=incident["incident_id"],
                line={"width": 10},
                hovertext=f"{incident['records']} records, {incident['in_bin']} in the bin",
            )
        )
    figure.update_layout(title="Mass-deletion incidents", height=320, xaxis_type="date")
    return figure


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat()


def _incident_table(incidents: List[Dict[str, Any]]) -> str:
    if not incidents:
        return '<p class="note">No incidents.</p>'
    header = ("incident", "module", "deleted by", "from", "to", "records", "in bin", "state")
    rows = []
    for i in incidents:
        state = "reviewed" if i["reviewed_at"] else "OPEN" if i["is_open"] else "left the bin"
        cells = (
            i["incident_id"],
            i["module"],
            i["deleted_by__name"] or i["deleted_by__id"],
            utc(i["started_at"]),
            utc(i["ended_at"]),
            i["records"],
            i["in_bin"],
            state,
        )
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in header)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def write_report(
    pipeline: Queryable, org: str, output: str, now: Optional[datetime] = None
) -> Path:
    """Write the report of one org to `output`; returns its path."""
    go, offline = plotly()
    now = now or datetime.now(UTC)
    daily = query_rows(pipeline, DAILY, org)
    incidents = read_incidents(pipeline, org)
    leaving = query_rows(pipeline, LEAVING, org, now, now + LEAVING_HORIZON)
    coverage = query_rows(pipeline, COVERAGE, org)
    coverage_rows = [(m, "details kept", kept) for m, kept, _ in coverage] + [
        (m, "purged before any run saw it", lost) for m, _, lost in coverage
    ]
    sections = [
        ("Deletions per day, by module", _stacked(
            go, [(d, m, n) for d, m, _, n in daily], "Deletions per day by module", "UTC day")),
        ("Deletions per day, by user", _stacked(
            go, [(d, u or UNKNOWN_USER, n) for d, _, u, n in daily], "Deletions per day by user",
            "UTC day")),
        ("Incidents", _timeline(go, incidents)),
        ("Leaving the bin in the next 14 days", _stacked(
            go, [(d, m, n) for d, m, n in leaving], "Bin entries reaching their expiry",
            "UTC day")),
        ("Capture coverage per module", _stacked(
            go, coverage_rows, "Records whose details were kept vs lost", "module")),
    ]  # fmt: skip
    body = []
    for heading, figure in sections:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        body.append(
            figure.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})
        )
        if heading == "Incidents":
            body.append(_incident_table(incidents))
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>Zoho CRM deletions: org {html.escape(org)}</title>"
        f"<style>{STYLE}</style><script>{offline.get_plotlyjs()}</script></head><body>"
        f"<h1>Zoho CRM deletions: org {html.escape(org)}</h1>"
        f'<p class="note">Written {utc(now)} from dataset {html.escape(pipeline.dataset_name)}.'
        "</p>" + "\n".join(body) + "</body></html>\n"
    )
    path = Path(output).resolve()
    path.write_text(page, encoding="utf-8")
    return path
