"""The select stage's output: the kept prompts for the sample stage, the dropped ones as ledger rows.

`SelectionSplit` (last select step) writes the prompt documents still kept to
`{folder}/{rank:05d}_{part:04d}.parquet` (id, text, metadata as JSON, so replay columns travel too)
and yields each dropped prompt as one ledger row (no completion, `kept` false, its drop reason) for
the trace writer. `SelectedPromptReader` (first step of the sample stage) reads task `rank`'s
shards back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from tracekit.ledger.parquet import ParquetShardWriter
from tracekit.ledger.shards import remove_rank_files, writer_shards
from tracekit.record import empty_record, selection_row_id
from tracekit.select.base import OWNER, is_dropped

PROMPT_SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("metadata", pa.string())])


def dropped_row(doc: Document) -> Document:
    """The ledger row of a prompt the select stage dropped: its prompt columns, no sample."""
    md = empty_record()
    md.update({k: v for k, v in doc.metadata.items() if not k.startswith("_")})
    tid = selection_row_id(md["prompt_id"], f"{md['source_file']}:{md['row_index']}")
    md.update(trace_id=tid, completion="", verdict="unverified", kept=False)
    return Document(text="", id=tid, metadata=md)


class SelectionSplit(PipelineStep):
    """Kept prompt documents -> `folder` shards; dropped ones -> yielded as ledger rows."""

    type = "🎯 - SELECT"
    name = "selected prompts"

    def __init__(self, *, folder: str, rows_per_file: int = 5000) -> None:
        super().__init__()
        self.folder = folder
        self.rows_per_file = rows_per_file

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        folder = Path(self.folder)
        remove_rank_files(folder, rank)  # what an interrupted earlier attempt of this task wrote
        w = ParquetShardWriter(folder, rank, PROMPT_SCHEMA, self.rows_per_file, compression="none")
        for doc in data or []:
            if is_dropped(doc):
                self.stat_update(f"dropped_{doc.metadata.get('drop_reason')}")
                yield dropped_row(doc)
                continue
            md = {k: v for k, v in doc.metadata.items() if k != OWNER}
            w.write({"id": doc.id, "text": doc.text, "metadata": json.dumps(md, ensure_ascii=False, default=str)})
            self.stat_update("selected")
        w.close()


class SelectedPromptReader(PipelineStep):
    """Yield the prompt documents the select stage kept, task `rank` reading what task `rank` wrote."""

    type = "📖 - READER"
    name = "selected prompts"

    def __init__(self, *, folder: str, batch_rows: int = 1000) -> None:
        super().__init__()
        self.folder = folder
        self.batch_rows = batch_rows

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        if data:
            yield from data
        for f in writer_shards(Path(self.folder), rank, world_size):
            for batch in pq.ParquetFile(f).iter_batches(batch_size=self.batch_rows):
                for row in batch.to_pylist():
                    self.stat_update("prompts")
                    yield Document(text=row["text"], id=row["id"], metadata=json.loads(row["metadata"]))
