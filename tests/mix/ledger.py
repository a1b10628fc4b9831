"""Hand-made ledgers for the mix tests: known supply per domain/verdict, several traces per prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tracekit.record import LEDGER_SCHEMA, empty_record, prompt_id


def trace(
    tid: str,
    prompt: str,
    *,
    source: str = "s",
    domain: str = "math",
    verdict: str = "correct",
    sample: int = 0,
    tokens: int = 100,
    kept: bool = True,
) -> dict[str, Any]:
    rec = empty_record()
    rec.update(
        trace_id=tid,
        prompt=prompt,
        prompt_id=prompt_id(source, prompt),
        source=source,
        domain=domain,
        sample_index=sample,
        verdict=verdict,
        completion_tokens=tokens,
        completion=f"<think>{tid}</think> done",
        kept=kept,
        drop_reason=None if kept else "truncated",
    )
    return rec


def make_rows(
    *, prompts: int, per_prompt: int, source: str = "s", domain: str = "math", verdict: str = "correct"
) -> list[dict[str, Any]]:
    return [
        trace(
            f"{source}-{p}-{i}",
            f"{source} question {p}?",
            source=source,
            domain=domain,
            verdict=verdict,
            sample=i,
        )
        for p in range(prompts)
        for i in range(per_prompt)
    ]


def write_ledger(folder: Path, rows: list[dict[str, Any]], shards: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    for s in range(shards):
        pq.write_table(
            pa.Table.from_pylist(rows[s::shards], schema=LEDGER_SCHEMA), folder / f"{s:05d}_0000.parquet"
        )
    return folder
