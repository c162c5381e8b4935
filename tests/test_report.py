"""`zoho-deleted report`: one HTML file that opens offline, and its charts render in a browser."""

from __future__ import annotations

import html
import json
import re
import shlex
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import DUCKDB_FILE, NOW
from test_cli import in_process  # noqa: F401  (the fixture)
from test_incidents import MARCO, PATRICIA, burst
from test_readers import HOLDER

from pipelines import report as report_module
from pipelines.incidents import utc
from pipelines.report_page import open_incidents, summary
from pipelines.status import Problem
from zoho_standin.org import User

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
EVIL = User("<script>alert(1)</script>", "410888000000099999")  # names are typed by users
EVIL_RECORD = "<img src=x onerror=alert(2)>"
HEADINGS = (
    "Deletions per day, by module",
    "Deletions per day, by user",
    "Incidents",
    "Leaving the bin in the next 14 days",
    "Capture coverage per module",
)


@pytest.fixture
def report(org, in_process, monkeypatch, tmp_path):  # noqa: F811
    """A report of some deletions, an incident and a purge, written by the command."""
    monkeypatch.setenv("SOURCES__ZOHO_CRM__INCIDENT_THRESHOLD", "5")
    burst(org, "Leads", PATRICIA, NOW - timedelta(days=2), 6, 1000)
    burst(org, "Deals", MARCO, NOW - timedelta(days=55), 3, 2000, step=3600)  # leaving soon
    org.purge("Leads", "777", NOW - timedelta(days=1))  # never seen in the bin
    org.delete("Contacts", "3000", NOW - timedelta(days=1), EVIL_RECORD, EVIL, EVIL)
    assert in_process("run")[0] == 0
    code, out, err = in_process("report", "--output", "deletions.html")
    assert code == 0, err
    path = tmp_path / "deletions.html"
    assert out.strip() == f"Report written to {path}"
    return path


def test_the_report_is_one_file_that_needs_no_network(report):
    page = report.read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)  # nothing fetched
    assert "Plotly.newPlot" in page and "plotly.js v" in page  # the library is inlined
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in page
    assert "Patricia Boyle" in page and "purged before any run saw it" in page
    assert re.search(r"<td>[0-9a-f]{12}</td><td>Leads</td><td>Patricia Boyle</td>", page)


def test_without_the_extra_the_report_says_how_to_install_it(org, in_process, monkeypatch):  # noqa: F811
    monkeypatch.setitem(sys.modules, "plotly", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    code, out, err = in_process("report")
    assert code == 2 and err.count("\n") == 1
    assert "pip install '.[report]'" in err and "Traceback" not in err


NO_CHROMIUM = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium to open the report in (Debian: apt-get install chromium)",
)
# Appended to a copy of the report opened in a 390 px frame: what the browser laid out, posted
# to the page around the frame (a file:// frame cannot be read from outside).
PROBE = """<script>window.addEventListener("load", () => setTimeout(() => parent.postMessage(
  JSON.stringify({
    width: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    overflowing: [...document.body.querySelectorAll("*")]
      .filter(e => !e.closest(".scroll") && e.getBoundingClientRect().right > innerWidth + 1)
      .map(e => e.tagName + "." + e.getAttribute("class")),
    plots: [...document.querySelectorAll(".plotly-graph-div")]
      .map(g => [g.offsetWidth, Math.round(g._fullLayout._size.h)]),
    facts: [...document.querySelectorAll(".fact b")].map(b => b.textContent),
    legends: [...document.querySelectorAll(".legendtext")].map(t => t.textContent),
    images: document.images.length,
  }), "*"), 500));</script>"""
PHONE = """<!DOCTYPE html><html><body style="margin:0">
<iframe src="report.html" style="width:390px;height:6000px;border:0;display:block"></iframe>
<pre id="probe"></pre><script>window.addEventListener("message",
  e => { document.getElementById("probe").textContent = e.data; });</script></body></html>"""


def _dom(url: str, profile: Path, width: int = 1280) -> str:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--window-size={width},1600",
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout


@NO_CHROMIUM
def test_the_charts_render_in_a_headless_browser(report, tmp_path):
    dom = _dom(report.as_uri(), tmp_path / "chromium")
    # Each plotly chart draws into its own <svg class="main-svg">; bars and lines are traces.
    assert dom.count('class="main-svg"') >= 2 * len(HEADINGS)
    assert dom.count('class="trace bars"') >= 4
    assert re.search(r'class="trace scatter', dom)  # the incident on its timeline


@NO_CHROMIUM
def test_on_a_phone_nothing_overflows_and_the_charts_keep_their_height(report, tmp_path):
    phone = tmp_path / "phone"
    phone.mkdir()
    (phone / "report.html").write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    (phone / "index.html").write_text(PHONE)
    # Headless Chromium's window is at least 500 px wide: the frame is the phone's screen.
    dom = _dom((phone / "index.html").as_uri(), tmp_path / "chromium", width=500)
    seen = json.loads(html.unescape(re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)[1]))
    assert seen["width"] == 390 and seen["scrollWidth"] == 390, seen
    assert seen["overflowing"] == []  # tables scroll inside their own box
    assert len(seen["plots"]) == len(HEADINGS)
    for k, (width, plot_height) in enumerate(seen["plots"]):  # fits, and is no ~60 px sliver
        assert width <= 370 and plot_height >= (150 if k == 2 else 250)  # 2: one incident's row
    assert [int(n) for n in seen["facts"]] == list(_facts(report.read_text()).values())
    assert EVIL.name in seen["legends"] and seen["images"] == 0  # shown as typed, never run


def _facts(page: str) -> dict:
    return {
        what: int(n) for n, what in re.findall(r'<div class="fact"><b>(\d+)</b>([^<]+)</div>', page)
    }


def test_the_summary_says_what_is_at_risk_as_status_counts_it(report, in_process):  # noqa: F811
    page = report.read_text()
    status = json.loads(in_process("status", "--json")[1])
    counts = status["modules"].values()
    facts = _facts(page)
    assert facts == {
        "in the bin (restorable)": 10,  # 6 Leads, 3 Deals, 1 Contact
        "leave the bin within 7 days": 3,  # the Deals deleted 55 days ago
        "leave the bin within 14 days": 3,
        "open incidents": 1,
        "purged (captured here)": 1,
        "restored": 0,
    }
    assert facts["in the bin (restorable)"] == sum(c["recycle"] for c in counts)
    assert facts["leave the bin within 7 days"] == sum(c["expiring_within_7d"] for c in counts)
    assert facts["open incidents"] == len(status["incidents"])
    assert '<div class="health unhealthy"><b>Unhealthy</b>' in page
    # status's problem, placed as the report places incidents: below the summary
    assert "1 open mass-deletion incident (listed below, under Open incidents" in page
    assert "listed above" not in page
    last = utc(datetime.fromisoformat(status["last_success_at"]))
    assert f"Last successful run: {last}." in page


def test_the_summary_points_to_the_open_incidents_below_it():
    said = "2 open mass-deletion incidents (listed above): restore with ..."  # status's words
    problem = Problem("incident_open", said, {"count": 2, "incidents": ["a1", "b2"]})
    status = SimpleNamespace(
        modules={}, incidents=[{}, {}], last_success_at=None, healthy=False, problems=[problem]
    )
    page = summary(status, 0, NOW)
    assert (
        "<li>2 open mass-deletion incidents (listed below, under Open incidents, with the "
        "commands that restore or acknowledge each)</li>"
    ) in page


def test_the_records_leaving_the_bin_soonest_come_first(report, in_process, monkeypatch):  # noqa: F811
    rows = re.findall(
        r"<tr>((?:<td>[^<]*</td>)+)</tr>", _section(report.read_text(), "Leaving the bin soonest")
    )
    cells = [re.findall(r"<td>([^<]*)</td>", row) for row in rows]
    assert [c[1:4] for c in cells[:3]] == [
        ["Deals", f"Rec {n}", "Marco Ruiz"] for n in (2000, 2001, 2002)
    ]
    assert cells[0][0] == utc(NOW - timedelta(days=55) + timedelta(days=60))  # expires at
    assert cells[0][4] == utc(NOW - timedelta(days=55))  # deleted at
    assert len(cells) == 10 and [c[0] for c in cells] == sorted(c[0] for c in cells)

    monkeypatch.setattr(report_module, "EXPIRING_SHOWN", 4)
    assert in_process("report", "--output", "capped.html")[0] == 0
    capped = _section(Path("capped.html").read_text(), "Leaving the bin soonest")
    assert capped.count("<tr><td>") == 4 and "6 more entries in the bin expire later" in capped


def _section(page: str, heading: str) -> str:
    return page.split(f"<h2>{heading}</h2>", 1)[1].split("<h2>", 1)[0]


def test_an_open_incident_shows_its_deadline_and_the_commands_that_work(report, in_process):  # noqa: F811
    section = _section(report.read_text(), "Open incidents: restore before the deadline")
    (incident,) = re.findall(r"<b>([0-9a-f]{12})</b>: 6 Leads deleted by Patricia Boyle", section)
    assert f"<b>Deadline: {utc(NOW - timedelta(days=2) + timedelta(days=60))}</b>" in section
    restore = f"zoho-deleted restore --incident {incident}"  # the default org: no --org
    assert f"<code>{restore}</code>" in section
    assert f"<code>zoho-deleted incidents ack {incident}</code>" in section
    code, out, _ = in_process(*shlex.split(restore)[1:])  # works as printed
    assert code == 0 and "Would restore 6 entries" in out


def test_another_org_s_commands_name_it():
    incident = {
        "incident_id": "0123456789ab", "module": "Leads", "deleted_by__name": "Ann",
        "deleted_by__id": "1", "started_at": NOW, "ended_at": NOW, "records": 5, "in_bin": 5,
        "first_expiry": NOW + timedelta(days=60),
    }  # fmt: skip
    section = open_incidents([incident], "eu")
    assert "<code>zoho-deleted restore --incident 0123456789ab --org eu</code>" in section
    assert "<code>zoho-deleted incidents ack 0123456789ab --org eu</code>" in section


def test_the_page_fits_a_phone(report):
    page = report.read_text()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert page.count("<table>") == page.count('<div class="scroll"><table>') == 2
    assert page.count('"responsive": true') == len(HEADINGS)
    for axis in ("xaxis", "yaxis"):  # a title on both axes of every chart
        assert len(re.findall(f'"{axis}":{{"title":{{"text":"[^"]+"}}', page)) == len(HEADINGS)


def test_names_from_the_warehouse_are_escaped(report):
    page = report.read_text()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert html.escape(EVIL_RECORD) in page and html.escape(EVIL.name) in page


def test_with_nothing_deleted_yet_each_chart_is_a_sentence(org, in_process):  # noqa: F811
    assert in_process("run")[0] == 0
    code, _, err = in_process("report", "--output", "empty.html")
    page = Path("empty.html").read_text()
    assert code == 0, err
    assert "plotly-graph-div" not in page  # no empty axes spanning 2000-2001
    assert page.count("No deletions captured yet.") == 3
    assert "No mass-deletion incidents." in page and "Nothing in the bin." in page
    assert "Nothing leaves the bin in the next 14 days." in page
    assert "No open mass-deletion incident." in page
    assert '<div class="health healthy"><b>Healthy</b>' in page


def test_while_another_process_holds_the_warehouse_the_page_says_what_it_read(
    report,
    in_process,  # noqa: F811
    tmp_path,
):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / DUCKDB_FILE)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "held\n"
        code, _, err = in_process("report", "--output", "held.html")
    finally:
        holder.communicate("\n")
    assert code == 0, err
    page = Path("held.html").read_text()
    assert "Another process has the DuckDB file open: this reads the analyst file" in page
    assert _facts(page) == _facts(report.read_text())  # the last successful load's figures
