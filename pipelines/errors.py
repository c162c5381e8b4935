"""Map whatever ended a run to one line for the user and an exit code for the scheduler."""

from __future__ import annotations

from typing import List, Optional, Tuple

import duckdb
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from requests.exceptions import RequestException

from pipelines.analyst_file import AnalystFileError
from pipelines.duckdb_file import NEWER_DUCKDB_FILE, configured_duckdb_file
from sources.zoho_crm.errors import (
    ZohoApiError,
    ZohoAuthError,
    ZohoConfigError,
    ZohoError,
    ZohoResponseError,
)

EXIT_OK = 0
EXIT_PARTIAL = 1  # loaded, but Zoho refused modules or no analyst file (or status: unhealthy)
EXIT_CONFIG = 2  # bad configuration or command line
EXIT_AUTH = 3  # Zoho refused the OAuth grant
EXIT_ZOHO = 4  # Zoho or the network kept failing after retries; nothing from this run loaded
EXIT_BUSY = 5  # another run of the same pipeline is in progress
EXIT_UNEXPECTED = 70


class PipelineBusyError(ZohoError):
    """Another run of the same pipeline holds its lock."""


def _causes(error: BaseException) -> list:
    """The error and everything it wraps (dlt wraps source errors several layers deep)."""
    seen, stack, chain = set(), [error], []
    while stack:
        current = stack.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        chain.append(current)
        stack.extend([getattr(current, "exception", None), current.__cause__, current.__context__])
    return chain


def _missing_fields(error: ConfigFieldMissingException) -> List[str]:
    """Dotted names of the missing keys, nested specs (credentials) included."""
    names = []
    for field, traces in error.traces.items():
        nested = [f"{field}.{key}" for trace in traces for key in getattr(trace, "traces", {})]
        names.extend(nested or [field])
    return names


def _missing_config(error: ConfigFieldMissingException) -> str:
    names = _missing_fields(error)
    env = ", ".join("SOURCES__ZOHO_CRM__" + n.replace(".", "__").upper() for n in names)
    return (
        f"missing configuration {', '.join(names)}: set it under [sources.zoho_crm] in "
        f".dlt/secrets.toml (credentials) or .dlt/config.toml, or as {env}"
    )


def _duckdb_file_name() -> str:
    try:
        return configured_duckdb_file()
    except ZohoConfigError:
        return "the DuckDB file"


def explain(error: BaseException) -> Tuple[int, str]:
    """(exit code, one line) for an error that ended a run."""
    chain = _causes(error)
    found: Optional[BaseException] = next((e for e in chain if isinstance(e, ZohoError)), None)
    if found is None:
        found = next((e for e in chain if isinstance(e, ConfigFieldMissingException)), None)
    if isinstance(found, ConfigFieldMissingException):
        return EXIT_CONFIG, _missing_config(found)
    if isinstance(found, PipelineBusyError):
        return EXIT_BUSY, str(found)
    if isinstance(found, AnalystFileError):
        return EXIT_PARTIAL, str(found)
    if isinstance(found, ZohoConfigError):
        return EXIT_CONFIG, f"configuration error: {found}"
    if isinstance(found, ZohoAuthError):
        return EXIT_AUTH, str(found)
    if isinstance(found, (ZohoApiError, ZohoResponseError)):
        return EXIT_ZOHO, f"{found}; nothing from this run was loaded, the next run retries it"
    locked = next((e for e in chain if "Could not set lock on file" in str(e)), None)
    if locked is not None:
        return EXIT_BUSY, (
            "the DuckDB file is open in another process (a run, or a DuckDB shell); try again "
            "when it is closed"
        )
    newer = next((e for e in chain if NEWER_DUCKDB_FILE in str(e)), None)
    if newer is not None:
        return EXIT_CONFIG, (
            f"{_duckdb_file_name()} was written by a newer DuckDB than this one "
            f"({duckdb.__version__}): move its data over with EXPORT DATABASE in that DuckDB "
            "and IMPORT DATABASE in this one, or point DESTINATION__DUCKDB__CREDENTIALS at "
            "another file"
        )
    network = next((e for e in chain if isinstance(e, RequestException)), None)
    if network is not None:
        return EXIT_ZOHO, (
            f"could not reach Zoho after retries ({type(network).__name__}); nothing from this "
            "run was loaded, the next run retries it"
        )
    root = next((e for e in chain if not type(e).__module__.startswith("dlt.")), error)
    first_line = next(iter(str(root).splitlines()), "")
    return EXIT_UNEXPECTED, (
        f"unexpected error {type(root).__name__}: {first_line} "
        "(run again with --verbose for the details)"
    )
