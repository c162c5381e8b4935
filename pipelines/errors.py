"""Map whatever ended a run to one line for the user and an exit code for the scheduler."""

from __future__ import annotations

from typing import List, Mapping, Optional, Sequence, Tuple

import duckdb
from dlt.common.configuration.exceptions import (
    ConfigFieldMissingException,
    ConfigurationException,
    ConfigValueCannotBeCoercedException,
    LookupTrace,
    ValueNotSecretException,
)
from dlt.pipeline.exceptions import PipelineStepFailed
from requests.exceptions import RequestException

from pipelines.analyst_file import AnalystFileError
from pipelines.duckdb_file import (
    DAMAGED_DUCKDB_FILE,
    DUCKDB_LOCKED,
    NEWER_DUCKDB_FILE,
    configured_duckdb_file,
    damaged_file_line,
)
from pipelines.exceptions import PipelineConfigError, PipelineError
from pipelines.locks import PipelineBusyError
from pipelines.words import counted
from sources.zoho_crm.config import coercion_error
from sources.zoho_crm.errors import (
    ZohoApiError,
    ZohoAuthError,
    ZohoConfigError,
    ZohoError,
    ZohoResponseError,
    ZohoThrottledError,
)
from sources.zoho_crm.redact import redact
from sources.zoho_crm.warehouse import BIN_TABLE

EXIT_OK = 0
EXIT_PARTIAL = 1  # loaded, but Zoho refused modules or no analyst file (or status: unhealthy)
REFUSED_ADVICE = (
    "grant the Zoho user and token read access to them, or remove them from "
    "sources.zoho_crm.modules; the next run reads them from where they were"
)
EXIT_CONFIG = 2  # bad configuration or command line
EXIT_AUTH = 3  # Zoho refused the OAuth grant
EXIT_ZOHO = 4  # Zoho or the network kept failing after retries (or throttles token requests)
EXIT_BUSY = 5  # another run of the same pipeline is in progress
EXIT_BACKLOG = 6  # the run loaded; related records or record values left for the next runs
EXIT_LOAD_STUCK = 7  # the destination refused a pending package again: nothing new captured
EXIT_UNEXPECTED = 70
NOTHING_LOADED = "nothing from this run was loaded"


class LoadStuckError(PipelineError):
    """A package an earlier run extracted cannot be loaded: the run stops before capturing."""

    def __init__(self, pipeline_name: str, error: BaseException) -> None:
        super().__init__(
            f"a load package of an earlier run still cannot be loaded ({_cause_line(error)}); "
            f"nothing new is captured until it is. {_fix_destination(pipeline_name)}"
        )


class StoppedAfterLoadsError(PipelineError):
    """A run failed after some of its load packages had loaded: those stay loaded (and their
    state with them), so the next run goes on from there. Its message says why it stopped
    (as `explain` says it of the error, with its exit code) and what loaded."""

    def __init__(self, landed: Mapping[str, int], packages: int, error: BaseException) -> None:
        self.landed, self.packages = dict(landed), packages
        self.exit_code, line = _explain(error)
        super().__init__(f"{line.split(f'; {NOTHING_LOADED}')[0]}; {self.what_loaded()}")

    def what_loaded(self) -> str:
        tables = ", ".join(f"{t} {n}" for t, n in sorted(self.landed.items()))
        return (
            f"before it stopped, this run loaded {sum(self.landed.values())} rows "
            f"({tables or 'no table'}) in {self.packages} load package(s); they stay loaded "
            "and the next run goes on from where this one stopped"
        )


def _fix_destination(pipeline_name: str) -> str:
    return (
        "Fix the destination (disk space, permissions; on DuckDB memory too: "
        "destination.duckdb.credentials.global_config) and run again;"
        f" `dlt pipeline {pipeline_name} failed-jobs` shows details"
    )


def _cause_line(error: BaseException) -> str:
    cause = _root(error)
    first_line = next(iter(str(cause).splitlines()), "")
    return f"{type(cause).__name__}: {first_line}"


class RunRefusedError(PipelineError):
    """A run loaded what it could, but Zoho refused modules (or the bin): see `refused`."""

    def __init__(self, exit_code: int, line: str) -> None:
        super().__init__(line)
        self.exit_code = exit_code


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


def _root(error: BaseException) -> BaseException:
    """The first error in the chain that is not one of dlt's wrappers."""
    return next((e for e in _causes(error) if not type(e).__module__.startswith("dlt.")), error)


def _missing_keys(error: ConfigFieldMissingException) -> List[Tuple[str, ...]]:
    """Where each missing key belongs, as sections and key: the most specific place dlt
    looked, less a source's repeated name (`sources.zoho_crm.zoho_crm` is `sources.zoho_crm`);
    nested specs (credentials) included."""
    keys = []
    for field, traces in error.traces.items():
        nested = [(n, t) for trace in traces for n, t in getattr(trace, "traces", {}).items()]
        for name, looked in nested or [(field, traces)]:
            keys.append(_usual_place(name, [t for t in looked if isinstance(t, LookupTrace)]))
    return keys


def _usual_place(key: str, looked: List[LookupTrace]) -> Tuple[str, ...]:
    for trace in looked:
        sections = list(trace.sections)
        if not any(a == b for a, b in zip(sections, sections[1:], strict=False)):
            return (*sections, key)
    return (key,)


def _missing_config(error: ConfigFieldMissingException) -> str:
    keys = _missing_keys(error)
    env = ", ".join("__".join(key).upper() for key in keys)
    return (
        f"missing configuration {', '.join('.'.join(key) for key in keys)}: set it in "
        f".dlt/secrets.toml (credentials) or .dlt/config.toml, or as {env}"
    )


def _config_line(error: ConfigurationException) -> str:
    """One line for dlt's other configuration errors, naming the key where dlt does."""
    if isinstance(error, ConfigValueCannotBeCoercedException):
        return str(coercion_error(error.field_name, error.field_value, error.hint))
    if isinstance(error, ValueNotSecretException):
        return (
            f"{error.key} is a secret, which dlt does not read from {error.provider_name}: "
            "move it to .dlt/secrets.toml or an environment variable"
        )
    return next(iter(str(error).splitlines()), type(error).__name__)


def _duckdb_file_name() -> str:
    try:
        return configured_duckdb_file()
    except PipelineConfigError:
        return "the DuckDB file"


def damaged_duckdb_error(error: BaseException) -> Optional[BaseException]:
    """DuckDB's own error in `error`'s chain when it says a file is damaged; None otherwise."""
    said = [e for e in _causes(error) if any(d in str(e) for d in DAMAGED_DUCKDB_FILE)]
    return next((e for e in said if isinstance(e, duckdb.Error)), said[-1] if said else None)


def explain(error: BaseException) -> Tuple[int, str]:
    """(exit code, one line) for an error that ended a run; the line is redacted (it reaches
    the terminal, logs and the `runs` table), and says what loaded when something did."""
    stopped = next((e for e in _causes(error) if isinstance(e, StoppedAfterLoadsError)), None)
    code, line = (stopped.exit_code, str(stopped)) if stopped else _explain(error)
    return code, redact(line)


def _explain(error: BaseException) -> Tuple[int, str]:
    chain = _causes(error)
    damaged = damaged_duckdb_error(error)
    if damaged is not None:  # whichever step met it: the file must be recovered first
        return EXIT_CONFIG, damaged_file_line(damaged)
    found: Optional[BaseException] = next(
        (e for e in chain if isinstance(e, (ZohoError, PipelineError))), None
    )
    if found is None:
        found = next((e for e in chain if isinstance(e, ConfigurationException)), None)
    if isinstance(found, ConfigFieldMissingException):
        return EXIT_CONFIG, _missing_config(found)
    if isinstance(found, ConfigurationException):
        return EXIT_CONFIG, f"configuration error: {_config_line(found)}"
    if isinstance(found, PipelineBusyError):
        return EXIT_BUSY, str(found)
    if isinstance(found, LoadStuckError):
        return EXIT_LOAD_STUCK, str(found)
    if isinstance(found, RunRefusedError):
        return found.exit_code, str(found)
    if isinstance(found, AnalystFileError):
        return EXIT_PARTIAL, str(found)
    if isinstance(found, (ZohoConfigError, PipelineConfigError)):
        return EXIT_CONFIG, f"configuration error: {found}"
    if isinstance(found, ZohoAuthError):
        return EXIT_AUTH, str(found)
    if isinstance(found, ZohoThrottledError):
        return EXIT_ZOHO, str(found)
    if isinstance(found, (ZohoApiError, ZohoResponseError)):
        return EXIT_ZOHO, f"{found}; {NOTHING_LOADED}, the next run retries it"
    failed_load = next(
        (e for e in chain if isinstance(e, PipelineStepFailed) and e.step == "load"), None
    )
    if failed_load is not None:
        return EXIT_LOAD_STUCK, (
            f"the destination refused the load ({_cause_line(failed_load)}); what this run "
            "read is kept and the next run loads it first. If it keeps failing: "
            + _fix_destination(failed_load.pipeline.pipeline_name)
        )
    locked = next((e for e in chain if DUCKDB_LOCKED in str(e)), None)
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
            f"could not reach Zoho after retries ({type(network).__name__}); {NOTHING_LOADED}, "
            "the next run retries it"
        )
    root = _root(error)
    first_line = next(iter(str(root).splitlines()), "")
    return EXIT_UNEXPECTED, (
        f"unexpected error {type(root).__name__}: {first_line} "
        "(run again with --verbose for the details)"
    )


def refused(
    modules: Sequence[str], failed: Mapping[str, ZohoApiError]
) -> Optional[Tuple[int, str]]:
    """(exit code, one line) for a run in which Zoho refused modules (or the bin); None if none.

    Exit 1 when something was read; exit 4 when Zoho refused every module and the bin too.
    """
    if not failed:
        return None
    named = ", ".join(f"{name} ({error.code})" for name, error in sorted(failed.items()))
    if not modules or not set(modules) <= set(failed):
        return EXIT_PARTIAL, f"Zoho refused {named}: {REFUSED_ADVICE}; the rest loaded"
    if BIN_TABLE in failed:
        return (
            EXIT_ZOHO,
            f"Zoho refused every module and the recycle bin, {named}: {REFUSED_ADVICE}",
        )
    return EXIT_PARTIAL, f"Zoho refused every module, {named}: {REFUSED_ADVICE}; the bin loaded"


def malformed(modules: Sequence[str], rejected: Sequence[str]) -> Optional[Tuple[int, str]]:
    """(exit code, one line) for a run in which Zoho answered `modules` (or the bin) with a
    malformed page, or sent `rejected` entries malformed; None if neither. Exit 1: the rest
    loaded, and the next run reads them again."""
    said = []
    if modules:
        said.append(f"Zoho answered {', '.join(sorted(modules))} with a malformed page")
    if rejected:
        said.append(
            f"Zoho sent {counted(len(rejected), 'malformed entry', 'malformed entries')}, "
            "set aside in table rejected_records"
        )
    if not said:
        return None
    return EXIT_PARTIAL, (
        f"{' and '.join(said)} (named above); the rest loaded, and each run reads them again "
        "until Zoho sends them whole"
    )
