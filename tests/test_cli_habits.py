"""The command line's habits: --version, examples in --help, mistyped options and commands
answered by the command with the closest one, argument errors called so with the help's forms,
an unknown destination named as such (exit 2)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from pipelines.cli import build_parser, main
from pipelines.restore import TIME_FORMS

ZOHO_DELETED = str(Path(sys.executable).parent / "zoho-deleted")
COMMANDS = ["run", "demo", "status", "incidents", "restore", "report"]


def cli(tmp_path: Path, *argv: str, **env: str) -> subprocess.CompletedProcess:
    user_env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DEST"))}
    return subprocess.run(
        [ZOHO_DELETED, *argv],
        cwd=tmp_path,
        env={**user_env, "DLT_DATA_DIR": str(tmp_path / "dlt"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version(tmp_path):
    shown = cli(tmp_path, "--version")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == f"zoho-deleted {version('zoho-deleted')}\n"


@pytest.mark.parametrize(
    "argv, usage, suggestion",
    [
        (["run", "--recnocile"], "usage: zoho-deleted run ", "did you mean --reconcile?"),
        (["status", "--jsn"], "usage: zoho-deleted status ", "did you mean --json?"),
        (["restore", "--incdent=x"], "usage: zoho-deleted restore ", "did you mean --incident?"),
        (["stauts"], "usage: zoho-deleted ", "did you mean status?"),
        (["incidents", "akc", "x"], "usage: zoho-deleted incidents ", "did you mean ack?"),
    ],
)
def test_a_mistyped_word_shows_the_commands_usage_and_the_closest(
    tmp_path, argv, usage, suggestion
):
    said = cli(tmp_path, *argv)
    assert said.returncode == 2 and said.stdout == ""
    assert said.stderr.startswith(usage), said.stderr
    last = said.stderr.strip().splitlines()[-1]
    assert last.endswith(f"; {suggestion}"), said.stderr
    assert not list(tmp_path.iterdir())  # nothing ran


def help_of(capsys, *command: str) -> str:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_help_shows_examples_that_parse(capsys, command):
    shown = help_of(capsys, *command)
    examples = shown.split("\nexamples:\n", 1)[1].splitlines()
    typed = [shlex.split(line.split("  ", 2)[1]) for line in examples if line.strip()]
    typed = [argv for argv in typed if "COMMAND" not in argv]  # `COMMAND --help`: a form
    assert len(typed) >= (2 if command else 3), shown
    assert all(argv[0] == "zoho-deleted" for argv in typed)
    assert typed[0][1:2] == (command or typed[0][1:2])  # the command's own example first
    for argv in typed:
        build_parser().parse_args(argv[1:])  # an example that does not parse exits here
    assert "{" not in shown and "OUTPUT" not in shown  # named metavars


def test_the_helps_name_their_arguments(capsys):
    incidents = help_of(capsys, "incidents")
    assert "[ack] [INCIDENT_ID]" in incidents and "mark the incident INCIDENT_ID" in incidents
    assert "--output FILE" in help_of(capsys, "report")
    assert f"deleted at or after: {TIME_FORMS}" in " ".join(help_of(capsys, "restore").split())


@pytest.mark.parametrize("option", ["--since", "--until"])
def test_a_bad_time_is_an_argument_error_in_the_helps_forms(tmp_path, option):
    said = cli(tmp_path, "restore", option, "yesterday")
    assert said.returncode == 2 and said.stdout == ""
    assert said.stderr.strip().splitlines()[-1] == (
        f"zoho-deleted restore: error: argument {option}: 'yesterday' is not a time: "
        f"write it as {TIME_FORMS}"
    )
    assert "configuration error" not in said.stderr


@pytest.mark.parametrize("value", ["2026-11-30T14:00", "2026-11-30T14:00+01:00", "2026-11-30"])
def test_each_time_form_the_help_states_is_taken(value):
    assert build_parser().parse_args(["restore", "--since", value]).since == value


def test_an_unknown_destination_is_exit_2_naming_it_and_dlts(tmp_path):
    said = cli(tmp_path, "status", "--destination", "duckbd")
    assert said.returncode == 2 and said.stdout == ""
    last = said.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "zoho-deleted status: error: argument --destination: unknown destination 'duckbd' "
        "(did you mean duckdb?): give one of dlt's (athena, bigquery, "
    ), said.stderr
    assert "postgres" in last and last.endswith("under [destination.duckbd]")
    assert "unexpected" not in said.stderr and "Traceback" not in said.stderr


def test_a_named_destination_is_not_called_unknown(tmp_path):
    said = cli(
        tmp_path,
        "status",
        "--destination",
        "archive",
        DESTINATION__ARCHIVE__DESTINATION_TYPE="duckdb",
        DESTINATION__ARCHIVE__CREDENTIALS=str(tmp_path / "archive.duckdb"),
    )
    assert "unknown destination" not in said.stderr
    assert "Traceback" not in said.stderr
