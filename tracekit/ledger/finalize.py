"""FinalizeStep: merge the global decisions into every trace and write the ledger and the dataset.

Global stages (dedup, decontamination, mix) each write one decision table keyed by `trace_id`.
This step reads each trace shard a row group at a time, applies the decisions in order (a trace
keeps the first drop reason it gets), writes `ledger/<shard>.parquet` with every trace, and writes
the kept traces to `dataset/data/<split>-<shard>.parquet` in the messages format.
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

from tracekit.ledger.reader import shard_files
from tracekit.ledger.writer import open_parquet_writer
from tracekit.lifeline import fault, fault_spec
from tracekit.progress import ProgressFile
from tracekit.record import DATASET_SCHEMA, LEDGER_COLUMNS, LEDGER_SCHEMA

DECISION_COLUMNS = ("duplicate_of", "dedup_cluster", "contamination", "bucket", "split")


def assistant_content() -> pl.Expr:
    """`<think>\\nREASONING\\n</think>\\n\\nANSWER` for reasoning traces, the answer text otherwise."""
    has_reasoning = pl.col("reasoning").is_not_null() & (pl.col("reasoning") != "")
    return (
        pl.when(has_reasoning & pl.col("reasoning_enabled").fill_null(True))
        .then(
            pl.concat_str(
                [pl.lit("<think>\n"), pl.col("reasoning"), pl.lit("\n</think>\n\n"), pl.col("answer_text")]
            )
        )
        .otherwise(pl.col("answer_text"))
    )


def dataset_rows(df: pl.DataFrame) -> pl.DataFrame:
    """Dataset rows (messages format) of the kept traces in df."""
    kept = df.filter(pl.col("kept"))
    assistant = pl.struct(role=pl.lit("assistant"), content=assistant_content())
    return kept.select(
        messages=pl.concat_list([pl.col("prompt_messages"), assistant]),
        trace_id="trace_id",
        prompt_id="prompt_id",
        source="source",
        domain="domain",
        bucket="bucket",
        num_tokens=pl.col("prompt_tokens") + pl.col("completion_tokens"),
        verified=pl.col("verdict") == "correct",
        split=pl.col("split").fill_null("train"),
    )


def apply_decisions(df: pl.DataFrame, decisions: list[pl.DataFrame]) -> pl.DataFrame:
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
        for c in DECISION_COLUMNS:
            if f"{c}__dec" in df.columns:
                updates.append(pl.coalesce(pl.col(f"{c}__dec"), pl.col(c)).alias(c))
        df = df.with_columns(updates).drop([c for c in df.columns if c.endswith("__dec")])
    return df


def _atomic_parquet(path: Path, schema: pa.Schema) -> tuple[Path, pq.ParquetWriter]:
    tmp = path.with_name(f".tmp.{path.name}")
    return tmp, open_parquet_writer(tmp, schema)


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
        dataset_dir: str,
        batch_rows: int = 256,
        progress_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.traces_dir = traces_dir
        self.decision_paths = decision_paths
        self.ledger_dir = ledger_dir
        self.dataset_dir = dataset_dir
        self.batch_rows = batch_rows
        self.progress_dir = progress_dir

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        files = shard_files(Path(self.traces_dir), rank, world_size)
        decisions = [pl.read_parquet(p) for p in self.decision_paths if Path(p).exists()]
        ledger_dir, data_dir = Path(self.ledger_dir), Path(self.dataset_dir) / "data"
        ledger_dir.mkdir(parents=True, exist_ok=True)
        data_dir.mkdir(parents=True, exist_ok=True)
        progress = ProgressFile(self.progress_dir, "finalize", rank) if self.progress_dir else None
        for f in files:
            for stale in (ledger_dir / f".tmp.{f.name}", *data_dir.glob(f".tmp.*-{f.name}")):
                stale.unlink(missing_ok=True)
            with self.track_time(unit="shard"):
                n = self._finalize_file(f, decisions, ledger_dir, data_dir)
            if progress:
                progress.add("rows", n)
            if rank == 0:
                fault("finalize", files.index(f) + 1, fault_spec())
        if progress:
            progress.flush()
        return
        yield

    def _finalize_file(self, f: Path, decisions: list[pl.DataFrame], ledger_dir: Path, data_dir: Path) -> int:
        n = 0
        ltmp, lw = _atomic_parquet(ledger_dir / f.name, LEDGER_SCHEMA)
        dwriters: dict[str, tuple[Path, Path, pq.ParquetWriter]] = {}
        try:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=self.batch_rows):
                df = apply_decisions(pl.from_arrow(pa.Table.from_batches([batch])), decisions)  # type: ignore[arg-type]
                lw.write_table(df.select(LEDGER_COLUMNS).to_arrow().cast(LEDGER_SCHEMA))
                self.stat_update("traces", value=df.height)
                n += df.height
                rows = dataset_rows(df)
                for (split,), part in rows.partition_by("split", as_dict=True).items():
                    if str(split) not in dwriters:
                        final = data_dir / f"{split}-{f.stem}.parquet"
                        tmp, w = _atomic_parquet(final, DATASET_SCHEMA)
                        dwriters[str(split)] = (final, tmp, w)
                    table = part.drop("split").to_arrow().cast(DATASET_SCHEMA)
                    dwriters[str(split)][2].write_table(table)
                    self.stat_update(f"dataset_{split}", value=part.height)
        finally:
            lw.close()
            for _, _, w in dwriters.values():
                w.close()
        for final, tmp, _ in dwriters.values():
            os.replace(tmp, final)
        os.replace(ltmp, ledger_dir / f.name)
        return n
