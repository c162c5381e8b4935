"""No secret leaves the process, whatever Zoho echoes: output (with and without --verbose), logs,
`runs.error`, the DuckDB file, the analyst file and dlt's working files are all redacted."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import List

import duckdb
import pytest
from conftest import ANALYST_FILE, CLIENT_SECRET, DUCKDB_FILE, NOW, REFRESH_TOKEN, delete
from test_cli import cli
from test_crashes import contents

from sources.zoho_crm.redact import install_log_redaction, redact, remember

DEBUG = {"RUNTIME__LOG_LEVEL": "DEBUG"}


def runs_errors(path: Path) -> List[str]:
    with duckdb.connect(str(path), read_only=True) as db:
        rows = db.sql("SELECT error FROM zoho_crm_deleted.runs WHERE error IS NOT NULL")
        return [error for (error,) in rows.fetchall()]


def leaks(tmp_path: Path, outputs: list, secrets: List[str]) -> list:
    """Where any of `secrets` shows: an output, or any file under `tmp_path` (the DuckDB file,
    the analyst file, dlt's state, trace and load packages)."""
    found = [
        (result.args[1:], secret)
        for result in outputs
        for secret in secrets
        if secret in result.stdout + result.stderr
    ]
    return found + [
        (str(path), secret)
        for path in tmp_path.rglob("*")
        if path.is_file()
        for secret in secrets
        if secret.encode() in contents(path)
    ]


@pytest.mark.parametrize("verbose", [[], ["--verbose"]])
def test_a_token_endpoint_that_echoes_the_form_leaks_nothing(org, server, tmp_path, verbose):
    delete(org, "Leads", "100", NOW - timedelta(days=1))
    assert cli(server, tmp_path, "run").returncode == 0
    server.faults.add(r"/oauth/v2/token", "token-echo", times=None)
    refused = cli(server, tmp_path, *verbose, "run", **DEBUG)
    server.faults.clear()
    published = cli(server, tmp_path, "run")  # the analyst file now holds the failed run too

    assert refused.returncode == 3, refused.stderr
    line = refused.stderr.strip().splitlines()[-1]
    assert line.startswith("zoho-deleted: Zoho refused the OAuth grant (invalid_code for ")
    assert "client_secret=***&refresh_token=***" in line and "the refresh token is wrong" in line
    assert ("Traceback" in refused.stderr) == bool(verbose)
    assert published.returncode == 0, published.stderr
    for database in (DUCKDB_FILE, ANALYST_FILE):
        (error,) = runs_errors(tmp_path / database)
        assert error == line.removeprefix("zoho-deleted: ")  # status shows it, redacted
    assert leaks(tmp_path, [refused, published], [CLIENT_SECRET, REFRESH_TOKEN]) == []


@pytest.mark.parametrize("verbose", [[], ["--verbose"]])
def test_an_api_error_that_echoes_the_authorization_header_leaks_no_token(
    org, server, tmp_path, verbose
):
    delete(org, "Leads", "100", NOW - timedelta(days=1))
    assert cli(server, tmp_path, "run").returncode == 0
    server.faults.add(r"/Contacts/deleted$", "echo-authorization", times=None)
    refused = cli(server, tmp_path, *verbose, "run", **DEBUG)
    server.faults.clear()
    published = cli(server, tmp_path, "run")

    assert refused.returncode == 4, refused.stderr
    line = refused.stderr.strip().splitlines()[-1]
    assert "INVALID_REQUEST" in line and "Authorization: Zoho-oauthtoken ***" in line
    assert ("Traceback" in refused.stderr) == bool(verbose)
    tokens = server.issued_tokens()
    assert len(tokens) == 3
    (error,) = runs_errors(tmp_path / ANALYST_FILE)
    assert "Zoho-oauthtoken ***" in error
    assert leaks(tmp_path, [refused, published], [*tokens, CLIENT_SECRET, REFRESH_TOKEN]) == []


def test_log_records_are_redacted_tracebacks_included(caplog):
    remember("a-configured-secret-value")
    install_log_redaction()
    logger = logging.getLogger("sources.zoho_crm.auth")
    try:
        raise ValueError("refused: client_secret=a-configured-secret-value")
    except ValueError:
        logger.warning("sent %s", "Zoho-oauthtoken 1000.0a1b2c3d4e5f.0a1b2c3d4e5f", exc_info=True)
    (record,) = caplog.records
    assert record.getMessage() == "sent Zoho-oauthtoken ***"
    assert "a-configured-secret-value" not in caplog.text and "ValueError" in caplog.text


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("grant_type=refresh_token&refresh_token=r1%2Fx&code=abc", "refresh_token=***&code=***"),
        ('{"access_token": "1000.x", "client_secret": "s"}', '"access_token": "***"'),
        ("Authorization: Bearer abc.def", "Bearer ***"),
        ("token 1000.0123456789abcdef.fedcba9876543210 expired", "token *** expired"),
    ],
)
def test_what_redaction_masks(text, clean):
    assert clean in redact(text)
