"""The `zoho-deleted` command: run, demo, status."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, List, Optional, Sequence

import dlt

from pipelines.errors import EXIT_OK, EXIT_PARTIAL, explain
from pipelines.orgs import org_source_args
from pipelines.status import describe, read_status
from pipelines.zoho_crm_deleted import DATASET_NAME, TABLES, RunResult, make_pipeline, run
from sources.zoho_crm import DEFAULT_ORG


def _say(line: str = "") -> None:
    print(line, flush=True)


def print_result(result: RunResult) -> None:
    if result.recovered_packages:
        _say(f"  loaded {result.recovered_packages} package(s) an interrupted run left behind")
    for table in TABLES:
        _say(f"  {table:<26}{result.row_counts.get(table, 0):>8} rows")
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(result.api_calls.items()))
    _say(f"  API calls: {result.total_calls} ({kinds or 'none'})")
    for module, error in sorted(result.failed_modules.items()):
        _say(f"  FAILED module {module}: {error.code} - {error}")
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
        _say(f"  {'module':<10}{'type':<11}{'records':>8}{'details':>9}  oldest -> newest")
        for module, kind, records, details, oldest, newest in rows:
            _say(
                f"  {module:<10}{kind:<11}{records:>8}{details:>9}  "
                f"{oldest:%Y-%m-%d %H:%M} -> {newest:%Y-%m-%d %H:%M} UTC"
            )


def _print_status(pipeline: dlt.Pipeline, org: str = DEFAULT_ORG, as_json: bool = False) -> int:
    status = read_status(pipeline, org)
    if as_json:
        print(json.dumps(status.as_json()))
    else:
        for line in describe(status):
            _say(line)
    return EXIT_OK if status.healthy else EXIT_PARTIAL


def cmd_run(args: argparse.Namespace) -> int:
    _say(f"Running pipeline into dataset {DATASET_NAME}")
    source_args = org_source_args(args.org)
    if args.reconcile:
        source_args["reconcile"] = True
    result = run(make_pipeline(args.destination, org=args.org), **source_args)
    print_result(result)
    if result.failed_modules:
        _say(
            "Some modules were not read (see FAILED above): grant the Zoho user/token read "
            "access to them, or remove them from sources.zoho_crm.modules."
        )
        return EXIT_PARTIAL
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.demo import DEMO_ORG, demo

    pipeline = demo(_say, print_result)
    _show_tables(pipeline)
    _say("Status:")
    _print_status(pipeline, DEMO_ORG)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    pipeline = make_pipeline(args.destination, org=args.org)
    return _print_status(pipeline, args.org, as_json=args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoho-deleted",
        description="Capture Zoho CRM's deleted records into DuckDB (pipeline zoho_crm_deleted).",
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
        "into the DuckDB file (zoho_crm_deleted.duckdb unless configured; recreated each time, "
        "never when it holds data the demo did not load) and show what landed.",
    )
    demo_parser.set_defaults(handler=cmd_demo)
    status_parser = commands.add_parser(
        "status",
        help="what is captured per module, and when the last run succeeded",
        description="Print, per module, records in the bin, permanent, expiring within 7 "
        "days, captured without details and restored; when the last successful run was; and "
        "what is at risk. Exit code 0 when healthy, 1 when not (no successful run yet, the "
        "last one older than max_run_gap, or the last run failed for a module).",
    )
    status_parser.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout instead"
    )
    status_parser.set_defaults(handler=cmd_status)
    for sub in (run_parser, status_parser):
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
    for sub in (run_parser, demo_parser, status_parser):
        sub.add_argument(
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,  # keeps a --verbose given before the command
            help="log more and show tracebacks",
        )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose:
        logging.getLogger("dlt").setLevel(logging.INFO)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("interrupted; the next run completes what this one started", file=sys.stderr)
        return 130
    except Exception as error:  # one line for the user; --verbose shows the traceback
        if args.verbose:
            raise
        code, message = explain(error)
        print(f"zoho-deleted: {message}", file=sys.stderr)
        return code


def entry(argv: Optional[List[str]] = None) -> Any:  # pragma: no cover - console script
    sys.exit(main(argv))
