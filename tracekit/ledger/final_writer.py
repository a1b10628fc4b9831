"""FinalShardWriter: write one shard of `ledger/` and its `dataset/` files from trace rows.

Used by `FinalizeStep` (after global decisions), and by the last per-trace step when a recipe has no
global stage: then nothing is decided after the traces are written, so the per-trace tasks write the
final shards at once (into a staging folder that finalize moves into place) instead of writing
temporary shards that finalize reads back and writes again.

Example:
    >>> w = FinalShardWriter(ledger_dir=Path("out/ledger"), data_dir=Path("out/dataset/data"),
    ...                      name="00000_0000.parquet", compression="snappy")  # doctest: +SKIP
    >>> w.write_table(table)  # an arrow table of ledger rows (LEDGER_SCHEMA)  # doctest: +SKIP
    >>> w.close()  # dataset files first, then the ledger file, each renamed into place  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tracekit.ledger.parquet import ParquetShardWriter, open_parquet_writer
from tracekit.ledger.shards import TMP_PREFIX, dataset_file, shard_name, split_of
from tracekit.parse.split import R1_AFTER_REASONING, R1_BEFORE_REASONING
from tracekit.record import DATASET_SCHEMA, LEDGER_SCHEMA


def assistant_content() -> pl.Expr:
    """`<think>\\nREASONING\\n</think>\\n\\nANSWER` for reasoning traces, the answer text otherwise."""
    has_reasoning = pl.col("reasoning").is_not_null() & (pl.col("reasoning") != "")
    return (
        pl.when(has_reasoning & pl.col("reasoning_enabled").fill_null(True))
        .then(
            pl.concat_str(
                [
                    pl.lit(R1_BEFORE_REASONING),
                    pl.col("reasoning"),
                    pl.lit(R1_AFTER_REASONING),
                    pl.col("answer_text"),
                ]
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


class FinalShardWriter:
    """`ledger_dir/NAME` with every trace and `data_dir/{split}-NAME` with the kept ones, atomically.

    Files are written as `.tmp.*` and renamed by `close()`: the dataset files first, the ledger file
    last, so a ledger shard that exists is complete together with its dataset files.
    """

    def __init__(self, *, ledger_dir: Path, data_dir: Path, name: str, compression: str) -> None:
        self.ledger_dir, self.data_dir, self.name, self.compression = ledger_dir, data_dir, name, compression
        self.ledger_tmp = ledger_dir / f"{TMP_PREFIX}{name}"
        self.ledger = open_parquet_writer(self.ledger_tmp, LEDGER_SCHEMA, compression=compression)
        self.splits: dict[str, tuple[Path, Path, pq.ParquetWriter]] = {}
        self.rows = 0
        self.kept: dict[str, int] = {}

    def write_table(self, table: pa.Table) -> None:
        """Append ledger rows (a table in LEDGER_SCHEMA); the kept ones also go to the dataset."""
        self.ledger.write_table(table)
        self.rows += table.num_rows
        rows = dataset_rows(pl.from_arrow(table))  # type: ignore[arg-type]
        for (split,), part in rows.partition_by("split", as_dict=True).items():
            key = str(split)
            if key not in self.splits:
                final = self.data_dir / dataset_file(key, self.name)
                tmp = final.with_name(f"{TMP_PREFIX}{final.name}")
                self.splits[key] = (
                    final,
                    tmp,
                    open_parquet_writer(tmp, DATASET_SCHEMA, compression=self.compression),
                )
            self.splits[key][2].write_table(part.drop("split").to_arrow().cast(DATASET_SCHEMA))
            self.kept[key] = self.kept.get(key, 0) + part.height

    def close(self) -> None:
        self.ledger.close()
        for _, _, w in self.splits.values():
            w.close()
        for final, tmp, _ in self.splits.values():
            os.replace(tmp, final)
        os.replace(self.ledger_tmp, self.ledger_dir / self.name)

    def abort(self) -> None:
        """Close and delete what was written (an error happened while writing)."""
        self.ledger.close()
        self.ledger_tmp.unlink(missing_ok=True)
        for _, tmp, w in self.splits.values():
            w.close()
            tmp.unlink(missing_ok=True)


class StagedFinalWriter(ParquetShardWriter):
    """Row-at-a-time writer of final shards (ledger + dataset) for a recipe with no global stage.

    `ParquetShardWriter`'s buffering and rolling (every `rows_per_file` rows, at most ~16 MB of text
    per row group), but each file is a `FinalShardWriter`: shards land in the staging folders
    `ledger_dir` and `data_dir`, which `FinalizeStep` moves into the build's ledger and dataset.
    """

    def __init__(
        self, *, ledger_dir: Path, data_dir: Path, rank: int, rows_per_file: int, compression: str
    ) -> None:
        super().__init__(ledger_dir, rank, LEDGER_SCHEMA, rows_per_file, compression=compression)
        self.data_dir = data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def _open(self) -> None:
        if self.writer is None:
            self.writer = FinalShardWriter(
                ledger_dir=self.folder,
                data_dir=self.data_dir,
                name=shard_name(self.rank, self.part),
                compression=self.compression,
            )

    def _close_file(self) -> None:
        if self.writer is None:
            return
        self.writer.close()
        self.files.append(self.folder / self.writer.name)
        self.writer = None
        self.part += 1
        self.rows_in_file = 0


def remove_staged_rank_files(*, ledger_dir: Path, data_dir: Path, rank: int) -> None:
    """Delete the staged shards (and temp files) an interrupted earlier attempt of this task left."""
    prefix = f"{rank:05d}_"
    for sub in (ledger_dir, data_dir):
        if not sub.exists():
            continue
        for f in sub.iterdir():
            base = f.name.removeprefix(TMP_PREFIX)
            if base.startswith(prefix) or base.removeprefix(split_of(base) + "-").startswith(prefix):
                f.unlink()
