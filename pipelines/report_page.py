"""The HTML of `zoho-deleted report`: the summary, the tables and the page around the charts.

Every value read from the warehouse goes through `esc` (record and user names are typed by Zoho
users); the page fits a phone: a viewport, tables that scroll inside their own box, charts whose
height the stylesheet sets per screen width (`chart_box`).
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any, Dict, Iterable, List, Optional, Sequence

from pipelines.incidents import utc
from pipelines.values_progress import pass_words
from pipelines.words import counted
from sources.zoho_crm import DEFAULT_ORG

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222;
  padding: 0 0.8em; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left;
  white-space: nowrap; vertical-align: top; }
td.num, th.num { text-align: right; }
.note { color: #666; font-size: 0.9em; }
.summary { display: grid; grid-template-columns: repeat(auto-fit, minmax(10em, 1fr)); gap: 0.6em; }
.fact { border: 1px solid #ddd; border-radius: 6px; padding: 0.5em 0.7em; }
.fact b { display: block; font-size: 1.5em; }
.health { padding: 0.6em 0.9em; border-radius: 6px; margin: 0.8em 0; }
.healthy { background: #e7f5e9; } .unhealthy { background: #fdecea; }
.health ul { margin: 0.3em 0 0; padding-left: 1.2em; }
.incident { border-left: 4px solid #c62828; padding: 0.2em 0.9em; margin: 0.8em 0; }
code { background: #f3f3f3; padding: 0.1em 0.3em; border-radius: 3px; overflow-wrap: anywhere; }
.chart { height: var(--h); } .chart > div { height: 100%; }
@media (max-width: 600px) {
  body { margin: 0.8em auto; } h1 { font-size: 1.25em; }
  .chart { height: var(--h-phone); }
}
"""


def esc(value: Any) -> str:
    """A warehouse value as HTML text; an instant as `utc()` shows it; nothing as a dash."""
    if value is None:
        return "–"
    return html.escape(utc(value) if isinstance(value, datetime) else str(value))


def org_flag(org: str) -> str:
    """`--org ORG`, as a command needs it, when `org` is not the default one."""
    return "" if org == DEFAULT_ORG else f" --org {org}"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    """A table that scrolls sideways inside its own box on a narrow screen."""

    def cell(tag: str, k: int, value: str) -> str:
        return f'<{tag} class="num">{value}</{tag}>' if k in numeric else f"<{tag}>{value}</{tag}>"

    head = "".join(cell("th", k, html.escape(h)) for k, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", k, esc(v)) for k, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'


def chart_box(figure_html: str, legend_entries: int, plot: int = 300) -> str:
    """A chart's box: its height grows with its legend (above the plot, one entry a line on a
    phone), so the plot itself keeps about `plot` px whatever the width."""
    desktop = plot + 80 + 24 * (-(-legend_entries // 5))
    phone = plot + 40 + 22 * legend_entries
    return f'<div class="chart" style="--h:{desktop}px;--h-phone:{phone}px">{figure_html}</div>'


def summary(status: Any, leaving_14d: int, now: datetime) -> str:
    """What is in the bin, what leaves it soon, open incidents, the last run and its health."""
    counts = status.modules.values()
    facts = (
        ("in the bin (restorable)", sum(c["recycle"] for c in counts)),
        ("leave the bin within 7 days", sum(c["expiring_within_7d"] for c in counts)),
        ("leave the bin within 14 days", leaving_14d),
        ("open incidents", len(status.incidents)),
        ("purged (captured here)", sum(c["permanent"] for c in counts)),
        ("restored", sum(c["restored"] for c in counts)),
    )
    cards = "".join(f'<div class="fact"><b>{n}</b>{html.escape(what)}</div>' for what, n in facts)
    last = esc(status.last_success_at) if status.last_success_at else "none yet"
    if status.healthy:
        health = '<div class="health healthy"><b>Healthy</b> (as <code>status</code> says).</div>'
    else:
        problems = "".join(f"<li>{esc(_problem(p))}</li>" for p in status.problems)
        health = (
            '<div class="health unhealthy"><b>Unhealthy</b> (as <code>status</code> says):'
            f"<ul>{problems}</ul></div>"
        )
    return (
        f'<div class="summary">{cards}</div>{health}'
        f'<p class="note">Last successful run: {last}. Written {esc(now)}.</p>'
    )


def _problem(problem: Any) -> str:
    """A problem of `status` in the report's words: `status` lists open incidents above its
    problems, the report below its summary (with the commands that act on each)."""
    if problem.code != "incident_open":
        return problem.text
    count = problem.numbers["count"]
    each = "it" if count == 1 else "each"
    return (
        f"{counted(count, 'open mass-deletion incident', 'open mass-deletion incidents')} "
        "(listed below, under "
        f"Open incidents, with the commands that restore or acknowledge {each})"
    )


def open_incidents(incidents: List[Dict[str, Any]], org: str) -> str:
    """Each open incident with its deadline and the commands that restore or acknowledge it."""
    if not incidents:
        return '<p class="note">No open mass-deletion incident.</p>'
    parts = []
    for i in sorted(incidents, key=lambda i: i["first_expiry"] or i["ended_at"]):
        who = i["deleted_by__name"] or i["deleted_by__id"]
        restore = f"zoho-deleted restore --incident {i['incident_id']}{org_flag(org)}"
        ack = f"zoho-deleted incidents ack {i['incident_id']}{org_flag(org)}"
        parts.append(
            f'<div class="incident"><p><b>{esc(i["incident_id"])}</b>: {esc(i["records"])} '
            f"{esc(i['module'])} deleted by {esc(who)} between {esc(i['started_at'])} and "
            f"{esc(i['ended_at'])}; {esc(i['in_bin'])} still in the bin.</p>"
            f"<p><b>Deadline: {esc(i['first_expiry'])}</b>, when its first records leave the "
            "bin and Zoho can no longer restore them.</p>"
            f"<p>Restore: <code>{esc(restore)}</code> lists what it would restore; add "
            f"<code>--yes</code> to restore.<br>Reviewed and nothing to restore: "
            f"<code>{esc(ack)}</code></p></div>"
        )
    return "".join(parts)


def expiring(rows: List[Sequence[Any]], total: int, shown: int) -> str:
    """The bin entries that leave it soonest; how many more there are."""
    if not rows:
        return '<p class="note">Nothing in the bin.</p>'
    header = ("expires at", "module", "name", "deleted by", "deleted at")
    rest = total - len(rows)
    more = (
        f'<p class="note">{rest} more entries in the bin expire later (the first {shown} are '
        "shown; table <code>deleted_records</code> has them all).</p>"
        if rest > 0
        else ""
    )
    return table(header, rows) + more


def record_values(status: Any) -> str:
    """Per module whose values are captured: its deleted records with values and without, and
    where its values pass stands (`status`'s figures and notices)."""
    if not status.record_values:
        return (
            '<p class="note">No record values captured: list modules in '
            "<code>record_values</code> to keep the last field values of their records, "
            "which stay once a record is deleted.</p>"
        )
    header = ("module", "deleted, values kept", "deleted before capture", "values pass")
    rows = [
        (module, v["with_values"], v["deleted_before_capture"], pass_words(v))
        for module, v in sorted(status.record_values.items())
    ]
    notes = "".join(
        f'<p class="note">{esc(n.text)}</p>' for n in status.notices if n.code.startswith("values_")
    )
    return table(header, rows, numeric=(1, 2)) + notes


def page(org: str, dataset: str, note: Optional[str], sections: List[str], plotly_js: str) -> str:
    """The whole document: one file, plotly.js inlined, nothing fetched; `note` says where the
    data was read from when the analyst file stood in for the pipeline's."""
    title = f"Zoho CRM deletions: org {esc(org)}"
    read_from = f" {esc(note)}" if note else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{STYLE}</style><script>{plotly_js}</script></head><body>"
        f'<h1>{title}</h1><p class="note">Dataset {esc(dataset)}.{read_from}</p>'
        + "\n".join(sections)
        + "</body></html>\n"
    )
