"""`zoho-deleted report`: one self-contained HTML file of what the warehouse holds, the page an
admin acts from: what is at risk first (`status`'s figures and health, open incidents with their
deadline and commands, the entries leaving the bin soonest), then the charts. The HTML around
the charts is pipelines/report_page.py.

Charts are plotly's (the optional extra `report`); plotly.js is inlined once in the page, so
the file opens offline, with no network, in any browser.
"""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import dlt

from pipelines.exceptions import PipelineConfigError
from pipelines.incidents import read_incidents
from pipelines.reading import Reading, reading_of
from pipelines.report_page import (
    chart_box,
    expiring,
    open_incidents,
    page,
    record_values,
    summary,
    table,
)
from pipelines.sql import query_rows
from pipelines.status import read_status

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
EXPIRING_SHOWN = 25
# The bin entries that leave it soonest, and (last column) how many are in the bin from now on.
EXPIRING = """
SELECT expires_at, module, display_name, COALESCE(deleted_by__name, deleted_by__id),
       deleted_time, count(*) OVER ()
FROM {ds}.deleted_records
WHERE org = %s AND type = 'recycle' AND restored_at IS NULL AND expires_at >= %s
ORDER BY expires_at, module, id LIMIT %s
"""
NO_DELETIONS = '<p class="note">No deletions captured yet.</p>'
# Modules: solid colours (Tableau 10), the same module the same colour in every chart.
MODULE_COLOURS = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
# Users: shades of grey, each with its hatching; the unknown deleter plain light grey.
USER_SHADES = ("#333333", "#666666", "#999999", "#4d4d4d", "#808080")
USER_PATTERNS = ("/", "\\", "x", ".", "+", "-", "|")
UNKNOWN_SHADE = "#cccccc"


def plotly() -> Any:
    """plotly's graph objects and offline module; a config error naming the extra without it."""
    try:
        import plotly.graph_objects as go
        import plotly.offline
    except ImportError:
        raise PipelineConfigError(
            "the report needs the optional extra `report` (plotly): pip install '.[report]'"
        ) from None
    return go, plotly.offline


def _colours(names: Iterable[str], palette: Sequence[str]) -> Dict[str, str]:
    return {name: palette[k % len(palette)] for k, name in enumerate(sorted(set(names)))}


def _user_markers(users: Iterable[str]) -> Dict[str, Dict[str, Any]]:
    """Users are grey, hatched bars: never mistaken for a module's solid colour."""
    known = sorted(set(users) - {UNKNOWN_USER})
    markers: Dict[str, Dict[str, Any]] = {
        user: {
            "color": USER_SHADES[k % len(USER_SHADES)],
            "pattern": {"shape": USER_PATTERNS[k % len(USER_PATTERNS)], "fgcolor": "#fff"},
        }
        for k, user in enumerate(known)
    }
    markers[UNKNOWN_USER] = {"color": UNKNOWN_SHADE}
    return markers


def _layout(figure: Any, x_title: str, y_title: str, **layout: Any) -> Any:
    """Axis titles on every chart; the legend above the plot, so a narrow screen takes height
    from the box (see `chart_box`), not width from the plot."""
    figure.update_layout(
        autosize=True,
        margin={"l": 60, "r": 12, "t": 12, "b": 50},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        xaxis={"title": x_title, "automargin": True},
        yaxis={"title": y_title, "automargin": True},
        **layout,
    )
    return figure


def _stacked(
    go: Any,
    rows: Sequence[Tuple[Any, str, int]],
    markers: Dict[str, Dict[str, Any]],
    x_title: str,
    y_title: str,
) -> Tuple[Any, int]:
    """A stacked bar chart, one trace per series (x the first column); and its series count."""
    series: Dict[str, Dict[Any, int]] = defaultdict(lambda: defaultdict(int))
    for x, name, count in rows:
        series[name][x] += int(count)
    bars = [
        go.Bar(
            name=html.escape(name),  # plotly draws tags in names: show them as typed instead
            x=[str(x) for x in points],
            y=list(points.values()),
            marker=markers[name],
        )
        for name, points in sorted(series.items())
    ]
    return _layout(go.Figure(bars), x_title, y_title, barmode="stack"), len(bars)


def _timeline(go: Any, incidents: List[Dict[str, Any]], colours: Dict[str, str]) -> Any:
    """Each incident as a line from its first to its last deletion, on its module and user,
    in its module's colour."""
    figure = go.Figure()
    shown = set()
    for incident in incidents:
        who = incident["deleted_by__name"] or incident["deleted_by__id"]
        module = incident["module"]
        figure.add_trace(
            go.Scatter(
                x=[_iso(incident["started_at"]), _iso(incident["ended_at"])],
                y=[html.escape(f"{module} / {who}")] * 2,
                mode="lines+markers",
                name=html.escape(module),
                legendgroup=module,
                showlegend=module not in shown,
                line={"width": 10, "color": colours[module]},
                hovertext=html.escape(
                    f"{incident['incident_id']}: {incident['records']} records, "
                    f"{incident['in_bin']} in the bin"
                ),
            )
        )
        shown.add(module)
    return _layout(figure, "deletion time (UTC)", "module / deleted by", xaxis_type="date")


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat()


def _chart(figure: Any, legend_entries: int, plot: int = 300) -> str:
    config = {"displaylogo": False, "displayModeBar": False, "responsive": True}
    return chart_box(
        figure.to_html(full_html=False, include_plotlyjs=False, config=config),
        legend_entries,
        plot,
    )


def _incident_table(incidents: List[Dict[str, Any]]) -> str:
    if not incidents:
        return '<p class="note">No mass-deletion incidents.</p>'
    header = ("incident", "module", "deleted by", "from", "to", "records", "in bin",
              "restored", "recreated", "first expiry", "state")  # fmt: skip
    rows = [
        (
            i["incident_id"],
            i["module"],
            i["deleted_by__name"] or i["deleted_by__id"],
            i["started_at"],
            i["ended_at"],
            i["records"],
            i["in_bin"],
            i["restored"],
            i["recreated"],
            i["first_expiry"],
            "reviewed" if i["reviewed_at"] else "OPEN" if i["is_open"] else "left the bin",
        )
        for i in incidents
    ]
    return table(header, rows, numeric=(5, 6, 7, 8))


def write_report(
    source: Union[dlt.Pipeline, Reading], org: str, output: str, now: Optional[datetime] = None
) -> Path:
    """Write the report of one org to `output`; returns its path."""
    go, offline = plotly()
    now = now or datetime.now(UTC)
    pipeline = reading_of(source)
    status = read_status(pipeline, org, now)
    daily = query_rows(pipeline, DAILY, org)
    incidents = read_incidents(pipeline, org)
    leaving = query_rows(pipeline, LEAVING, org, now, now + LEAVING_HORIZON)
    soonest = query_rows(pipeline, EXPIRING, org, now, EXPIRING_SHOWN)
    coverage = query_rows(pipeline, COVERAGE, org)
    modules = _colours(
        [m for _, m, _, _ in daily]
        + [m for m, _, _ in coverage]
        + list(status.modules)
        + list(status.record_values),
        MODULE_COLOURS,
    )
    by_module = {m: {"color": c} for m, c in modules.items()}
    users = _user_markers(u or UNKNOWN_USER for _, _, u, _ in daily)
    sections = [
        ("Summary", summary(status, sum(n for _, _, n in leaving), now)),
        ("Open incidents: restore before the deadline", open_incidents(status.incidents, org)),
        ("Leaving the bin soonest", expiring(
            [row[:-1] for row in soonest], soonest[0][-1] if soonest else 0, EXPIRING_SHOWN)),
        ("Deletions per day, by module", daily and _chart(*_stacked(
            go, [(d, m, n) for d, m, _, n in daily], by_module, "UTC day", "deletions"))
         or NO_DELETIONS),
        ("Deletions per day, by user", daily and _chart(*_stacked(
            go, [(d, u or UNKNOWN_USER, n) for d, _, u, n in daily], users, "UTC day",
            "deletions")) or NO_DELETIONS),
        ("Incidents", (incidents and _chart(
            _timeline(go, incidents, modules), len({i["module"] for i in incidents}),
            max(200, 50 * len({(i["module"], i["deleted_by__id"]) for i in incidents}))) or "")
         + _incident_table(incidents)),
        ("Leaving the bin in the next 14 days", leaving and _chart(*_stacked(
            go, leaving, by_module, "UTC day of expiry", "bin entries"))
         or '<p class="note">Nothing leaves the bin in the next 14 days.</p>'),
        ("Capture coverage per module", coverage and _chart(
            _coverage(go, coverage, modules, KEPT), 2) or NO_DELETIONS),
        ("Record values per module", _values(go, status, modules)),
    ]  # fmt: skip
    body = [f"<h2>{html.escape(heading)}</h2>{content}" for heading, content in sections]
    path = Path(output).resolve()
    written = page(org, pipeline.dataset_name, pipeline.note(), body, offline.get_plotlyjs())
    path.write_text(written, "utf-8")
    return path


KEPT = ("details kept", "purged before any run saw it")
VALUES_KEPT = ("last values kept", "deleted before their values were captured")


def _coverage(
    go: Any, coverage: List[Tuple[str, int, int]], colours: Dict[str, str], names: Tuple[str, str]
) -> Any:
    """Per module, records with what was kept (solid) and those without (hatched), named as
    `names` says."""
    x = [html.escape(m) for m, _, _ in coverage]
    fill = [colours[m] for m, _, _ in coverage]
    hatched = {"color": fill, "pattern": {"shape": "x", "fgcolor": "#fff"}}
    figure = go.Figure(
        [
            go.Bar(name=names[0], x=x, y=[k for _, k, _ in coverage], marker={"color": fill}),
            go.Bar(name=names[1], x=x, y=[n for _, _, n in coverage], marker=hatched),
        ]
    )
    return _layout(figure, "module", "records", barmode="stack")


def _values(go: Any, status: Any, colours: Dict[str, str]) -> str:
    """Record values: per module, deleted records with their last values and without (a
    chart, once there are any), and where each module's values pass stands."""
    rows = [(m, v["with_values"], v["deleted_before_capture"])
            for m, v in status.record_values.items()]  # fmt: skip
    deleted = any(kept or lost for _, kept, lost in rows)
    chart = _chart(_coverage(go, rows, colours, VALUES_KEPT), 2) if deleted else ""
    return chart + record_values(status)
