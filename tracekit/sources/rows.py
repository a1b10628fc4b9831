"""What reading a source yields: rows, bad rows, and each task's slice of a file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class SourceError(Exception):
    """A source cannot be read at all (missing file, corrupt shard under --strict, ...)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a source: where it came from and its columns."""

    file: str
    index: int  # 0-based row (line) number in `file`
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row (or a whole file) that could not be read."""

    file: str
    index: int | None
    reason: str

    def format(self) -> str:
        where = f"{self.file}:{self.index + 1}" if self.index is not None else self.file
        return f"{where}: {self.reason}"


Item = Row | BadRow

SKIPPED_ROW = "skipped unreadable row: "  # the log line of a skipped row (read back by `tracekit build`)


def shard_range(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Contiguous [start, stop) slice of n items for this rank."""
    return n * rank // world_size, n * (rank + 1) // world_size
