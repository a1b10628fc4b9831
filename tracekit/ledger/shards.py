"""Ledger shards on disk: their names, which task owns which, listing and removing them.

A shard is `{prefix}{rank:05d}_{part:04d}.parquet`: written by task `rank`, `part` counting the files
it rolled. A resample round writes beside the first pass under its own prefix (`r01-`), so a task of
the round that is re-run removes only what its own earlier attempt wrote. A dataset file carries its
split in front of the name of the ledger shard it came from: `{split}-{shard}`.

    >>> shard_name(3, 1), shard_name(0, 0, prefix="r01-")
    ('00003_0001.parquet', 'r01-00000_0000.parquet')
    >>> dataset_file("train", "00003_0001.parquet"), split_of("test-r01-00000_0000.parquet")
    ('train-00003_0001.parquet', 'test')
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

TMP_PREFIX = ".tmp."
# the split in a dataset file's path, for DuckDB's regexp_extract (splits are lowercase words)
SPLIT_REGEX = r"([a-z]+)-[^/]*\.parquet$"


def shard_name(rank: int, part: int, *, prefix: str = "") -> str:
    return f"{prefix}{rank:05d}_{part:04d}.parquet"


def dataset_file(split: str, shard: str) -> str:
    return f"{split}-{shard}"


def split_of(name: str) -> str:
    return name.partition("-")[0]


def dataset_files_of(folder: Path, shard: str) -> list[Path]:
    """The dataset files (one per split) written from ledger shard `shard`."""
    return sorted(folder.glob(dataset_file("*", shard)))


def list_shards(folder: Path) -> list[Path]:
    """The published parquet shards of a folder, in name order (temporary `.tmp.*` files left out)."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))


def task_shards(folder: Path, rank: int, world_size: int) -> list[Path]:
    """This task's shards: every world_size-th file in name order (the same split on every run)."""
    return list_shards(folder)[rank::world_size]


def writer_rank(path: Path) -> int | None:
    """The task that wrote a shard (its `{rank:05d}` after any prefix), None for another file name."""
    stem = path.name.removesuffix(".parquet")
    rank, sep, part = stem[-10:].partition("_")
    return int(rank) if sep and rank.isdigit() and part.isdigit() and len(rank) == 5 else None


def writer_shards(folder: Path, rank: int, world_size: int) -> list[Path]:
    """The shards written by the tasks `rank`, `rank + world_size`, ... in name order: a task of the next
    stage reads whole the output of the task(s) before it, so a prompt's samples (written one after the
    other, possibly across a shard roll) are never split between two tasks.

        >>> [writer_rank(Path(n)) for n in ("00003_0001.parquet", "r01-00012_0000.parquet", "x.parquet")]
        [3, 12, None]
    """
    return [p for p in list_shards(folder) if (writer_rank(p) or 0) % world_size == rank]


def remove_rank_files(folder: Path, rank: int, *, prefix: str = "") -> None:
    """Delete what an interrupted earlier attempt of this task left (its shards and temp files)."""
    if not folder.exists():
        return
    mine = f"{prefix}{rank:05d}_"
    for f in folder.iterdir():
        if f.name.startswith(mine) or f.name.startswith(f"{TMP_PREFIX}{mine}"):
            f.unlink()


def count_by(folder: Path, column: str, *, prefix: str = "") -> dict[str, int]:
    """Rows per value of `column` in the shards of `folder` whose names start with `prefix`."""
    counts: dict[str, int] = {}
    for f in list_shards(folder):
        if not f.name.startswith(prefix):
            continue
        for row in pc.value_counts(pq.read_table(f, columns=[column])[column]).to_pylist():
            counts[row["values"]] = counts.get(row["values"], 0) + row["counts"]
    return counts
