"""Read generations that already exist (`--samples FILE`) and attach them to the benchmark problems.

One row per sample (JSONL, JSONL.gz, JSON or parquet, an eval ledger included) with:
`completion` (or `response`/`output`/`generation`), the benchmark (`benchmark`/`bench`/`source`;
optional with one benchmark), the problem (`problem_id`/`id`/`task_id`, or `row_index`), and
optionally `model` (or `teacher_model`), `sample_index`, `reasoning`, `finish_reason`,
`completion_tokens`, `prompt_tokens`. A row may instead hold a list in `generations` (or
`completions`): one sample each.

Example (JSONL):
    {"model": "student", "benchmark": "aime25", "problem_id": "0", "completion": "... \\\\boxed{70}"}
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from tracekit.eval.problem import EvalProblem
from tracekit.eval.sample import EvalSample
from tracekit.sources.formats import read_rows

TEXT_COLUMNS = ("completion", "response", "output", "generation")
LIST_COLUMNS = ("generations", "completions")
BENCH_COLUMNS = ("benchmark", "bench", "source")
ID_COLUMNS = ("problem_id", "id", "task_id")


class SamplesFileError(ValueError):
    """A samples file row that cannot be matched to a problem."""


def _pick(row: dict[str, Any], names: tuple[str, ...]) -> Any:
    return next((row[c] for c in names if row.get(c) is not None), None)


def read_samples(
    path: Path, problems: list[EvalProblem], *, default_model: str | None = None
) -> list[EvalSample]:
    """Samples of the file, each attached to its problem; rows of benchmarks not asked for are skipped."""
    by_id: dict[tuple[str, str], EvalProblem] = {}
    by_row: dict[tuple[str, int], EvalProblem] = {}
    for p in problems:
        by_id.setdefault((p.benchmark, p.problem_id), p)
        by_row[(p.benchmark, p.row_index)] = p
    benches = sorted({p.benchmark for p in problems})
    next_index: dict[tuple[str, str, int], int] = defaultdict(int)
    out: list[EvalSample] = []
    for i, row in enumerate(read_rows(path)):
        bench = _pick(row, BENCH_COLUMNS)
        if bench is None:
            if len(benches) != 1:
                raise SamplesFileError(f"{path} row {i}: no benchmark column ({', '.join(BENCH_COLUMNS)})")
            bench = benches[0]
        if bench not in benches:
            continue
        pid = _pick(row, ID_COLUMNS)
        if pid is not None and (bench, str(pid)) in by_id:
            problem = by_id[(bench, str(pid))]
        elif row.get("row_index") is not None and (bench, int(row["row_index"])) in by_row:
            problem = by_row[(bench, int(row["row_index"]))]
        elif pid is not None or row.get("row_index") is not None:
            continue  # a problem left out (--fresh-after, --limit)
        else:
            raise SamplesFileError(f"{path} row {i}: no problem id ({', '.join(ID_COLUMNS)}) or row_index")
        model = str(row.get("model") or row.get("teacher_model") or default_model or "samples")
        texts = _pick(row, LIST_COLUMNS)
        if texts is None:
            text = _pick(row, TEXT_COLUMNS)
            if text is None:
                raise SamplesFileError(f"{path} row {i}: no completion ({', '.join(TEXT_COLUMNS)})")
            texts = [text]
        for text in texts:
            key = (model, bench, problem.row_index)
            given = row.get("sample_index") if len(texts) == 1 else None
            index = int(given) if given is not None else next_index[key]
            next_index[key] = max(next_index[key], index) + 1
            out.append(
                EvalSample(
                    model=model,
                    problem=problem,
                    sample_index=index,
                    completion=str(text),
                    backend="samples",
                    reasoning=row.get("reasoning"),
                    finish_reason=row.get("finish_reason"),
                    prompt_tokens=row.get("prompt_tokens"),
                    completion_tokens=row.get("completion_tokens"),
                    error=row.get("error"),
                )
            )
    return out
