"""The eval ledger: every sample as a row of the build's ledger schema, under OUT/ledger/.

Columns mean what they mean in a build, with the evaluated model in the `teacher_*` columns and the
benchmark as `source`. `kept` is true for correct samples; the others carry the drop reason a build
would give them (`teacher_error`, `truncated`, `verify_error`, `incorrect`), so `tracekit stats OUT`
shows each benchmark's funnel and any DuckDB query over `traces` works.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tracekit.eval.sample import EvalSample
from tracekit.ledger.parquet import ParquetShardWriter
from tracekit.ledger.shards import remove_rank_files
from tracekit.record import LEDGER_SCHEMA, empty_record, prompt_id, stable_hash


def drop_reason(s: EvalSample) -> str | None:
    if s.verdict == "correct":
        return None
    if s.error:
        return "teacher_error"
    if s.truncated:
        return "truncated"
    return "verify_error" if s.verdict == "error" else "incorrect"


def sample_row(
    s: EvalSample,
    *,
    config_hash: str,
    sampling: dict[str, Any],
    versions: str,
    overlap: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    p = s.problem
    pid = prompt_id(p.benchmark, p.prompt)
    row = empty_record()
    row.update(
        trace_id=stable_hash("eval", s.model, pid, p.row_index, s.sample_index, config_hash),
        prompt_id=pid,
        source=p.benchmark,
        domain=p.domain,
        source_file=p.origin,
        row_index=p.row_index,
        sample_index=s.sample_index,
        prompt=p.prompt,
        prompt_messages=s.prompt_messages or [],
        reasoning_enabled=True,
        gold_answer=p.gold_answer,
        tests=p.tests,
        teacher_model=s.model,
        teacher_backend=s.backend,
        teacher_config_hash=config_hash,
        sampling=json.dumps(sampling, sort_keys=True),
        seed=s.seed,
        completion=s.completion,
        reasoning=s.reasoning,
        answer_text=s.answer_text,
        extracted_answer=s.extracted_answer,
        think_format=s.think_format,
        think_blocks=s.think_blocks,
        finish_reason=s.finish_reason,
        prompt_tokens=s.prompt_tokens,
        completion_tokens=s.completion_tokens,
        completion_chars=len(s.completion or ""),
        latency_s=s.latency_s,
        error=s.error,
        verdict=s.verdict,
        verify_method=s.verify_method,
        verify_detail=s.verify_detail,
        split="eval",
        contamination=overlap or [],
        kept=s.verdict == "correct",
        drop_reason=drop_reason(s),
        tool_versions=versions,
    )
    return row


def write_eval_ledger(
    samples: list[EvalSample],
    folder: Path,
    *,
    rank: int,
    config_hash: str,
    sampling: dict[str, Any],
    versions: str,
    overlap: dict[tuple[str, int], list[dict[str, str]]] | None = None,
) -> list[Path]:
    """Write one model's samples as `folder/{rank:05d}_{part:04d}.parquet` (replacing an earlier run's)."""
    remove_rank_files(folder, rank)
    w = ParquetShardWriter(folder, rank, LEDGER_SCHEMA, rows_per_file=100_000)
    for s in samples:
        hits = (overlap or {}).get((s.problem.benchmark, s.problem.row_index))
        w.write(sample_row(s, config_hash=config_hash, sampling=sampling, versions=versions, overlap=hits))
    return w.close()
