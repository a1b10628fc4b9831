"""FinalizeStep: merge the global decisions into every trace and write the ledger and the dataset.

Global stages (dedup, decontamination, mix) each write one decision table keyed by `trace_id`.
This step reads each trace shard a row group at a time, applies the decisions in order (a trace
keeps the first drop reason it gets), writes `ledger/<shard>.parquet` with every trace, and writes
the kept traces to `dataset/data/<split>-<shard>.parquet` in the messages format.

A recipe with no global stage has nothing to apply: its per-trace tasks already wrote the final
shards into staging folders (`staged_ledger_dir`, `staged_data_dir`, see `final_writer.py`), and
this step only moves them into place, shard by shard (dataset files first, the ledger file last).

The step yields one document per shard it finished (`id` = the shard's name, `metadata["rows"]` =
its rows), so a step after it can count progress without knowing about shards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from tracekit.ledger.final_writer import FinalShardWriter, dataset_rows
from tracekit.ledger.shards import (
    TMP_PREFIX,
    dataset_file,
    dataset_files_of,
    list_shards,
    split_of,
    task_shards,
)
from tracekit.record import LEDGER_COLUMNS, LEDGER_SCHEMA

__all__ = ["FinalizeStep", "apply_decisions", "dataset_rows"]


def apply_decisions(df: pl.DataFrame, decisions: list[pl.DataFrame]) -> pl.DataFrame:
    """Apply decision tables in order: the first drop reason a kept trace gets drops it; every other
    ledger column a table holds (bucket, split, duplicate_of, contamination, ...) overrides the trace's."""
    for dec in decisions:
        sub = dec.filter(pl.col("trace_id").is_in(df["trace_id"].implode()))
        if sub.height == 0:
            continue
        df = df.join(sub, on="trace_id", how="left", suffix="__dec")
        updates = []
        if "drop_reason__dec" in df.columns:
            new_reason = pl.col("drop_reason__dec")
            updates += [
                pl.when(pl.col("kept") & new_reason.is_not_null())
                .then(new_reason)
                .otherwise(pl.col("drop_reason"))
                .alias("drop_reason"),
                (pl.col("kept") & new_reason.is_null()).alias("kept"),
            ]
        decided = [c.removesuffix("__dec") for c in df.columns if c.endswith("__dec")]
        for c in decided:
            if c != "drop_reason":
                updates.append(pl.coalesce(pl.col(f"{c}__dec"), pl.col(c)).alias(c))
        df = df.with_columns(updates).drop([c for c in df.columns if c.endswith("__dec")])
    return df


class FinalizeStep(PipelineStep):
    """Write `ledger/` and `dataset/` from the trace shards and the decision tables."""

    type = "🏁 - FINALIZE"
    name = "finalize"

    def __init__(
        self,
        *,
        traces_dir: str,
        decision_paths: list[str],
        ledger_dir: str,
        data_dir: str,
        compression: str = "snappy",
        staged_ledger_dir: str | None = None,
        staged_data_dir: str | None = None,
        batch_rows: int = 256,
    ) -> None:
        super().__init__()
        self.traces_dir = traces_dir
        self.decision_paths = decision_paths
        self.ledger_dir = ledger_dir
        self.data_dir = data_dir
        self.compression = compression
        self.staged_ledger_dir = staged_ledger_dir
        self.staged_data_dir = staged_data_dir
        self.batch_rows = batch_rows

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        staged = Path(self.staged_ledger_dir) if self.staged_ledger_dir else None
        if staged:  # other tasks move their shards away meanwhile: pick by the writer's rank in the name
            files = [f for f in list_shards(staged) if int(f.name[:5]) % world_size == rank]
        else:
            files = task_shards(Path(self.traces_dir), rank, world_size)
        decisions = [pl.read_parquet(p) for p in self.decision_paths if Path(p).exists()]
        ledger_dir, data_dir = Path(self.ledger_dir), Path(self.data_dir)
        ledger_dir.mkdir(parents=True, exist_ok=True)
        data_dir.mkdir(parents=True, exist_ok=True)
        for f in files:
            temp_data = data_dir.glob(TMP_PREFIX + dataset_file("*", f.name))
            for stale in (ledger_dir / f"{TMP_PREFIX}{f.name}", *temp_data):
                stale.unlink(missing_ok=True)
            with self.track_time(unit="shard"):
                if staged:
                    n = self._move_staged(f, Path(self.staged_data_dir or ""), ledger_dir, data_dir)
                else:
                    n = self._finalize_file(f, decisions, ledger_dir, data_dir)
            yield Document(text="", id=f.name, metadata={"rows": n})

    def _move_staged(self, f: Path, staged_data: Path, ledger_dir: Path, data_dir: Path) -> int:
        n = pq.ParquetFile(f).metadata.num_rows
        for part in dataset_files_of(staged_data, f.name):
            kept = pq.ParquetFile(part).metadata.num_rows
            self.stat_update(f"dataset_{split_of(part.name)}", value=kept)
            os.replace(part, data_dir / part.name)
        os.replace(f, ledger_dir / f.name)
        self.stat_update("traces", value=n)
        return n

    def _finalize_file(self, f: Path, decisions: list[pl.DataFrame], ledger_dir: Path, data_dir: Path) -> int:
        w = FinalShardWriter(
            ledger_dir=ledger_dir, data_dir=data_dir, name=f.name, compression=self.compression
        )
        try:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=self.batch_rows):
                df = apply_decisions(pl.from_arrow(pa.Table.from_batches([batch])), decisions)  # type: ignore[arg-type]
                w.write_table(df.select(LEDGER_COLUMNS).to_arrow().cast(LEDGER_SCHEMA))
        except BaseException:
            w.abort()
            raise
        w.close()
        self.stat_update("traces", value=w.rows)
        for split, kept in w.kept.items():
            self.stat_update(f"dataset_{split}", value=kept)
        return w.rows
