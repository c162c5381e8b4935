"""Locks on files: runs take turns through exclusive ones, readers look through shared ones."""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from typing import Iterator, Optional

from pipelines.exceptions import PipelineConfigError, PipelineError

DUCKDB_WAIT = 1800.0  # seconds a run waits for another org's run to release the DuckDB file


class PipelineBusyError(PipelineError):
    """Another run holds the lock (of the same pipeline, or of the DuckDB file)."""


def user_name() -> str:
    """The user this process runs as."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return f"uid {os.geteuid()}"


def lock_file_problem(path: str, error: Optional[OSError] = None) -> Optional[str]:
    """Why a run cannot take the lock file `path` (a directory in its place, a file or folder
    this user may not write), in one line with the fix; None when it can."""
    user = user_name()
    if error is None:
        if os.path.isdir(path):
            error = IsADirectoryError(21, "Is a directory")
        elif os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
            error = PermissionError(13, "Permission denied")
        elif not os.path.exists(path) and not os.access(os.path.dirname(path), os.W_OK | os.X_OK):
            error = PermissionError(13, "Permission denied (its folder)")
        else:
            return None
    fix = (
        "remove what stands there (it is a directory)"
        if isinstance(error, IsADirectoryError)
        else f"give {user} read and write access to it (chown {user} {path}), or run as its owner"
    )
    return (
        f"runs cannot open their lock file {path} ({error.strerror or error}) as {user}: {fix}"
    )


@contextmanager
def file_lock(path: str, wait_seconds: float, busy: str) -> Iterator[None]:
    """An exclusive lock on `path`, waited for up to `wait_seconds`; then `busy` is raised.
    A lock file this user cannot open is a `PipelineConfigError` naming it."""
    deadline = time.monotonic() + wait_seconds
    try:
        handle = open(path, "a+")
    except OSError as error:
        raise PipelineConfigError(lock_file_problem(path, error)) from None
    with handle:
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


@contextmanager
def shared_lock(path: str) -> Iterator[bool]:
    """A shared lock on `path` while it is free, never waited for: True while held, False when
    a run holds it. Nothing is created: without a lock file (or one this user cannot open,
    which no run can take either) it is True, locking nothing."""
    try:
        handle = open(path, "rb")
    except OSError:
        yield True
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            held = True
        except BlockingIOError:
            held = False
        try:
            yield held
        finally:
            if held:
                fcntl.flock(handle, fcntl.LOCK_UN)
