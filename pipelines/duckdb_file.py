"""The DuckDB file the pipeline loads into, opened so its catalog never clashes with the dataset.

DuckDB names a file's catalog after the file, so `zoho_crm_deleted.duckdb` (dlt's default file
for this pipeline) holds a catalog `zoho_crm_deleted` next to the schema `zoho_crm_deleted`, and
DuckDB refuses every `zoho_crm_deleted.<table>` as ambiguous — dlt's own loads included. The
pipeline therefore opens an in-memory database and attaches the file under the catalog name
CATALOG; nothing is stored differently, and the file opens in any DuckDB client as usual.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

import dlt
from dlt.common.configuration import configspec
from dlt.destinations.impl.duckdb.configuration import (
    DuckDbClientConfiguration,
    DuckDbCredentials,
)

from sources.zoho_crm.config import json_setting
from sources.zoho_crm.errors import ZohoConfigError

DEFAULT_DUCKDB_FILE = "zoho_crm_deleted.duckdb"  # dlt's default for the pipeline; all orgs share it
DUCKDB_MEMORY_LIMIT = "192MB"
# One load job at a time: jobs into one DuckDB file gain little from running side by side, and
# each holds its own buffers (measured on the 200,000-record benchmark, DuckDB 1.5.6: peak RSS
# 436 MB with dlt's 20 parallel jobs, 384 MB with 2, 344 MB with 1; wall time within noise).
DUCKDB_LOAD_JOBS = 1
CATALOG = "zoho_crm_warehouse"
NEWER_DUCKDB_FILE = "created with a newer version of DuckDB"  # DuckDB's words for such a file


@configspec(init=False)
class AttachedDuckDbCredentials(DuckDbCredentials):
    """dlt's DuckDB credentials for a file that is attached as CATALOG rather than opened."""

    def _conn_str(self) -> str:
        return ":memory:"


@configspec(init=False)
class AttachedDuckDbConfiguration(DuckDbClientConfiguration):
    credentials: AttachedDuckDbCredentials = None


class AttachedDuckDb(dlt.destinations.duckdb):
    """dlt's DuckDB destination whose credentials attach the file (see the module's text)."""

    spec = AttachedDuckDbConfiguration

    @property
    def destination_type(self) -> str:
        return "dlt.destinations.duckdb"  # the same engine: state and dlt's checks see duckdb


def _duckdb_setting(key: str) -> Any:
    return dlt.config.get(f"destination.duckdb.{key}") or dlt.secrets.get(
        f"destination.duckdb.{key}"
    )


def configured_duckdb_file() -> str:
    """The file in dlt's destination config (`DESTINATION__DUCKDB__CREDENTIALS`), else the
    default, as an absolute path."""
    configured = _duckdb_setting("credentials")
    if isinstance(configured, dict):  # [destination.duckdb.credentials] as a table
        configured = configured.get("database")
    path = str(configured) if configured else DEFAULT_DUCKDB_FILE
    if path.startswith(":"):
        raise ZohoConfigError(
            f"destination.duckdb.credentials {path!r} is not a file: set it to a DuckDB file "
            f"path, e.g. {DEFAULT_DUCKDB_FILE}"
        )
    return os.path.abspath(path)


def attach_sql(path: str, alias: str, read_only: bool = False) -> str:
    """DuckDB's ATTACH of the file at `path` as catalog `alias`."""
    quoted = path.replace("'", "''")
    return f"ATTACH IF NOT EXISTS '{quoted}' AS {alias}" + (" (READ_ONLY)" if read_only else "")


def duckdb_destination(path: Optional[str] = None) -> Any:
    """dlt's DuckDB destination at `path`, else at the configured file.

    DuckDB's `memory_limit` defaults to DUCKDB_MEMORY_LIMIT (DuckDB spills to `<file>.tmp`
    beyond it) and load jobs run one at a time; every merge is one load package's rows (the
    source's `load_chunk_rows`), which keeps a 1,000,000-record first run near 310 MB
    (measured); `[destination.duckdb.credentials] global_config` and `local_config` override
    these, as in dlt's own config.
    """
    database = os.path.abspath(path) if path else configured_duckdb_file()
    global_config: Dict[str, Any] = {
        "memory_limit": DUCKDB_MEMORY_LIMIT,
        "temp_directory": f"{database}.tmp",
        **_duckdb_mapping("global_config"),
    }
    credentials = AttachedDuckDbCredentials(
        database,
        global_config=global_config,
        statements=[attach_sql(database, CATALOG)],
        # each session dlt clones defaults to the file's catalog (`USE` on the pool's own
        # connection would not reach them); dlt then sets `search_path` to the dataset
        local_config={"schema": f"{CATALOG}.main", **_duckdb_mapping("local_config")},
    )
    return AttachedDuckDb(credentials=credentials, max_parallel_load_jobs=DUCKDB_LOAD_JOBS)


def _duckdb_mapping(key: str) -> Dict[str, Any]:
    """`[destination.duckdb.credentials] <key>`, a table in TOML or JSON in an environment
    variable."""
    configured = _duckdb_setting(f"credentials.{key}") or {}
    value = json_setting(configured)
    if not isinstance(value, dict):
        raise ZohoConfigError(
            f"destination.duckdb.credentials.{key} {configured!r} is not a mapping: give a TOML "
            f'table or a JSON object, e.g. {{"threads": 2}}'
        )
    return value
