"""The `zoho-deleted` command: run, demo, status."""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import re
import shutil
import sys
import textwrap
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Dict, Iterator, List, NoReturn, Optional, Sequence, Union

import dlt
from dlt.common.destination.exceptions import UnknownDestinationModule
from dlt.common.destination.reference import Destination, DestinationReference

from pipelines.analyst_file import AnalystFileError
from pipelines.config import command_settings
from pipelines.errors import (
    EXIT_BACKLOG,
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_PARTIAL,
    explain,
    malformed,
    refused,
)
from pipelines.exceptions import PipelineConfigError
from pipelines.forget import forget
from pipelines.incidents import describe_incident, read_incidents
from pipelines.ledger import acknowledge
from pipelines.names import DATASET_NAME, DUCKDB_FILE, PIPELINE_NAME
from pipelines.orgs import org_source_args, remember_configured_secrets
from pipelines.reading import NothingPublishedError, Reading, open_reading
from pipelines.recreate import TRIGGERS
from pipelines.recreate_send import Recreation
from pipelines.report import DEFAULT_OUTPUT, plotly, write_report
from pipelines.restore import TIME_FORMS, Selection, parse_instant, restore
from pipelines.run import TABLES, RunResult, make_pipeline, run
from pipelines.status import Problem, Status, describe, read_status
from pipelines.values_progress import catch_up, unfinished
from sources.zoho_crm import DEFAULT_ORG, org_name
from sources.zoho_crm.redact import install_log_redaction, redacted_output, redacted_traceback

REJECTED_SHOWN = 20  # entries set aside named one per line; the rest are in the table


def _say(line: str = "") -> None:
    print(line, flush=True)


def print_result(result: RunResult) -> None:
    if result.recovered_packages:
        _say(f"  loaded {result.recovered_packages} package(s) an interrupted run left behind")
    rows = [(t, result.row_counts.get(t, 0), result.received_counts.get(t, 0)) for t in TABLES]
    values = sorted(result.values_rows.items())
    rows += [(t, n, result.values_received.get(t, 0)) for t, n in values]
    for table, landed, received in rows:
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
    if result.values_stop:
        behind = ", ".join(unfinished(result.values_progress))
        _say(
            f"  record values stopped short: {result.values_stop}; {behind} go on in the next "
            f"runs ({catch_up(result.values_stop)})"
        )
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
    command_settings().incident_rule()
    with open_reading(args.destination, args.org) as source:
        note = source.note()
        if note and say:
            _say(note)
        yield source


def cmd_run(args: argparse.Namespace) -> int:
    _say(f"Running pipeline into dataset {DATASET_NAME}")
    command_settings().incident_rule()  # a bad one stops the run before it starts, not after
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
    if result.related_stop or result.values_stop:
        return EXIT_BACKLOG
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.demo import DEMO_ORG, ON_DEMO, act_on, demo, recreate_purged_lead

    pipeline = demo(_say, print_result)
    _show_tables(pipeline)
    act_on(pipeline, _say)
    _say(f"Status (zoho-deleted status {ON_DEMO}):")
    _print_status(pipeline, DEMO_ORG)
    recreate_purged_lead(pipeline, _say)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    command_settings().run_gap()
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
    if (args.trigger or args.relink) and not args.recreate:
        raise PipelineConfigError("--trigger and --relink go with --recreate: add --recreate")
    recreate = Recreation(args.trigger, args.relink, _say) if args.recreate else None
    if args.yes:
        pipeline = make_pipeline(args.destination, org=args.org)
        return restore(pipeline, args.org, chosen, args.yes, _say, recreate)
    with _reading(args) as source:  # a dry run only reads
        return restore(source, args.org, chosen, args.yes, _say, recreate)


def cmd_forget(args: argparse.Namespace) -> int:
    pipeline = make_pipeline(args.destination, org=args.org)
    return forget(pipeline, args.org, args.module, args.ids, args.yes, _say)


def cmd_report(args: argparse.Namespace) -> int:
    plotly()  # without the extra, that is the line to see
    with _reading(args) as source:
        path = write_report(source, args.org, args.output)
    _say(f"Report written to {path}")
    return EXIT_OK


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors show the command's own usage and suggest the closest
    option, command or choice to a mistyped one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.words: List[str] = []  # the options, commands and choices it takes
        self.commands: Dict[str, Parser] = {}
        self.subparsers: Any = None  # argparse's action holding the commands, once there are
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.words += [*action.option_strings, *(action.choices or ())]
        return action

    def add_command(self, name: str, about: str, examples: str, **kwargs: Any) -> Parser:
        """A command with its description filled to the terminal and its examples below."""
        if self.subparsers is None:
            self.subparsers = self.add_subparsers(dest="command", required=True, metavar="COMMAND")
        command = self.subparsers.add_parser(
            name, description=_fill(about), epilog=_examples(examples), **kwargs
        )
        self.commands[name] = command
        self.words.append(name)
        return command

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:  # said by the command they were given to, not by the top level
            where = self.commands.get(getattr(parsed, "command", None) or "", self)
            where.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}{self._closest(message)}\n")

    def _closest(self, message: str) -> str:
        """'; did you mean X?' for the first mistyped word in argparse's `message`."""
        chosen = re.search(r"invalid choice: '([^']*)'", message)
        given = [chosen[1]] if chosen else []
        if message.startswith("unrecognized arguments: "):
            given = message.split(": ", 1)[1].split()
        for word in given:
            close = difflib.get_close_matches(word.split("=")[0], self.words, n=1, cutoff=0.6)
            if close:
                return f"; did you mean {close[0]}?"
        return ""


def _fill(text: str) -> str:
    width = max(40, min(shutil.get_terminal_size().columns, 100) - 2)
    return textwrap.fill(text, width)


def _examples(text: str) -> str:
    return "examples:\n" + textwrap.indent(textwrap.dedent(text).strip("\n"), "  ")


def _instant(value: str) -> str:
    """A --since / --until value, checked as the command line is read."""
    try:
        parse_instant("", value)
    except PipelineConfigError as error:
        raise argparse.ArgumentTypeError(str(error).strip()) from None
    return value


def _triggers(value: str) -> List[str]:
    chosen = [t.strip() for t in value.split(",") if t.strip()]
    unknown = [t for t in chosen if t not in TRIGGERS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"{value!r}: give a comma-separated list of {', '.join(TRIGGERS)}"
        )
    return list(dict.fromkeys(chosen))


def _destination(value: str) -> str:
    """A --destination value dlt can resolve: one of its destinations or a named one."""
    try:
        Destination.from_reference(value)
    except UnknownDestinationModule:
        known = sorted(ref.rsplit(".", 1)[-1] for ref in DestinationReference.DESTINATIONS)
        close = difflib.get_close_matches(value, known, n=1)
        meant = f" (did you mean {close[0]}?)" if close else ""
        raise argparse.ArgumentTypeError(
            f"unknown destination {value!r}{meant}: give one of dlt's ({', '.join(known)}) or "
            f"a name configured with destination_type under [destination.{value}]"
        ) from None
    except Exception:  # noqa: BLE001 - anything else is the command's to report, as it reads it
        pass
    return value


def _version() -> str:
    try:
        return version("zoho-deleted")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> Parser:
    parser = Parser(
        prog="zoho-deleted",
        description=_fill(
            f"Capture Zoho CRM's deleted records into DuckDB (pipeline {PIPELINE_NAME}, "
            f"dataset {DATASET_NAME})."
        ),
        epilog=_examples(
            """
            zoho-deleted demo                       try it against the built-in Zoho stand-in
            zoho-deleted run                        load what changed in Zoho since the last run
            zoho-deleted status                     what is captured; exit 1 when unhealthy
            zoho-deleted COMMAND --help             a command's options and examples
            """
        ),
    )
    parser.add_argument("--verbose", action="store_true", help="log more and show tracebacks")
    parser.add_argument("--version", action="version", version=f"zoho-deleted {_version()}")
    run_parser = parser.add_command(
        "run",
        "Read what changed in Zoho CRM since the last run and load it. Configuration "
        "comes from .dlt/config.toml, .dlt/secrets.toml or SOURCES__ZOHO_CRM__* variables.",
        """
        zoho-deleted run                  what changed since the last run
        zoho-deleted run --reconcile      and the full pass over the bin now (finds restores)
        zoho-deleted run --org emea       the org configured under [sources.zoho_crm.orgs.emea]
        """,
        help="read what changed in Zoho and load it",
    )
    run_parser.add_argument(
        "--reconcile",
        action="store_true",
        help="also run the reconciliation pass now (full bin listing; finds restores)",
    )
    run_parser.set_defaults(handler=cmd_run)
    demo_parser = parser.add_command(
        "demo",
        "Start the Zoho stand-in on a free loopback port, run the pipeline twice "
        f"into the DuckDB file ({DUCKDB_FILE} unless configured; recreated each time, "
        "never when it holds data the demo did not load) and show what landed. Its rows are "
        "org demo: the other commands read them with --org demo.",
        """
        zoho-deleted demo
        zoho-deleted status --org demo    the demo's status again, afterwards
        """,
        help="run against the built-in Zoho stand-in",
    )
    demo_parser.set_defaults(handler=cmd_demo)
    status_parser = parser.add_command(
        "status",
        "Print, per module, records in the bin, permanent, expiring within 7 "
        "days, captured without details and restored; when the last successful run was; and "
        "what is at risk. Exit code 0 when healthy, 1 when not (no successful run yet, the "
        "last one older than max_run_gap, the last run failed for a module or set aside "
        "entries Zoho sent malformed (table rejected_records), a mass-deletion incident is "
        "open: see `zoho-deleted incidents`, or the analyst file is older than the last "
        "successful load).",
        """
        zoho-deleted status
        zoho-deleted status --json        one JSON object, for monitoring
        zoho-deleted status --org demo    the demo's rows
        """,
        help="what is captured per module, and when the last run succeeded",
    )
    status_parser.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout instead"
    )
    status_parser.set_defaults(handler=cmd_status)
    incidents_parser = parser.add_command(
        "incidents",
        "List mass-deletion incidents, latest first: deletions by one user in one "
        "module with no gap longer than incident_gap (default 10m), at least "
        "incident_threshold (default 100) records. `incidents ack INCIDENT_ID` marks one "
        "reviewed (who and when, in table incident_reviews), so status stops alerting on it.",
        """
        zoho-deleted incidents                     list them, latest first
        zoho-deleted incidents ack 2b7fbc59cf3f    mark one reviewed
        """,
        help="list mass-deletion incidents, or acknowledge one",
    )
    incidents_parser.add_argument(
        "action",
        nargs="?",
        choices=["ack"],
        metavar="ack",
        help="mark the incident INCIDENT_ID reviewed (without it: list the incidents)",
    )
    incidents_parser.add_argument(
        "incident_id", nargs="?", metavar="INCIDENT_ID", help="an id `incidents` lists"
    )
    incidents_parser.set_defaults(handler=cmd_incidents)
    restore_parser = parser.add_command(
        "restore",
        "Select bin entries the warehouse holds, by --incident, or by --module, "
        "--deleted-by, --since, --until together, or by --ids. Without --yes nothing changes: "
        "it prints what it would restore (exit 0). With --yes it asks Zoho to restore them, "
        "at most 200 per call, and records each outcome in table restore_requests: exit 0 when "
        "every one was restored or scheduled, 1 when some failed, 2 for a bad selection, 3 "
        "when the token lacks the scope ZohoCRM.settings.recycle_bin.UPDATE, 4 when Zoho "
        "kept failing. With --recreate, entries the bin no longer holds are recreated from "
        "their last captured values (docs/recreate.md), each outcome in table "
        "recreated_records; 3 also when the token lacks ZohoCRM.modules.MODULE.CREATE.",
        """
        zoho-deleted restore --incident 2b7fbc59cf3f          what it would restore (dry run)
        zoho-deleted restore --incident 2b7fbc59cf3f --yes    restore them
        zoho-deleted restore --module Leads --deleted-by "Marco Ruiz" --since 2026-11-30T14:00
        zoho-deleted restore --module Leads --recreate        purged ones too, from their values
        """,
        help="restore entries from Zoho's recycle bin (a dry run unless --yes)",
    )
    restore_parser.add_argument("--incident", metavar="INCIDENT_ID", help="an incident's entries")
    restore_parser.add_argument("--module", help="a module API name, e.g. Leads")
    restore_parser.add_argument(
        "--deleted-by", metavar="NAME_OR_ID", help="the deleting user's name or id"
    )
    restore_parser.add_argument(
        "--since", metavar="TIME", type=_instant, help=f"deleted at or after: {TIME_FORMS}"
    )
    restore_parser.add_argument(
        "--until", metavar="TIME", type=_instant, help="deleted before (the same forms)"
    )
    restore_parser.add_argument("--ids", metavar="ID[,ID...]", help="record ids")
    restore_parser.add_argument(
        "--recreate",
        action="store_true",
        help="also recreate purged records from their last captured values (new ids)",
    )
    restore_parser.add_argument(
        "--relink",
        action="store_true",
        help="with --recreate: point their captured related records that still exist at the "
        "new records",
    )
    restore_parser.add_argument(
        "--trigger",
        metavar="ACTION[,ACTION...]",
        type=_triggers,
        default=[],
        help=f"with --recreate: what Zoho fires for them, of {', '.join(TRIGGERS)} (default: "
        "nothing)",
    )
    restore_parser.add_argument(
        "--yes", action="store_true", help="restore for real (without it: a dry run)"
    )
    restore_parser.set_defaults(handler=cmd_restore)
    report_parser = parser.add_command(
        "report",
        "Write one HTML file that opens offline: deletions per day by module and "
        "by user, incidents on a timeline, what leaves the bin in the next 14 days, and "
        "capture coverage per module. Needs the extra: pip install '.[report]'.",
        f"""
        zoho-deleted report                              writes {DEFAULT_OUTPUT}
        zoho-deleted report --output ~/deletions.html
        zoho-deleted report --org demo                   the demo's rows
        """,
        help="write one self-contained HTML report",
    )
    report_parser.add_argument(
        "--output",
        metavar="FILE",
        default=DEFAULT_OUTPUT,
        help=f"the file to write (default {DEFAULT_OUTPUT})",
    )
    report_parser.set_defaults(handler=cmd_report)
    forget_parser = parser.add_command(
        "forget",
        "Erase what the warehouse holds of records a person asked to have erased: their names "
        "and the names of their deleter, creator and owner, their related records, captured "
        "values and set-aside entries, in every table (and, on DuckDB, in the analyst file, "
        "published again). Their ids and deletion times stay, and a tombstone in table erasures "
        "keeps later runs from storing anything personal of them again. Without --yes nothing "
        "changes: it prints what it would erase (exit 0). Exit 2 for an unknown module, no ids "
        "or an id the warehouse does not hold; 5 while a run holds the pipeline.",
        """
        zoho-deleted forget --module Leads --ids 4108880000001         a dry run
        zoho-deleted forget --module Leads --ids 4108880000001 --yes   erase
        """,
        help="erase records on request: their names, related records and values (a dry run "
        "unless --yes)",
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
            type=_destination,
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
