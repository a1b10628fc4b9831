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

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tracekit.record import LEDGER_SCHEMA

TMP_PREFIX = ".tmp."
# a build's Hub dataset folder and the folder of its data files inside it (BuildLayout spells its paths
# with these; a stage that is handed a build folder, e.g. the trainer's `data:`, finds the files with them)
DATASET_DIR, DATA_DIR = "dataset", "data"


class LedgerShardError(ValueError):
    """A ledger shard that cannot be read; the message names the file."""
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


@contextmanager
def _named(path: Path) -> Iterator[None]:
    """Re-raise a read error of one shard as LedgerShardError naming the file."""
    try:
        yield
    except (pa.ArrowException, OSError) as exc:
        raise LedgerShardError(f"{path}: unreadable ledger shard ({exc})") from exc


def iter_ledger_batches(
    folder: str | Path, *, columns: Sequence[str], batch_size: int = 4096
) -> Iterator[pa.RecordBatch]:
    """Record batches of `columns` from every shard of `folder`, in name order.

    A column missing from a shard is returned as nulls (typed as in LEDGER_SCHEMA), so a stage also
    runs over partial ledgers (e.g. re-curated trace sets without token counts).
    """
    for path in list_shards(Path(folder)):
        with _named(path):
            shard = pq.ParquetFile(path)
            present = set(shard.schema_arrow.names)
            wanted = [c for c in columns if c in present]
            for batch in shard.iter_batches(batch_size=batch_size, columns=wanted):
                yield _with_columns(batch, columns)


def ledger_footers(folder: str | Path) -> tuple[set[str], int]:
    """(column names present in any shard, total rows) of the shards of `folder`; only footers are read."""
    names: set[str] = set()
    rows = 0
    for path in list_shards(Path(folder)):
        with _named(path):
            shard = pq.ParquetFile(path)
            names.update(shard.schema_arrow.names)
            rows += shard.metadata.num_rows
    return names, rows


def _with_columns(batch: pa.RecordBatch, columns: Sequence[str]) -> pa.RecordBatch:
    arrays = []
    for name in columns:
        if name in batch.schema.names:
            arrays.append(batch.column(name))
        else:
            typ = LEDGER_SCHEMA.field(name).type if name in LEDGER_SCHEMA.names else pa.string()
            arrays.append(pa.nulls(batch.num_rows, type=typ))
    return pa.RecordBatch.from_arrays(arrays, names=list(columns))
