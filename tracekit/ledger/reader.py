"""TraceShardReader: read trace shards back as documents (the first step of the `verify` stage)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from tracekit.ledger.shards import writer_shards
from tracekit.record import LEDGER_COLUMNS


class TraceShardReader(PipelineStep):
    """Yield the traces of this task's shards as documents (id = trace_id, text = completion).

    Task `rank` reads what task `rank` of the stage before wrote (`writer_shards`), so every sample of
    a prompt reaches the same task, in order (the math verifier votes among them).
    """

    type = "📖 - READER"
    name = "trace shards"

    def __init__(self, *, folder: str, batch_rows: int = 1000) -> None:
        super().__init__()
        self.folder = folder
        self.batch_rows = batch_rows

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        if data:
            yield from data
        for f in writer_shards(Path(self.folder), rank, world_size):
            shard = pq.ParquetFile(f)
            # a shard written before a column existed (a build resumed by a newer tracekit): it is null
            present = set(shard.schema_arrow.names)
            columns = [c for c in LEDGER_COLUMNS if c in present]
            missing = [c for c in LEDGER_COLUMNS if c not in present]
            for batch in shard.iter_batches(batch_size=self.batch_rows, columns=columns):
                for row in batch.to_pylist():
                    row.update(dict.fromkeys(missing))
                    tid, text = row["trace_id"], row["completion"] or ""
                    self.stat_update("traces")
                    yield Document(text=text, id=tid, metadata=row)
