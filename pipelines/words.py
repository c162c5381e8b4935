"""Counts in words that agree with them, for what the commands print."""

from __future__ import annotations


def counted(count: int, one: str, many: str) -> str:
    """`count` and the words that agree with it: `counted(1, "record", "records")` is
    "1 record"."""
    return f"{count} {one if count == 1 else many}"
