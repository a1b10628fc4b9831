"""Streaming reads of ledger parquet shards and the single-file writes of the global stages.

Paths may be local folders or any fsspec URL datatrove understands (s3://, hf://, ...), so the
global stages run the same on the local, Slurm and Ray executors: they share nothing but files.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.io import get_datafolder

from tracekit.record import LEDGER_SCHEMA


def iter_ledger_batches(
    input_dir: str, *, columns: Sequence[str], batch_size: int = 4096
) -> Iterator[pa.RecordBatch]:
    """Record batches of `columns` from every `*.parquet` under input_dir, in file order.

    A column missing from a shard is returned as nulls (typed as in LEDGER_SCHEMA), so a stage also
    runs over partial ledgers (e.g. re-curated trace sets without token counts).
    """
    folder = get_datafolder(input_dir)
    for path in sorted(folder.list_files(glob_pattern="**/*.parquet", recursive=True)):
        with folder.open(path, "rb") as f:
            pf = pq.ParquetFile(f)
            present = set(pf.schema_arrow.names)
            wanted = [c for c in columns if c in present]
            for batch in pf.iter_batches(batch_size=batch_size, columns=wanted):
                yield _with_columns(batch, columns)


def _with_columns(batch: pa.RecordBatch, columns: Sequence[str]) -> pa.RecordBatch:
    arrays = []
    for name in columns:
        if name in batch.schema.names:
            arrays.append(batch.column(name))
        else:
            typ = LEDGER_SCHEMA.field(name).type if name in LEDGER_SCHEMA.names else pa.string()
            arrays.append(pa.nulls(batch.num_rows, type=typ))
    return pa.RecordBatch.from_arrays(arrays, names=list(columns))
