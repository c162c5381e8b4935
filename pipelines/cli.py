"""The `zoho-deleted` command: run, demo, status."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional, Sequence, Union

import dlt

from pipelines.analyst_file import AnalystFileError
from pipelines.errors import (
    EXIT_BACKLOG,
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_PARTIAL,
    explain,
    malformed,
    refused,
)
from pipelines.forget import forget
from pipelines.incidents import describe_incident, incident_settings, read_incidents
from pipelines.ledger import acknowledge
from pipelines.names import DATASET_NAME, DUCKDB_FILE, PIPELINE_NAME
from pipelines.orgs import org_source_args, remember_configured_secrets
from pipelines.reading import NothingPublishedError, Reading, open_reading
from pipelines.report import DEFAULT_OUTPUT, plotly, write_report
from pipelines.restore import Selection, restore
from pipelines.status import Problem, Status, describe, max_run_gap, read_status
from pipelines.zoho_crm_deleted import TABLES, RunResult, make_pipeline, run
from sources.zoho_crm import DEFAULT_ORG, org_name
from sources.zoho_crm.redact import install_log_redaction, redacted_output, redacted_traceback

REJECTED_SHOWN = 20  # entries set aside named one per line; the rest are in the table


def _say(line: str = "") -> None:
    print(line, flush=True)


def print_result(result: RunResult) -> None:
    if result.recovered_packages:
        _say(f"  loaded {result.recovered_packages} package(s) an interrupted run left behind")
    for table in TABLES:
        landed, received = result.row_counts.get(table, 0), result.received_counts.get(table, 0)
        merged = received - landed  # rows read twice in the run, merged into one
        note = f" ({received} read, {merged} merged as repeats)" if merged > 0 else ""
        _say(f"  {table:<26}{landed:>8} rows{note}")
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(result.api_calls.items()))
    _say(f"  API calls: {result.total_calls} ({kinds or 'none'})")
    for module, error in sorted(result.failed_modules.items()):
        _say(f"  FAILED module {module}: {error.code} - {error}")
    for name, line in sorted(result.malformed_modules.items()):
        _say(f"  FAILED {name}: {line}")
    for line in result.rejected[:REJECTED_SHOWN]:
        _say(f"  REJECTED {line}")
    if len(result.rejected) > REJECTED_SHOWN:
        _say(f"  REJECTED {len(result.rejected) - REJECTED_SHOWN} more: see table rejected_records")
    for name, error in sorted(result.refused_lists.items()):
        _say(f"  FAILED related list {name}: {error.code} - {error}")
    if result.related_stop:
        _say(f"  related records stopped: {result.related_stop}; the next runs go on")
    if result.analyst_file:
        _say(
            f"  analyst file {result.analyst_file}: {result.analyst_file_bytes / 1e6:.1f} MB, "
            f"published in {result.analyst_publish_s:.2f} s"
        )


def _show_tables(pipeline: dlt.Pipeline) -> None:
    from pipelines.demo import SAMPLE_QUERY

    with pipeline.sql_client() as client:
        _say(f"\nTables in dataset {DATASET_NAME}:")
        for table in TABLES:
            (count,) = client.execute_sql(f"SELECT count(*) FROM {DATASET_NAME}.{table}")[0]
            _say(f"  {table:<26}{count:>8} rows")
        _say(f"\nSample query:\n{SAMPLE_QUERY}\n")
        rows = client.execute_sql(SAMPLE_QUERY)
        header = f"{'module':<10}{'type':<11}{'records':>8}{'details':>9}{'restored':>10}"
        _say(f"  {header}  oldest -> newest")
        for module, kind, records, details, restored, oldest, newest in rows:
            _say(
                f"  {module:<10}{kind:<11}{records:>8}{details:>9}{restored:>10}  "
                f"{oldest:%Y-%m-%d %H:%M} -> {newest:%Y-%m-%d %H:%M} UTC"
            )
        _say(
            "  (records: still in Zoho's bin (recycle) or purged (permanent), as status counts "
            "them; restored: back in Zoho, counted apart)"
        )


def _print_status(
    source: Union[dlt.Pipeline, Reading], org: str = DEFAULT_ORG, as_json: bool = False
) -> int:
    return _show_status(read_status(source, org), as_json)


def _show_status(status: Status, as_json: bool) -> int:
    if as_json:
        print(json.dumps(status.as_json()))
    else:
        for line in describe(status):
            _say(line)
    return EXIT_OK if status.healthy else EXIT_PARTIAL


@contextmanager
def _reading(args: argparse.Namespace, say: bool = True) -> Iterator[Reading]:
    """The warehouse as the read-only commands read it (`pipelines.reading`); `say`: print
    first that the analyst file stands in for a run's file, when it does. Settings are
    checked first: a bad one is the line to see, not a missing file."""
    incident_settings()
    with open_reading(args.destination, args.org) as source:
        note = source.note()
        if note and say:
            _say(note)
        yield source


def cmd_run(args: argparse.Namespace) -> int:
    _say(f"Running pipeline into dataset {DATASET_NAME}")
    incident_settings()  # a bad setting stops the run before it starts, not after the load
    source_args = org_source_args(args.org)
    if args.reconcile:
        source_args["reconcile"] = True
    unpublished: Optional[AnalystFileError] = None
    try:
        result = run(make_pipeline(args.destination, org=args.org, progress=True), **source_args)
    except AnalystFileError as error:
        if error.result is None:
            raise
        result, unpublished = error.result, error
    print_result(result)
    refusal = refused(result.modules, {**result.failed_modules, **result.refused_lists})
    bad = malformed(list(result.malformed_modules), result.rejected)
    said = [answer for answer in (refusal, bad) if answer is not None]
    for _, line in said:
        print(f"zoho-deleted: {line}", file=sys.stderr)
    if unpublished is not None:
        print(f"zoho-deleted: {explain(unpublished)[1]}", file=sys.stderr)
    if said:
        return max(code for code, _ in said)
    if unpublished is not None:
        return EXIT_PARTIAL
    if result.related_stop:
        return EXIT_BACKLOG
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.demo import DEMO_ORG, act_on, demo

    pipeline = demo(_say, print_result)
    _show_tables(pipeline)
    act_on(pipeline, _say)
    _say("Status:")
    _print_status(pipeline, DEMO_ORG)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    max_run_gap()
    try:
        with _reading(args, say=not args.json) as source:
            return _print_status(source, args.org, as_json=args.json)
    except NothingPublishedError as busy:  # the first run is loading: nothing to read, not healthy
        loading = Problem("first_run_loading", str(busy))
        nothing = Status(args.org, None, None, healthy=False, problems=[loading])
        return _show_status(nothing, args.json)


def cmd_incidents(args: argparse.Namespace) -> int:
    if args.action == "ack":
        if not args.incident_id:
            print("zoho-deleted: incidents ack needs an INCIDENT_ID", file=sys.stderr)
            return EXIT_CONFIG
        pipeline = make_pipeline(args.destination, org=args.org)
        before = acknowledge(pipeline, args.org, args.incident_id)
        again = f" again (reviewed by {before['reviewed_by']})" if before["reviewed_at"] else ""
        _say(f"Incident {args.incident_id} marked reviewed{again}; status no longer alerts on it.")
        return EXIT_OK
    with _reading(args) as source:
        incidents = read_incidents(source, args.org)
    if not incidents:
        _say(f"No mass-deletion incidents in org {args.org}.")
    for incident in incidents:
        _say(describe_incident(incident))
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    chosen = Selection(
        incident=args.incident,
        module=args.module,
        deleted_by=args.deleted_by,
        since=args.since,
        until=args.until,
        ids=args.ids,
    )
    if args.yes:
        pipeline = make_pipeline(args.destination, org=args.org)
        return restore(pipeline, args.org, chosen, args.yes, _say)
    with _reading(args) as source:  # a dry run only reads
        return restore(source, args.org, chosen, args.yes, _say)


def cmd_forget(args: argparse.Namespace) -> int:
    pipeline = make_pipeline(args.destination, org=args.org)
    return forget(pipeline, args.org, args.module, args.ids, args.yes, _say)


def cmd_report(args: argparse.Namespace) -> int:
    plotly()  # without the extra, that is the line to see
    with _reading(args) as source:
        path = write_report(source, args.org, args.output)
    _say(f"Report written to {path}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoho-deleted",
        description=f"Capture Zoho CRM's deleted records into DuckDB (pipeline {PIPELINE_NAME}, "
        f"dataset {DATASET_NAME}).",
    )
    parser.add_argument("--verbose", action="store_true", help="log more and show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run_parser = commands.add_parser(
        "run",
        help="read what changed in Zoho and load it",
        description="Read what changed in Zoho CRM since the last run and load it. Configuration "
        "comes from .dlt/config.toml, .dlt/secrets.toml or SOURCES__ZOHO_CRM__* variables.",
    )
    run_parser.add_argument(
        "--reconcile",
        action="store_true",
        help="also run the reconciliation pass now (full bin listing; finds restores)",
    )
    run_parser.set_defaults(handler=cmd_run)
    demo_parser = commands.add_parser(
        "demo",
        help="run against the built-in Zoho stand-in",
        description="Start the Zoho stand-in on a free loopback port, run the pipeline twice "
        f"into the DuckDB file ({DUCKDB_FILE} unless configured; recreated each time, "
        "never when it holds data the demo did not load) and show what landed.",
    )
    demo_parser.set_defaults(handler=cmd_demo)
    status_parser = commands.add_parser(
        "status",
        help="what is captured per module, and when the last run succeeded",
        description="Print, per module, records in the bin, permanent, expiring within 7 "
        "days, captured without details and restored; when the last successful run was; and "
        "what is at risk. Exit code 0 when healthy, 1 when not (no successful run yet, the "
        "last one older than max_run_gap, the last run failed for a module or set aside "
        "entries Zoho sent malformed (table rejected_records), a mass-deletion incident is "
        "open: see `zoho-deleted incidents`, or the analyst file is older than the last "
        "successful load).",
    )
    status_parser.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout instead"
    )
    status_parser.set_defaults(handler=cmd_status)
    incidents_parser = commands.add_parser(
        "incidents",
        help="list mass-deletion incidents, or acknowledge one",
        description="List mass-deletion incidents, latest first: deletions by one user in one "
        "module with no gap longer than incident_gap (default 10m), at least "
        "incident_threshold (default 100) records. `incidents ack INCIDENT_ID` marks one "
        "reviewed (who and when, in table incident_reviews), so status stops alerting on it.",
    )
    incidents_parser.add_argument("action", nargs="?", choices=["ack"], help="ack: mark reviewed")
    incidents_parser.add_argument("incident_id", nargs="?", metavar="INCIDENT_ID")
    incidents_parser.set_defaults(handler=cmd_incidents)
    restore_parser = commands.add_parser(
        "restore",
        help="restore entries from Zoho's recycle bin (a dry run unless --yes)",
        description="Select bin entries the warehouse holds, by --incident, or by --module, "
        "--deleted-by, --since, --until together, or by --ids. Without --yes nothing changes: "
        "it prints what it would restore (exit 0). With --yes it asks Zoho to restore them, "
        "at most 200 per call, and records each outcome in table restore_requests: exit 0 when "
        "every one was restored or scheduled, 1 when some failed, 2 for a bad selection, 3 "
        "when the token lacks the scope ZohoCRM.settings.recycle_bin.UPDATE, 4 when Zoho "
        "kept failing.",
    )
    restore_parser.add_argument("--incident", metavar="INCIDENT_ID", help="an incident's entries")
    restore_parser.add_argument("--module", help="a module API name, e.g. Leads")
    restore_parser.add_argument(
        "--deleted-by", metavar="NAME_OR_ID", help="the deleting user's name or id"
    )
    restore_parser.add_argument(
        "--since", metavar="TIME", help="deleted at or after (ISO 8601; UTC without offset)"
    )
    restore_parser.add_argument("--until", metavar="TIME", help="deleted before (ISO 8601)")
    restore_parser.add_argument("--ids", metavar="ID[,ID...]", help="record ids")
    restore_parser.add_argument(
        "--yes", action="store_true", help="restore for real (without it: a dry run)"
    )
    restore_parser.set_defaults(handler=cmd_restore)
    report_parser = commands.add_parser(
        "report",
        help="write one self-contained HTML report",
        description="Write one HTML file that opens offline: deletions per day by module and "
        "by user, incidents on a timeline, what leaves the bin in the next 14 days, and "
        "capture coverage per module. Needs the extra: pip install '.[report]'.",
    )
    report_parser.add_argument(
        "--output", default=DEFAULT_OUTPUT, help=f"the file to write (default {DEFAULT_OUTPUT})"
    )
    report_parser.set_defaults(handler=cmd_report)
    forget_parser = commands.add_parser(
        "forget",
        help="erase records on request: their names, related records and values (a dry run "
        "unless --yes)",
        description="Erase what the warehouse holds of records a person asked to have erased: "
        "their names and the names of their deleter, creator and owner, their related records, "
        "captured values and set-aside entries, in every table (and, on DuckDB, in the analyst "
        "file, published again). Their ids and deletion times stay, and a tombstone in table "
        "erasures keeps later runs from storing anything personal of them again. Without --yes "
        "nothing changes: it prints what it would erase (exit 0). Exit 2 for an unknown module, "
        "no ids or an id the warehouse does not hold; 5 while a run holds the pipeline.",
    )
    forget_parser.add_argument("--module", help="the records' module API name, e.g. Leads")
    forget_parser.add_argument("--ids", metavar="ID[,ID...]", help="record ids")
    forget_parser.add_argument(
        "--yes", action="store_true", help="erase for real (without it: a dry run)"
    )
    forget_parser.set_defaults(handler=cmd_forget)
    acting = (incidents_parser, restore_parser, report_parser, forget_parser)
    for sub in (run_parser, status_parser, *acting):
        sub.add_argument(
            "--org",
            default=DEFAULT_ORG,
            help="a Zoho org configured under [sources.zoho_crm.orgs.ORG] (default: the one "
            "in [sources.zoho_crm])",
        )
        sub.add_argument(
            "--destination",
            default=None,
            help="any dlt destination (duckdb, postgres, motherduck, snowflake, ...), "
            "configured as dlt configures it; default duckdb",
        )
    for sub in (run_parser, demo_parser, status_parser, *acting):
        sub.add_argument(
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,  # keeps a --verbose given before the command
            help="log more and show tracebacks",
        )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run a command; what it prints and logs is redacted (`sources.zoho_crm.redact`)."""
    args = build_parser().parse_args(argv)
    install_log_redaction()
    with redacted_output():
        remember_configured_secrets()
        return _handle(args)


def _handle(args: argparse.Namespace) -> int:
    if args.verbose:
        logging.getLogger("dlt").setLevel(logging.INFO)
    try:
        if hasattr(args, "org"):
            args.org = org_name(args.org)  # a bad name is exit 2 on every command, nothing made
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("interrupted; the next run completes what this one started", file=sys.stderr)
        return 130
    except Exception as error:  # one line and its exit code; --verbose adds the traceback
        if args.verbose:
            print(redacted_traceback(error), end="", file=sys.stderr)
        code, message = explain(error)
        print(f"zoho-deleted: {message}", file=sys.stderr)
        return code


def entry(argv: Optional[List[str]] = None) -> Any:  # pragma: no cover - console script
    sys.exit(main(argv))
