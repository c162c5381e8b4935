"""Progress on a terminal, a few lines a run: one line per step (extract, normalize, load) with
its duration, and while a step runs one line redrawn in place with its time, rows, Zoho calls
and the module called last. Written on stderr when stderr is a terminal; nothing at all when it
is not (cron, a scheduler, a pipe), so logs stay as they are. Built on dlt's public `Collector`
hooks: `update` (rows by table, and dlt's own `Resources`/`Files`/`Jobs` counters), the step
context (`_start`/`_stop`, the base's abstract methods) and `on_end_trace`."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Optional, TextIO, Tuple

from dlt.common.runtime.collector_base import Collector

REDRAW_PERIOD = 0.1  # seconds between two redraws of the line in place
NOT_ROWS = ("Resources", "Files", "Jobs")  # dlt's counters that are not rows of a table
CLEAR = "\r\x1b[K"  # back to the start of the line, and erase it

Calls = Callable[[], Tuple[int, Optional[str]]]  # (Zoho calls so far, module called last)


def no_calls() -> Tuple[int, Optional[str]]:
    return 0, None


class TerminalProgress(Collector):
    """dlt's progress of one run, on a terminal `stream`, in a few lines (see the module).

    A step's line is finished (its newline written) when another step starts or dlt's
    `pipeline.run` ends (`on_end_trace`); a step dlt runs twice in a row (two extracts of one
    `pipeline.run`) goes on on the same line."""

    def __init__(self, stream: TextIO, calls: Calls = no_calls) -> None:
        self.stream = stream
        self.calls = calls
        self.step = ""  # dlt's name of the step, e.g. "Extract zoho_crm"
        self.shown = ""  # the step on the current line ("Extract"), "" once the line is finished
        self.rows = 0
        self.jobs = 0
        self.started = 0.0
        self.calls_before = 0
        self.drawn_at = 0.0

    def follow(self, calls: Calls) -> None:
        """Show the Zoho calls and the module `calls()` reports (the run's client)."""
        self.calls = calls

    def update(
        self,
        name: str,
        inc: int = 1,
        total: Optional[int] = None,
        inc_total: Optional[int] = None,
        message: Optional[str] = None,
        label: Optional[str] = None,
    ) -> None:
        if label:
            return
        if name == "Jobs":
            self.jobs += inc
        elif name not in NOT_ROWS:
            self.rows += inc
        now = time.monotonic()
        if now - self.drawn_at >= REDRAW_PERIOD:
            self.drawn_at = now
            self._draw(now, running=True)

    def _start(self, step: str) -> None:
        step = step.split(" ")[0]  # dlt's "Normalize zoho_crm in 1796185283.36": Normalize
        if step != self.shown:
            self._finish_line()
            self.shown = step
            self.rows = self.jobs = 0
            self.started = time.monotonic()
            self.calls_before = self.calls()[0]
        self.drawn_at = time.monotonic()

    def _stop(self) -> None:
        self._draw(time.monotonic(), running=False)  # the line stays open: see the class

    def on_end_trace(self, trace: Any, pipeline: Any, send_state: bool) -> None:
        self._finish_line()

    def _finish_line(self) -> None:
        if self.shown:
            self._write("\n")
            self.shown = ""

    def _draw(self, now: float, running: bool) -> None:
        calls, module = self.calls()
        parts = [f"{self.shown:<10}{now - self.started:6.1f} s"]
        parts.append(f"{self.jobs:,} jobs" if self.shown == "Load" else f"{self.rows:,} rows")
        if calls > self.calls_before:
            parts.append(f"{calls - self.calls_before:,} Zoho calls")
            if running and module:
                parts.append(f"now {module}")
        self._write(CLEAR + "  ".join(parts))

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def terminal_progress(stream: Optional[TextIO] = None) -> Optional[TerminalProgress]:
    """A progress collector writing to `stream` (stderr) if it is a terminal, else None."""
    stream = stream or sys.stderr
    try:
        on_terminal = stream.isatty()
    except (AttributeError, ValueError):  # a stream without a file, or a closed one
        on_terminal = False
    return TerminalProgress(stream) if on_terminal else None
