"""TraceShardWriter: the last per-trace step. Writes every trace (kept or not) to parquet shards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from tracekit.ledger.final_writer import StagedFinalWriter, remove_staged_rank_files
from tracekit.ledger.parquet import ParquetShardWriter
from tracekit.ledger.shards import remove_rank_files
from tracekit.record import LEDGER_COLUMNS, LEDGER_SCHEMA


def doc_to_row(doc: Document) -> dict[str, Any]:
    md = doc.metadata
    row = {k: md.get(k) for k in LEDGER_COLUMNS}
    row["trace_id"] = doc.id
    row["completion"] = doc.text
    row["completion_chars"] = len(doc.text or "")
    return row


class TraceShardWriter(PipelineStep):
    """Write trace documents as ledger rows: `{folder}/{prefix}{rank:05d}_{part:04d}.parquet`.

    A task that is re-run (after a crash or `kill -9`) first deletes what its earlier attempt wrote,
    so a resumed build ends with exactly the rows of an uninterrupted one. `prefix` sets a resample
    round's shards apart from the first pass's in the same folder.

    With `data_folder` set (a recipe with no global stage) the shards are the final ones: ledger
    files in `folder` and dataset files in `data_folder`, in `compression`, which the finalize stage
    only moves into place (see `final_writer.py`).
    """

    type = "💽 - WRITER"
    name = "traces"

    def __init__(
        self,
        *,
        folder: str,
        rows_per_file: int = 5000,
        data_folder: str | None = None,
        compression: str = "snappy",
        prefix: str = "",
    ) -> None:
        super().__init__()
        self.folder = folder
        self.rows_per_file = rows_per_file
        self.data_folder = data_folder
        self.compression = compression
        self.prefix = prefix

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        folder = Path(self.folder)
        w: ParquetShardWriter
        if self.data_folder is not None:
            data_folder = Path(self.data_folder)
            remove_staged_rank_files(ledger_dir=folder, data_dir=data_folder, rank=rank)
            w = StagedFinalWriter(
                ledger_dir=folder,
                data_dir=data_folder,
                rank=rank,
                rows_per_file=self.rows_per_file,
                compression=self.compression,
            )
        else:
            remove_rank_files(folder, rank, prefix=self.prefix)
            w = ParquetShardWriter(
                folder, rank, LEDGER_SCHEMA, self.rows_per_file, compression="none", prefix=self.prefix
            )
        for doc in data or []:
            with self.track_time():
                w.write(doc_to_row(doc))
            self.stat_update("traces")
        w.close()
        return
        yield  # a generator, so datatrove can chain it
