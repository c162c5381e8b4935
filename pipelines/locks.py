"""An exclusive lock on a file, waited for a while: runs take turns through these."""

from __future__ import annotations

import fcntl
import time
from contextlib import contextmanager
from typing import Iterator

from sources.zoho_crm.errors import ZohoError

DUCKDB_WAIT = 1800.0  # seconds a run waits for another org's run to release the DuckDB file


class PipelineBusyError(ZohoError):
    """Another run holds the lock (of the same pipeline, or of the DuckDB file)."""


@contextmanager
def file_lock(path: str, wait_seconds: float, busy: str) -> Iterator[None]:
    """An exclusive lock on `path`, waited for up to `wait_seconds`; then `busy` is raised."""
    deadline = time.monotonic() + wait_seconds
    with open(path, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PipelineBusyError(busy) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
