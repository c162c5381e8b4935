"""The `zoho-deleted` command: run, demo, status."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, List, Optional, Sequence

import dlt

from pipelines.errors import EXIT_OK, EXIT_PARTIAL, explain
from pipelines.status import read_status
from pipelines.zoho_crm_deleted import DATASET_NAME, TABLES, RunResult, make_pipeline, run


def _say(line: str = "") -> None:
    print(line, flush=True)


def print_result(result: RunResult) -> None:
    for table in TABLES:
        _say(f"  {table:<26}{result.row_counts.get(table, 0):>8} rows")
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(result.api_calls.items()))
    _say(f"  API calls: {result.total_calls} ({kinds or 'none'})")
    for module, error in sorted(result.failed_modules.items()):
        _say(f"  FAILED module {module}: {error.code} - {error}")


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


def _print_status(pipeline: dlt.Pipeline) -> int:
    status = read_status(pipeline)
    if status.last_success_at is None:
        _say("No successful run yet: run `zoho-deleted run`.")
        return EXIT_PARTIAL
    _say(f"Last successful run: {status.last_success_at:%Y-%m-%d %H:%M:%S %Z}")
    if status.last_run_failed_modules:
        _say(f"Last run failed for: {status.last_run_failed_modules}")
    _say(f"  {'module':<16}{'recycle':>9}{'permanent':>11}")
    for module, counts in sorted(status.modules.items()):
        _say(f"  {module:<16}{counts['recycle']:>9}{counts['permanent']:>11}")
    return EXIT_PARTIAL if status.last_run_failed_modules else EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    _say(f"Running pipeline into dataset {DATASET_NAME}")
    result = run(make_pipeline())
    print_result(result)
    if result.failed_modules:
        _say(
            "Some modules were not read (see FAILED above): grant the Zoho user/token read "
            "access to them, or remove them from sources.zoho_crm.modules."
        )
        return EXIT_PARTIAL
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.demo import demo

    pipeline = demo(_say, print_result)
    _show_tables(pipeline)
    _say("Status:")
    _print_status(pipeline)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    return _print_status(make_pipeline())


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
    run_parser.set_defaults(handler=cmd_run)
    demo_parser = commands.add_parser(
        "demo",
        help="run against the built-in Zoho stand-in",
        description="Start the Zoho stand-in on a free loopback port, run the pipeline twice "
        "into zoho_crm_demo.duckdb (recreated each time) and show what landed.",
    )
    demo_parser.set_defaults(handler=cmd_demo)
    status_parser = commands.add_parser(
        "status",
        help="what is captured per module, and when the last run succeeded",
        description="Print, per module, records in the bin and permanently deleted, and when "
        "the last successful run was. Exit code 0 when the last run succeeded.",
    )
    status_parser.set_defaults(handler=cmd_status)
    for sub in (run_parser, demo_parser, status_parser):
        sub.add_argument("--verbose", action="store_true", help="log more and show tracebacks")
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
