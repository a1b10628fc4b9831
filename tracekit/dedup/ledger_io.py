"""Streaming reads of ledger parquet shards and the single-file writes of the global stages.

Paths may be local folders or any fsspec URL datatrove understands (s3://, hf://, ...), so the
global stages run the same on the local, Slurm and Ray executors: they share nothing but files.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.io import get_datafolder

from tracekit.record import LEDGER_SCHEMA

T = TypeVar("T")


class LedgerShardError(ValueError):
    """A ledger shard that cannot be read; the message names the file."""


def iter_ledger_batches(
    input_dir: str, *, columns: Sequence[str], batch_size: int = 4096
) -> Iterator[pa.RecordBatch]:
    """Record batches of `columns` from every `*.parquet` under input_dir, in file order.

    A column missing from a shard is returned as nulls (typed as in LEDGER_SCHEMA), so a stage also
    runs over partial ledgers (e.g. re-curated trace sets without token counts).
    """
    folder = get_datafolder(input_dir)
    for path in sorted(folder.list_files(glob_pattern="**/*.parquet", recursive=True)):
        with folder.open(path, "rb") as f, _named(input_dir, path):
            pf = pq.ParquetFile(f)
            present = set(pf.schema_arrow.names)
            wanted = [c for c in columns if c in present]
            for batch in pf.iter_batches(batch_size=batch_size, columns=wanted):
                yield _with_columns(batch, columns)


@contextmanager
def _named(input_dir: str, path: str) -> Iterator[None]:
    """Re-raise a read error of one shard as LedgerShardError naming the file."""
    try:
        yield
    except (pa.ArrowException, OSError) as exc:
        raise LedgerShardError(f"{input_dir.rstrip('/')}/{path}: unreadable ledger shard ({exc})") from exc


def ledger_footers(input_dir: str) -> tuple[set[str], int]:
    """(column names present in any shard, total rows) of the `*.parquet` shards under input_dir.

    Only the footers are read.
    """
    folder = get_datafolder(input_dir)
    names: set[str] = set()
    rows = 0
    for path in folder.list_files(glob_pattern="**/*.parquet", recursive=True):
        with folder.open(path, "rb") as f, _named(input_dir, path):
            shard = pq.ParquetFile(f)
            names.update(shard.schema_arrow.names)
            rows += shard.metadata.num_rows
    return names, rows


def prefetched(items: Iterator[T], *, depth: int = 2) -> Iterator[T]:
    """`items`, produced up to `depth` ahead on a background thread.

    Parquet decoding releases the GIL, so reading the next batches overlaps with the work done on
    the current one. An exception in the producer is raised here, at the item where it happened;
    closing this generator early stops the producer.
    """
    q: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(message: tuple[str, object]) -> bool:
        """Queue `message` unless the consumer has stopped (then return False)."""
        while not stop.is_set():
            try:
                q.put(message, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(("item", item)):
                    return
            offer(("end", None))
        except BaseException as exc:  # handed to the consumer
            offer(("error", exc))

    thread = threading.Thread(target=produce, name="tracekit-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "end":
                return
            if kind == "error":
                assert isinstance(value, BaseException)
                raise value
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


def _with_columns(batch: pa.RecordBatch, columns: Sequence[str]) -> pa.RecordBatch:
    arrays = []
    for name in columns:
        if name in batch.schema.names:
            arrays.append(batch.column(name))
        else:
            typ = LEDGER_SCHEMA.field(name).type if name in LEDGER_SCHEMA.names else pa.string()
            arrays.append(pa.nulls(batch.num_rows, type=typ))
    return pa.RecordBatch.from_arrays(arrays, names=list(columns))
