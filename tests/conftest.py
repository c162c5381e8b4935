"""Fixtures: a Zoho stand-in on a loopback port and a fresh pipeline per test."""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List

import dlt
import duckdb
import pytest

# Fast retries for the whole suite (dlt's [runtime] config); the waits stay exponential.
os.environ["RUNTIME__REQUEST_BACKOFF_FACTOR"] = "0.01"
os.environ["RUNTIME__REQUEST_MAX_RETRY_DELAY"] = "0.05"
os.environ["RUNTIME__REQUEST_MAX_ATTEMPTS"] = "4"
os.environ["RUNTIME__REQUEST_TIMEOUT"] = "5"

from pipelines.duckdb_file import duckdb_destination  # noqa: E402
from pipelines.names import DATASET_NAME  # noqa: E402, F401 - tests import it from here
from pipelines.run import RunResult, make_pipeline, run  # noqa: E402
from zoho_standin import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, Org, StandinServer  # noqa: E402
from zoho_standin.seed import USERS, add_standard_modules  # noqa: E402

NOW = datetime.now(UTC).replace(microsecond=0)
IST = timezone(timedelta(hours=5, minutes=30))
PST = timezone(timedelta(hours=-8))
MODULES = ["Leads", "Contacts", "Deals", "Accounts"]
# dlt's default file for pipeline zoho_crm; DuckDB names its catalog zoho_crm, the dataset is
# zoho_crm_deleted: `zoho_crm_deleted.<table>` works on a plain connection
DUCKDB_FILE = "zoho_crm.duckdb"
ANALYST_FILE = "zoho_crm_analyst.duckdb"  # the copy each run publishes beside it


def delete(org: Org, module: str, rid: str, at: datetime, name: str = "") -> None:
    user, _ = USERS[int(rid[-1]) % len(USERS)]
    org.delete(module, rid, at, name or f"Name {rid}", user, user, user)


@pytest.fixture
def org() -> Org:
    """Four modules; Leads and Contacts have lookup related lists (Accounts stays empty)."""
    org = Org()
    add_standard_modules(org, MODULES)
    return org


@pytest.fixture
def server(org: Org) -> Iterator[StandinServer]:
    with StandinServer(org) as server:
        yield server


@pytest.fixture
def pipeline(tmp_path: Path) -> dlt.Pipeline:
    return make_pipeline(
        destination=duckdb_destination(str(tmp_path / DUCKDB_FILE)),
        pipelines_dir=str(tmp_path / "pipelines"),
    )


def source_args(server: StandinServer, **overrides: Any) -> Dict[str, Any]:
    args: Dict[str, Any] = {
        "credentials": {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
        },
        "accounts_server": server.url,
        "api_domain": server.url,
        "modules": MODULES,
    }
    args.update(overrides)
    return args


def run_once(server: StandinServer, pipeline: dlt.Pipeline, **overrides: Any) -> RunResult:
    server.reset_counts()
    return run(pipeline, **source_args(server, **overrides))


def api_calls(server: StandinServer) -> Dict[str, int]:
    """Calls the stand-in answered, by route, leaving out the OAuth token endpoint."""
    return {route: n for route, n in server.calls.items() if route != "token" and n}


def query(pipeline: dlt.Pipeline, sql: str) -> List[tuple]:
    with pipeline.sql_client() as client:
        return [tuple(row) for row in client.execute_sql(sql)]


@contextmanager
def analyst(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The analyst file at `path` opened as docs/tables.md tells analysts to: read-only, nothing
    else (tables are `zoho_crm_deleted.<table>`)."""
    with duckdb.connect(str(path), read_only=True) as db:
        yield db


def env_for(server: StandinServer, tmp_path: Path, **extra: str) -> Dict[str, str]:
    """Environment for running `zoho-deleted` as a subprocess against the stand-in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    env.update(
        {
            "SOURCES__ZOHO_CRM__CREDENTIALS__CLIENT_ID": CLIENT_ID,
            "SOURCES__ZOHO_CRM__CREDENTIALS__CLIENT_SECRET": CLIENT_SECRET,
            "SOURCES__ZOHO_CRM__CREDENTIALS__REFRESH_TOKEN": REFRESH_TOKEN,
            "SOURCES__ZOHO_CRM__ACCOUNTS_SERVER": server.url,
            "SOURCES__ZOHO_CRM__API_DOMAIN": server.url,
            "SOURCES__ZOHO_CRM__MODULES": '["Leads", "Contacts", "Deals", "Accounts"]',
            "DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / DUCKDB_FILE),
            "DLT_DATA_DIR": str(tmp_path / "dlt"),
        }
    )
    env.update(extra)
    return env
