"""What runs, `status` and the report say of record values: rows landed per module, calls
spent, a pass that stopped short and how to catch up, where each module's pass stands, and how
many deleted records have their values (docs/record-values-status.md)."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from pathlib import Path

import duckdb
from conftest import DUCKDB_FILE, NOW, delete, run_once
from test_cli import in_process  # noqa: F401 - a fixture
from test_report import NO_CHROMIUM, PHONE, PROBE, _dom, _section

from pipelines.errors import EXIT_BACKLOG, EXIT_OK
from pipelines.status import read_status
from zoho_standin.records import add_live_records

DS = "zoho_crm_deleted"
DEALS = [f"77{n:04d}" for n in range(11)]
# Deals read two a page, three calls a run: a first pass of 11 records takes two runs
VALUES = {
    "SOURCES__ZOHO_CRM__RECORD_VALUES": '["Deals"]',
    "SOURCES__ZOHO_CRM__PER_PAGE": "2",
    "SOURCES__ZOHO_CRM__VALUES_CALLS_PER_RUN": "3",
}
BUDGET_LINE = (
    "  record values stopped short: this run's values_calls_per_run budget is spent; Deals go "
    "on in the next runs (to catch up sooner, raise values_calls_per_run or run more often)"
)


def runs(tmp_path: Path) -> list:
    with duckdb.connect(str(tmp_path / DUCKDB_FILE), read_only=True) as db:
        return db.sql(
            f"SELECT values_rows, values_calls, values_stop, values_progress FROM {DS}.runs "
            "ORDER BY finished_at"
        ).fetchall()


def status_json(in_process) -> dict:  # noqa: F811
    code, out, err = in_process("status", "--json")
    assert code == EXIT_OK, out + err  # a values backlog never makes status unhealthy
    return json.loads(out)


def notices(status: dict) -> dict:
    return {n["code"]: n for n in status["notices"]}


def test_a_first_pass_over_runs_is_counted_shown_and_completes(org, server, in_process, tmp_path):  # noqa: F811, E501
    add_live_records(org.live, "Deals", DEALS, NOW)
    delete(org, "Deals", "990", NOW - timedelta(days=1))  # deleted before any capture

    code, out, _ = in_process("run", **VALUES)
    assert code == EXIT_BACKLOG  # loaded; values left for the next runs, as related records
    assert re.search(r"^  values_deals +6 rows$", out, re.M), out
    assert BUDGET_LINE in out.splitlines() and ", values 3" in out
    rows, calls, stop, progress = runs(tmp_path)[-1]
    assert (rows, calls, stop) == (6, 3, "this run's values_calls_per_run budget is spent")
    deals = json.loads(progress)["Deals"]
    assert deals["rows"] == 6 and deals["first_pass_complete"] is False
    assert deals["pass"]["runs"] == 1 and deals["pass"]["records_read"] == 6

    status = status_json(in_process)
    deals = status["record_values"]["Deals"]
    assert (deals["with_values"], deals["deleted_before_capture"]) == (0, 1)
    assert deals["pass"]["records_read"] == 6 and deals["pass"]["advanced"] is True
    reached = deals["pass"]["reached"]  # the newest Modified_Time read: the 6th record's
    assert reached == org.live.records["Deals"][DEALS[5]]["Modified_Time"].isoformat()
    assert notices(status)["values_backlog"]["modules"] == ["Deals"]
    assert "values_pass_stalled" not in notices(status)
    assert status["values_stop"] == "this run's values_calls_per_run budget is spent"
    text = in_process("status")[1]
    assert re.search(
        r"^  Deals: 0 deleted records with their last values, 1 deleted before its values "
        r"were captured; first pass going on since .* UTC \(1 run\(s\), 6 records read, up to "
        r"Modified_Time .* UTC\)$",
        text,
        re.M,
    ), text

    # The day's credits down to the reserve: the deleted lists land, the values pass waits.
    server.daily_allowance, server.credits_left = 1_000, 100
    code, out, _ = in_process("run", SOURCES__ZOHO_CRM__API_CREDITS_RESERVE="500", **VALUES)
    assert code == EXIT_BACKLOG
    assert "api_credits_reserve (500); Deals go on in the next runs (once Zoho's daily " in out
    assert re.search(r"^  values_deals +0 rows$", out, re.M), out
    status = status_json(in_process)
    stalled = notices(status)["values_pass_stalled"]
    assert stalled["modules"] == ["Deals"] and "got no further in the last run" in stalled["text"]
    assert status["record_values"]["Deals"]["pass"]["runs"] == 2

    server.daily_allowance = server.credits_left = None
    code, out, _ = in_process("run", **VALUES)
    assert code == EXIT_OK and "record values stopped short" not in out
    assert re.search(r"^  values_deals +5 rows$", out, re.M), out
    status = status_json(in_process)
    deals = status["record_values"]["Deals"]
    assert deals["first_pass_complete"] is True and deals["pass"] is None
    assert not {"values_backlog", "values_pass_stalled"} & set(notices(status))
    assert "first pass complete; changes read up to Modified_Time" in in_process("status")[1]
    assert runs(tmp_path)[-1][:3] == (5, 3, None)

    delete(org, "Deals", DEALS[0], NOW)  # captured, then deleted: its values stay
    assert in_process("run", **VALUES)[0] == EXIT_OK
    deals = status_json(in_process)["record_values"]["Deals"]
    assert (deals["with_values"], deals["deleted_before_capture"]) == (1, 1)


def test_status_reads_a_runs_table_from_before_values_were_counted(org, server, pipeline):
    run_once(server, pipeline, record_values=["Leads"])
    delete(org, "Leads", "100", NOW)
    run_once(server, pipeline, record_values=["Leads"])
    with pipeline.sql_client() as client:  # as a warehouse of the version before has it
        for column in ("values_rows", "values_calls", "values_stop", "values_progress"):
            client.execute_sql(f"ALTER TABLE {DS}.runs DROP COLUMN {column}")
    status = read_status(pipeline)
    assert status.healthy and status.record_values["Leads"]["deleted_before_capture"] == 1
    assert status.record_values["Leads"]["first_pass_complete"] is None  # not said by a run


def values_report(org, in_process) -> str:  # noqa: F811
    add_live_records(org.live, "Deals", DEALS, NOW)
    delete(org, "Deals", "990", NOW - timedelta(days=1))
    assert in_process("run", **VALUES)[0] == EXIT_BACKLOG
    delete(org, "Deals", DEALS[0], NOW)
    assert in_process("run", **VALUES)[0] == EXIT_OK
    delete(org, "Deals", DEALS[1], NOW)  # after the last run: not captured as deleted yet
    code, _, err = in_process("report", "--output", "values.html", **VALUES)
    assert code == 0, err
    return Path("values.html").read_text()


def test_the_report_shows_values_coverage_and_backlog(org, in_process):  # noqa: F811
    page = values_report(org, in_process)
    section = _section(page, "Record values per module")
    cells = re.findall(r"<tr>(.*?)</tr>", section)[1]
    assert re.fullmatch(
        r'<td>Deals</td><td class="num">1</td><td class="num">1</td><td>first pass complete; '
        r"changes read up to Modified_Time [^<]+ UTC</td>",
        cells,
    ), cells
    assert '"last values kept"' in section and "deleted before their values were captured" in (
        section
    )
    assert section.count("plotly-graph-div") == 1


def test_the_report_names_the_setting_when_no_values_are_captured(org, in_process):  # noqa: F811
    assert in_process("run")[0] == EXIT_OK
    assert in_process("report", "--output", "plain.html")[0] == 0
    section = _section(Path("plain.html").read_text(), "Record values per module")
    assert "No record values captured: list modules in <code>record_values</code>" in section
    assert "plotly-graph-div" not in section


def test_a_values_backlog_is_a_note_in_the_report(org, in_process):  # noqa: F811
    add_live_records(org.live, "Deals", DEALS, NOW)
    assert in_process("run", **VALUES)[0] == EXIT_BACKLOG
    assert in_process("report", "--output", "backlog.html", **VALUES)[0] == 0
    section = _section(Path("backlog.html").read_text(), "Record values per module")
    assert "first pass going on since" in section and "6 records read" in section
    assert '<p class="note">record values of Deals are still being read' in section
    assert "plotly-graph-div" not in section  # nothing deleted in Deals: no empty chart


@NO_CHROMIUM
def test_the_values_chart_renders_and_fits_a_phone(org, in_process, tmp_path):  # noqa: F811
    page = values_report(org, in_process)
    report = tmp_path / "values.html"
    dom = _dom(report.as_uri(), tmp_path / "chromium")
    values = dom.split("<h2>Record values per module</h2>", 1)[1]
    assert 'class="main-svg"' in values and 'class="trace bars"' in values
    phone = tmp_path / "phone"
    phone.mkdir()
    (phone / "report.html").write_text(page.replace("</body>", PROBE + "</body>"))
    (phone / "index.html").write_text(PHONE)
    dom = _dom((phone / "index.html").as_uri(), tmp_path / "chromium", width=500)
    seen = json.loads(html.unescape(re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)[1]))
    assert seen["scrollWidth"] == 390 and seen["overflowing"] == [], seen
    assert "last values kept" in seen["legends"]
    assert all(width <= 370 and height >= 150 for width, height in seen["plots"])
