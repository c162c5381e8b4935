"""The commands' own settings, as typed dlt configurations resolved by dlt.

The source's keys are its arguments (`sources.zoho_crm`); what the commands alone read is here:
`CommandSettings` (`[sources.zoho_crm]`: incidents, `status`) and `DuckDbFileSettings`
(`[destination.duckdb]`: the DuckDB file, its session settings, the analyst file). dlt reads
them as it reads every configuration: environment variables, `.dlt/secrets.toml`,
`.dlt/config.toml`, typed by the fields' hints. They are resolved on every call, never cached,
so a command sees the configuration of the moment.

A value dlt cannot read as its type stops the command with one line naming the key (dlt's
`ConfigValueCannotBeCoercedException` for `CommandSettings`, mapped in `pipelines.errors`; a
`PipelineConfigError` for the DuckDB file's mappings); a value of the right type that is out of
bounds is refused by the accessor that uses it (`incident_rule`, `run_gap`), so a bad setting
of `status` never stops a run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable, ClassVar, Dict, Optional, Tuple, TypeVar

from dlt.common.configuration import (
    ConfigValueCannotBeCoercedException,
    configspec,
    resolve_configuration,
)
from dlt.common.configuration.specs import BaseConfiguration

from pipelines.exceptions import PipelineConfigError
from sources.zoho_crm.config import duration_setting, positive_int
from sources.zoho_crm.errors import ZohoConfigError

ZOHO_CRM_SECTIONS = ("sources", "zoho_crm")  # [sources.zoho_crm]
DUCKDB_SECTIONS = ("destination", "duckdb")
CREDENTIALS_KEY = "destination.duckdb.credentials"
ANALYST_FILE_KEY = "destination.duckdb.analyst_file"
MAPPING_FORM = 'a mapping: give a TOML table or a JSON object, e.g. {"threads": 2}'

T = TypeVar("T")


@configspec
class CommandSettings(BaseConfiguration):
    """What `run`, `status`, `incidents`, `restore --incident` and `report` read from
    `[sources.zoho_crm]` beside the source's arguments."""

    incident_threshold: int = 100
    """Records in one burst that make a mass-deletion incident (1 or more)."""
    incident_gap: str = "10m"
    """The longest gap between consecutive deletions of one burst: seconds, or e.g. "90s"."""
    max_run_gap: str = "2d"
    """`status` is unhealthy when the last successful run is older than this."""

    def incident_rule(self) -> Tuple[int, timedelta]:
        """(incident_threshold, incident_gap), checked."""
        return (
            _checked(positive_int, "incident_threshold", self.incident_threshold),
            _checked(duration_setting, "incident_gap", self.incident_gap),
        )

    def run_gap(self) -> timedelta:
        """max_run_gap, checked."""
        return _checked(duration_setting, "max_run_gap", self.max_run_gap)


@configspec
class DuckDbFileCredentials(BaseConfiguration):
    """What the commands read of `[destination.duckdb.credentials]`: a path (the section's
    native value, as `DESTINATION__DUCKDB__CREDENTIALS`) or a table with `database`, and DuckDB
    settings for every connection (`global_config`) and session (`local_config`).

    Not dlt's `DuckDbCredentials`: resolving those sets up a connection pool and refuses
    `:memory:` in dlt's words, whereas the commands check the path with theirs
    (`duckdb_file.checked_duckdb_file`) and take nothing configured as the default file. And
    not a `CredentialsConfiguration`: the commands have always read this section from
    `.dlt/config.toml` too, where dlt refuses credentials.
    """

    __section__: ClassVar[str] = "credentials"

    database: Optional[str] = None
    global_config: Optional[Dict[str, Any]] = None
    local_config: Optional[Dict[str, Any]] = None

    def parse_native_representation(self, native_value: Any) -> None:
        if not isinstance(native_value, str):
            raise ValueError(f"a DuckDB file path, not {type(native_value).__name__}")
        self.database = native_value


@configspec
class DuckDbFileSettings(BaseConfiguration):
    """`[destination.duckdb]` as the commands read it: the file runs load into and the file
    analysts open (`pipelines.duckdb_file`, `pipelines.analyst_file` check the paths)."""

    credentials: DuckDbFileCredentials = None
    analyst_file: Optional[str] = None
    """The analyst file; None: `<file>_analyst.duckdb` beside the DuckDB file."""


def command_settings() -> CommandSettings:
    """`CommandSettings` resolved by dlt in `[sources.zoho_crm]`."""
    return resolve_configuration(CommandSettings(), sections=ZOHO_CRM_SECTIONS)


def duckdb_file_settings() -> DuckDbFileSettings:
    """`DuckDbFileSettings` resolved by dlt in `[destination.duckdb]`; a value of the wrong
    type is a one-line `PipelineConfigError` naming the key."""
    try:
        return resolve_configuration(DuckDbFileSettings(), sections=DUCKDB_SECTIONS)
    except ConfigValueCannotBeCoercedException as error:
        field = error.field_name
        key = ANALYST_FILE_KEY if field == "analyst_file" else f"{CREDENTIALS_KEY}.{field}"
        form = MAPPING_FORM if field.endswith("_config") else "a file path"
        raise PipelineConfigError(f"{key} {error.field_value!r} is not {form}") from None


def _checked(check: Callable[..., T], key: str, value: Any) -> T:
    """`check(key, value)` from the source's checks, its one line as a `PipelineConfigError`:
    a command's setting is no business of the source's errors."""
    try:
        return check(key, value)
    except ZohoConfigError as error:
        raise PipelineConfigError(str(error)) from None
