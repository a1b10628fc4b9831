"""TraceShardWriter: the last per-trace step. Writes every trace (kept or not) to parquet shards."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from tracekit.lifeline import fault, fault_spec
from tracekit.progress import ProgressFile
from tracekit.record import LEDGER_COLUMNS, LEDGER_SCHEMA

if TYPE_CHECKING:
    from tracekit.ledger.final_writer import StagedFinalWriter


def doc_to_row(doc: Document) -> dict[str, Any]:
    md = doc.metadata
    row = {k: md.get(k) for k in LEDGER_COLUMNS}
    row["trace_id"] = doc.id
    row["completion"] = doc.text
    row["completion_chars"] = len(doc.text or "")
    return row


# Long texts are unique: a dictionary is built and thrown away for each page, so don't try.
_NO_DICTIONARY = {"prompt", "completion", "reasoning", "answer_text", "prompt_messages", "tests", "messages"}


def open_parquet_writer(path: Path, schema: pa.Schema, *, compression: str = "snappy") -> pq.ParquetWriter:
    """A parquet writer with dictionaries (and statistics) only for the short columns.

    `compression` is the recipe's codec for ledger/ and dataset/ ("none" for the build's temporary
    shards, read once). zstd is written at level 1; snappy and lz4 are 2-3x faster to write.
    """
    dict_cols = [f.name for f in schema if f.name not in _NO_DICTIONARY]
    return pq.ParquetWriter(
        path,
        schema,
        compression=compression,
        compression_level=1 if compression == "zstd" else None,
        use_dictionary=dict_cols,
        write_statistics=dict_cols,
    )


def shard_name(rank: int, part: int) -> str:
    return f"{rank:05d}_{part:04d}.parquet"


def remove_rank_files(folder: Path, rank: int) -> None:
    """Delete what an interrupted earlier attempt of this task left (its shards and temp files)."""
    if not folder.exists():
        return
    prefix = f"{rank:05d}_"
    for f in folder.iterdir():
        if f.name.startswith(prefix) or f.name.startswith(f".tmp.{prefix}"):
            f.unlink()


class ParquetShardWriter:
    """Row-group-at-a-time parquet writer that rolls files and publishes each one atomically."""

    def __init__(
        self,
        folder: Path,
        rank: int,
        schema: pa.Schema,
        rows_per_file: int,
        row_group: int = 1000,
        compression: str = "snappy",
    ) -> None:
        self.folder, self.rank, self.schema, self.compression = folder, rank, schema, compression
        self.rows_per_file, self.row_group = rows_per_file, row_group
        self.part, self.rows_in_file = 0, 0
        self.buf: list[dict[str, Any]] = []
        self.buf_bytes = 0
        self.max_buffer_bytes = 16 << 20  # a row group holds at most ~16 MB of text: memory stays flat
        self.writer: Any = None  # pq.ParquetWriter here; subclasses may write elsewhere (write_table, close)
        self.tmp: Path | None = None
        self.files: list[Path] = []
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, row: dict[str, Any]) -> None:
        self.buf.append(row)
        self.buf_bytes += len(row.get("completion") or "") + len(row.get("reasoning") or "")
        if (
            len(self.buf) >= self.row_group
            or self.buf_bytes >= self.max_buffer_bytes
            or self.rows_in_file + len(self.buf) >= self.rows_per_file
        ):
            self._flush()

    def write_table(self, table: pa.Table) -> None:
        if self.buf:
            self._flush()
        self._open()
        assert self.writer is not None
        self.writer.write_table(table.cast(self.schema))
        self.rows_in_file += table.num_rows
        if self.rows_in_file >= self.rows_per_file:
            self._close_file()

    def _open(self) -> None:
        if self.writer is None:
            name = shard_name(self.rank, self.part)
            self.tmp = self.folder / f".tmp.{name}"
            self.writer = open_parquet_writer(self.tmp, self.schema, compression=self.compression)

    def _flush(self) -> None:
        if not self.buf:
            return
        self._open()
        assert self.writer is not None
        self.writer.write_table(pa.Table.from_pylist(self.buf, schema=self.schema))
        self.rows_in_file += len(self.buf)
        self.buf, self.buf_bytes = [], 0
        if self.rows_in_file >= self.rows_per_file:
            self._close_file()

    def _close_file(self) -> None:
        if self.writer is None:
            return
        self.writer.close()
        assert self.tmp is not None
        final = self.folder / shard_name(self.rank, self.part)
        os.replace(self.tmp, final)
        self.files.append(final)
        self.writer, self.tmp = None, None
        self.part += 1
        self.rows_in_file = 0

    def close(self) -> list[Path]:
        self._flush()
        self._close_file()
        return self.files


class TraceShardWriter(PipelineStep):
    """Write trace documents as ledger rows: `{folder}/{rank:05d}_{part:04d}.parquet`.

    A task that is re-run (after a crash or `kill -9`) first deletes what its earlier attempt wrote,
    so a resumed build ends with exactly the rows of an uninterrupted one.

    With `final=True` (a recipe with no global stage) the shards are the final ones: ledger and
    dataset files in `compression`, under `{folder}/ledger/` and `{folder}/data/`, which the finalize
    stage only moves into place (see `final_writer.py`).
    """

    type = "💽 - WRITER"
    name = "traces"

    def __init__(
        self,
        *,
        folder: str,
        rows_per_file: int = 5000,
        final: bool = False,
        compression: str = "snappy",
        progress_dir: str | None = None,
        progress_name: str = "sample",
    ) -> None:
        super().__init__()
        self.folder = folder
        self.rows_per_file = rows_per_file
        self.final = final
        self.compression = compression
        self.progress_dir = progress_dir
        self.progress_name = progress_name

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        folder = Path(self.folder)
        w: ParquetShardWriter | StagedFinalWriter
        if self.final:
            from tracekit.ledger.final_writer import StagedFinalWriter, remove_staged_rank_files

            remove_staged_rank_files(folder, rank)
            w = StagedFinalWriter(folder, rank, self.rows_per_file, compression=self.compression)
        else:
            remove_rank_files(folder, rank)
            w = ParquetShardWriter(folder, rank, LEDGER_SCHEMA, self.rows_per_file, compression="none")
        progress = ProgressFile(self.progress_dir, self.progress_name, rank) if self.progress_dir else None
        spec, n = fault_spec(), 0
        for doc in data or []:
            with self.track_time():
                w.write(doc_to_row(doc))
            self.stat_update("traces")
            if progress:
                progress.add("rows")
            if spec and rank == 0:
                n += 1
                fault("write", n, spec)
        w.close()
        if progress:
            progress.flush()
        return
        yield  # a generator, so datatrove can chain it
