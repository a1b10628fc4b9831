"""Known benchmarks: where each loads from (Hub dataset id, or a local copy) and which column is the text.

A recipe names a benchmark (`aime24`) or gives its own entry (`{name, path | hub, split, column}`).
Local copies are looked up as `data_dir / local_file` when a `data_dir` is given (tests use the
files in ../shared/data/benchmarks); otherwise the Hub dataset is loaded with `datasets`.

Example:
    >>> texts = load_benchmark(BENCHMARKS["aime25"], data_dir="../shared/data/benchmarks")  # doctest: +SKIP
    >>> len(texts.items), texts.items[0]                                                     # doctest: +SKIP
    (30, '0')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tracekit.sources.formats import read_rows


@dataclass(frozen=True, slots=True)
class BenchmarkSource:
    """Where one benchmark's texts come from.

    `column`/`id_column` name the fields on the Hub; `local_column`/`local_id_column` the fields of
    the local copy when they differ. Without an id column the row number is the item id.
    """

    name: str
    hub: str | None = None
    config: str | None = None
    split: str = "test"
    column: str = "problem"
    id_column: str | None = None
    path: str | None = None
    local_file: str | None = None
    local_column: str | None = None
    local_id_column: str | None = None


class BenchmarkFileError(ValueError):
    """A benchmark file that cannot be read as the recipe says (missing, or without the named column)."""


@dataclass(frozen=True, slots=True)
class BenchmarkTexts:
    name: str
    items: list[str]  # item ids
    texts: list[str]


BENCHMARKS: dict[str, BenchmarkSource] = {
    b.name: b
    for b in [
        BenchmarkSource(
            name="aime24",
            hub="HuggingFaceH4/aime_2024",
            split="train",
            column="problem",
            id_column="id",
            local_file="aime24.jsonl",
        ),
        BenchmarkSource(
            name="aime25",
            hub="yentinglin/aime_2025",
            split="train",
            column="problem",
            id_column="id",
            local_file="aime25.jsonl",
        ),
        BenchmarkSource(
            name="amc23",
            hub="math-ai/amc23",
            split="test",
            column="question",
            id_column="id",
            local_file="amc23.jsonl",
            local_column="problem",
        ),
        BenchmarkSource(
            name="math500",
            hub="HuggingFaceH4/MATH-500",
            split="test",
            column="problem",
            id_column="unique_id",
            local_file="math500.jsonl",
        ),
        BenchmarkSource(
            name="gsm8k",
            hub="openai/gsm8k",
            config="main",
            split="test",
            column="question",
            local_file="gsm8k.jsonl",
            local_id_column="idx",
        ),
        BenchmarkSource(
            name="gpqa_diamond",
            hub="Idavidrein/gpqa",
            config="gpqa_diamond",
            split="train",
            column="Question",
            id_column="Record ID",
        ),
        BenchmarkSource(
            name="livecodebench",
            hub="livecodebench/code_generation_lite",
            split="test",
            column="question_content",
            id_column="question_id",
        ),
        BenchmarkSource(
            name="humaneval",
            hub="openai/openai_humaneval",
            split="test",
            column="prompt",
            id_column="task_id",
            local_file="HumanEval.jsonl.gz",
        ),
        BenchmarkSource(
            name="mbpp",
            hub="google-research-datasets/mbpp",
            config="full",
            split="test",
            column="text",
            id_column="task_id",
            local_file="mbpp.jsonl",
        ),
        # local-only extras (no canonical Hub copy): usable with data_dir or a path
        BenchmarkSource(name="math", column="problem", local_file="math_test.jsonl", local_id_column="idx"),
        BenchmarkSource(
            name="minerva_math", column="problem", local_file="minerva_math.jsonl", local_id_column="idx"
        ),
        BenchmarkSource(
            name="olympiadbench", column="question", id_column="id", local_file="olympiadbench.jsonl"
        ),
    ]
}

DEFAULT_BENCHMARKS: list[str] = [
    "aime24",
    "aime25",
    "math500",
    "gpqa_diamond",
    "livecodebench",
    "humaneval",
    "mbpp",
    "gsm8k",
    "amc23",
]


def local_copy(src: BenchmarkSource, data_dir: str | None) -> Path | None:
    """The local file of a benchmark: its own `path`, else its file in `data_dir` if there; None: use the Hub."""
    if src.path:
        return Path(src.path)
    if data_dir and src.local_file and (Path(data_dir) / src.local_file).exists():
        return Path(data_dir) / src.local_file
    return None


def load_benchmark(src: BenchmarkSource, *, data_dir: str | None = None) -> BenchmarkTexts:
    """The item ids and texts of one benchmark (local copy first, then the Hub)."""
    local = local_copy(src, data_dir)
    if local is not None:
        if not local.exists():
            raise BenchmarkFileError(f"benchmark {src.name!r}: file {local} not found")
        try:
            rows = read_rows(local)
        except (OSError, ValueError) as e:
            raise BenchmarkFileError(f"benchmark {src.name!r}: {local} cannot be read ({e})") from e
        column, id_column = src.local_column or src.column, src.local_id_column or src.id_column
    elif src.hub:
        from datasets import load_dataset

        rows = list(load_dataset(src.hub, src.config, split=src.split))
        column, id_column = src.column, src.id_column
    else:
        where = f"{data_dir}/{src.local_file}" if data_dir and src.local_file else "no path or hub given"
        raise BenchmarkFileError(f"benchmark {src.name!r}: no local copy ({where}) and no Hub dataset id")
    where = str(local) if local is not None else f"hf://datasets/{src.hub} ({src.split})"
    for i, r in enumerate(rows):
        if column not in r:
            raise BenchmarkFileError(
                f"benchmark {src.name!r}: {where} row {i} has no column {column!r} (it has: {', '.join(sorted(r))})"
            )
        if id_column and id_column not in r:
            raise BenchmarkFileError(
                f"benchmark {src.name!r}: {where} row {i} has no id column {id_column!r} (it has: {', '.join(sorted(r))})"
            )
    items = [
        str(r[id_column]) if id_column and r.get(id_column) is not None else str(i)
        for i, r in enumerate(rows)
    ]
    texts = [str(r.get(column) or "") for r in rows]
    return BenchmarkTexts(name=src.name, items=items, texts=texts)
