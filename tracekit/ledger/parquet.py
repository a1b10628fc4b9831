"""Parquet writing of ledger and dataset shards: one row group at a time, each file published atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tracekit.ledger.shards import TMP_PREFIX, shard_name

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
        prefix: str = "",
    ) -> None:
        self.folder, self.rank, self.schema, self.compression = folder, rank, schema, compression
        self.prefix = prefix
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
            name = shard_name(self.rank, self.part, prefix=self.prefix)
            self.tmp = self.folder / f"{TMP_PREFIX}{name}"
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
        final = self.folder / shard_name(self.rank, self.part, prefix=self.prefix)
        os.replace(self.tmp, final)
        self.files.append(final)
        self.writer, self.tmp = None, None
        self.part += 1
        self.rows_in_file = 0

    def close(self) -> list[Path]:
        self._flush()
        self._close_file()
        return self.files
