"""Progress on a terminal: dlt's `log` collector, every few seconds on stderr, when stderr is a
terminal; nothing at all when it is not (cron, a scheduler, a pipe), so logs stay as they are."""

from __future__ import annotations

import sys
from typing import Optional, TextIO

import dlt
from dlt.pipeline.progress import TCollectorArg

PROGRESS_PERIOD = 5.0  # seconds between two reports of one step (and one at its start and end)


def terminal_progress(stream: Optional[TextIO] = None) -> Optional[TCollectorArg]:
    """dlt's progress collector writing to `stream` (stderr) if it is a terminal, else None."""
    stream = stream or sys.stderr
    try:
        on_terminal = stream.isatty()
    except (AttributeError, ValueError):  # a stream without a file, or a closed one
        on_terminal = False
    if not on_terminal:
        return None
    return dlt.progress.log(PROGRESS_PERIOD, logger=stream, dump_system_stats=False)
