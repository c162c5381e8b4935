"""The errors the commands and the runner raise on purpose, apart from the source's `ZohoError`:
a DuckDB file, a lock, a command's argument or setting is not Zoho's business.
`pipelines.errors` maps them, and every other error, to one line and an exit code."""

from __future__ import annotations

from typing import Any

from sources.zoho_crm.redact import redact


class PipelineError(Exception):
    """Base of every error `pipelines/` raises on purpose; its message is redacted (it reaches
    the terminal, logs and the `runs` table)."""

    def __init__(self, message: Any = "", *args: Any) -> None:
        super().__init__(redact(message), *args)


class PipelineConfigError(PipelineError):
    """A setting, command-line argument or file the commands use is wrong; the message names
    it and the fix (exit 2, as the source's `ZohoConfigError`)."""
