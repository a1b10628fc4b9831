"""DecisionStage: base of the global stages (dedup, decontaminate, mix).

A global stage needs every trace at once, so it runs as one datatrove task (on any executor): it
reads the trace shards, decides, and writes one small parquet table keyed by `trace_id` (with a
`drop_reason` column and whatever else it records). `FinalizeStep` applies the tables in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import DocumentsPipeline
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep


def write_single_parquet(table: pa.Table, output_path: str) -> None:
    """Write `table` as one parquet file at output_path (a local path or an fsspec URL), atomically."""
    folder_path, _, name = output_path.rstrip("/").rpartition("/")
    folder = get_datafolder(folder_path or ".")
    tmp = f".tmp.{name}"
    with folder.open(tmp, "wb") as f:
        pq.write_table(table, f)
    folder.mv(tmp, name)


class DecisionStage(PipelineStep):
    """Subclasses implement `decide()`; the base runs it on rank 0 and writes its table."""

    def __init__(self, *, input_dir: str, output_path: str) -> None:
        super().__init__()
        self.input_dir = input_dir
        self.output_path = output_path

    def decide(self) -> Any:
        raise NotImplementedError

    def write(self, decided: Any) -> None:
        write_single_parquet(decided, self.output_path)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        if rank == 0:
            with self.track_time(unit="run"):
                decided = self.decide()
            self.write(decided)
        if data:
            yield from data
