"""`zoho-deleted report`: one HTML file that opens offline, and its charts render in a browser."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import timedelta

import pytest
from conftest import NOW
from test_cli import in_process  # noqa: F401  (the fixture)
from test_incidents import MARCO, PATRICIA, burst

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
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


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium to open the report in (Debian: apt-get install chromium)",
)
def test_the_charts_render_in_a_headless_browser(report, tmp_path):
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    # Each plotly chart draws into its own <svg class="main-svg">; bars and lines are traces.
    assert dom.count('class="main-svg"') >= 2 * len(HEADINGS)
    assert dom.count('class="trace bars"') >= 4
    assert re.search(r'class="trace scatter', dom)  # the incident on its timeline
