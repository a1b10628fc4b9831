"""Evaluation benchmarks: registry names (tracekit/decontam/registry.py) or user files -> `EvalProblem`s.

The decontamination registry says where a benchmark's rows come from (local copy under `data_dir`,
else the Hub) and which column holds the problem text and the item id; `EVAL_SPECS` adds what an
evaluation needs on top: the domain, how to read the gold answer or the tests, and when problems were
published. A user file (`.jsonl`, `.jsonl.gz`, `.json`, `.parquet`) is read with the columns
`problem|question|prompt`, `answer` (math) or `tests` (code), optional `id` and `date`.

Example:
    >>> probs = load_problems("aime25", data_dir="../shared/data/benchmarks")  # doctest: +SKIP
    >>> len(probs), probs[0].gold_answer, str(probs[0].published)               # doctest: +SKIP
    (30, '70', '2025-02-06')
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracekit.decontam.registry import BENCHMARKS, BenchmarkSource, local_copy
from tracekit.eval.problem import EvalDomain, EvalProblem
from tracekit.sources.formats import read_rows

Row = dict[str, Any]


def _number_text(v: Any) -> str:
    """27.0 -> '27' (some files store integer answers as floats); anything else as text."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, list):
        return ", ".join(_number_text(x) for x in v)
    return str(v)


def _gsm8k_answer(row: Row) -> str:
    return str(row["answer"]).rsplit("####", 1)[-1].strip().replace(",", "")


def _aime_date(row: Row) -> dt.date | None:
    # AIME I and II are separate exams a week apart; the url (2024) or the id (2025: 0-14 = I) says which
    url = str(row.get("url") or "")
    if "2024_AIME_I_" in url:
        return dt.date(2024, 1, 31)
    if "2024_AIME_II_" in url:
        return dt.date(2024, 2, 7)
    return None


def _aime25_date(row: Row) -> dt.date | None:
    try:
        return dt.date(2025, 2, 6) if int(row["id"]) < 15 else dt.date(2025, 2, 12)
    except (KeyError, TypeError, ValueError):
        return None


def _amc23_date(row: Row) -> dt.date | None:
    url = str(row.get("url") or "")
    if "AMC_12A" in url:
        return dt.date(2023, 11, 8)
    if "AMC_12B" in url:
        return dt.date(2023, 11, 14)
    return None


def _iso_date(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    m = re.match(r"(\d{4})-(\d{2})-(\d{2})", str(value))
    return dt.date(int(m[1]), int(m[2]), int(m[3])) if m else None


def _humaneval_prompt(row: Row) -> str:
    return (
        "Complete the following Python function. Give the whole function (with its imports) in one "
        f"```python code block.\n\n```python\n{row['prompt']}```"
    )


def _humaneval_tests(row: Row) -> str:
    return json.dumps({"test": row["test"], "entry_point": row["entry_point"]})


def _mbpp_prompt(row: Row) -> str:
    tests = "\n".join(row["test_list"])
    return f"{row['text']}\nYour code should pass these tests:\n\n{tests}\n\nGive the code in one ```python code block."


def _mbpp_tests(row: Row) -> str:
    keys = ("test_list", "test_setup_code", "challenge_test_list", "test_imports")
    return json.dumps({k: row[k] for k in keys if row.get(k)})


def _lcb_tests(row: Row) -> str:
    meta = row.get("metadata")
    meta = json.loads(meta) if isinstance(meta, str) and meta else (meta or {})
    public = row.get("public_test_cases") or "[]"
    public = json.loads(public) if isinstance(public, str) else public
    private = row.get("private_test_cases") or "[]"
    if isinstance(private, str):
        from tracekit.verify.code.readers import decode_tests

        private = decode_tests(private) if private.strip() else []
    out: Row = {"inputs": [], "outputs": []}
    cases = [*public, *private]
    functional = any(str(t.get("testtype")) == "functional" for t in cases)
    for t in cases:
        out["inputs"].append(t["input"])
        out["outputs"].append(t["output"])
    if functional and meta.get("func_name"):
        out["fn_name"] = meta["func_name"]
    return json.dumps(out)


def _lcb_prompt(row: Row) -> str:
    starter = row.get("starter_code") or ""
    text = str(row["question_content"])
    if starter.strip():
        return f"{text}\n\nUse this starter code and give the solution in one ```python code block:\n```python\n{starter}\n```"
    return f"{text}\n\nRead the input from stdin and write the answer to stdout. Give the program in one ```python code block."


def _gpqa(row: Row) -> tuple[str, str]:
    """Question with its four options shuffled (seeded by the question), and the gold letter."""
    options = [
        row["Correct Answer"],
        row["Incorrect Answer 1"],
        row["Incorrect Answer 2"],
        row["Incorrect Answer 3"],
    ]
    order = list(range(4))
    random.Random(str(row["Question"])).shuffle(order)
    letters = "ABCD"
    lines = [f"({letters[i]}) {str(options[j]).strip()}" for i, j in enumerate(order)]
    gold = letters[order.index(0)]
    prompt = (
        str(row["Question"]).strip()
        + "\n\n"
        + "\n".join(lines)
        + "\n\nAnswer with the letter of the correct option."
    )
    return prompt, gold


@dataclass(frozen=True)
class EvalSpec:
    """What a registered benchmark needs for evaluation on top of its `BenchmarkSource`."""

    domain: EvalDomain
    gold: Callable[[Row], str] | None = None
    tests: Callable[[Row], str] | None = None
    prompt: Callable[[Row], str] | None = None  # default: the registry's text column
    date: Callable[[Row], dt.date | None] | None = None
    released: dt.date | None = None  # the whole set's release date, when no per-problem date exists


def _col(name: str) -> Callable[[Row], str]:
    return lambda row: _number_text(row[name])


EVAL_SPECS: dict[str, EvalSpec] = {
    "aime24": EvalSpec("math", gold=_col("answer"), date=_aime_date),
    "aime25": EvalSpec("math", gold=_col("answer"), date=_aime25_date),
    "amc23": EvalSpec("math", gold=_col("answer"), date=_amc23_date),
    "math500": EvalSpec("math", gold=_col("answer"), released=dt.date(2021, 3, 5)),
    "math": EvalSpec("math", gold=_col("solution"), released=dt.date(2021, 3, 5)),
    "minerva_math": EvalSpec("math", gold=_col("solution"), released=dt.date(2022, 6, 29)),
    "olympiadbench": EvalSpec(
        "math",
        gold=_col("final_answer"),
        prompt=lambda r: str(r["question"]),
        released=dt.date(2024, 2, 21),
    ),
    "gsm8k": EvalSpec("math", gold=_gsm8k_answer, released=dt.date(2021, 10, 27)),
    "gpqa_diamond": EvalSpec(
        "math", gold=lambda r: _gpqa(r)[1], prompt=lambda r: _gpqa(r)[0], released=dt.date(2023, 11, 20)
    ),
    "humaneval": EvalSpec(
        "code", tests=_humaneval_tests, prompt=_humaneval_prompt, released=dt.date(2021, 7, 7)
    ),
    "mbpp": EvalSpec("code", tests=_mbpp_tests, prompt=_mbpp_prompt, released=dt.date(2021, 8, 16)),
    "livecodebench": EvalSpec(
        "code", tests=_lcb_tests, prompt=_lcb_prompt, date=lambda r: _iso_date(r.get("contest_date"))
    ),
}

PROMPT_COLUMNS = ("problem", "question", "prompt", "text")
ID_COLUMNS = ("id", "problem_id", "task_id", "unique_id", "idx")
DATE_COLUMNS = ("date", "published", "contest_date", "release_date")


class BenchmarkLoadError(ValueError):
    """A benchmark name or file that cannot be turned into problems."""


def _rows_of(src: BenchmarkSource, data_dir: str | None) -> tuple[list[Row], str | None]:
    """The rows, and the local file they came from (None: the Hub)."""
    local = local_copy(src, data_dir)
    if local is not None:
        return read_rows(local), str(local)
    if src.hub:
        from datasets import load_dataset

        return [dict(r) for r in load_dataset(src.hub, src.config, split=src.split)], None
    where = f"{data_dir}/{src.local_file}" if data_dir and src.local_file else "no local copy"
    raise BenchmarkLoadError(f"benchmark {src.name!r}: {where} and no Hub dataset id")


def _registered(name: str, data_dir: str | None) -> list[EvalProblem]:
    src, spec = BENCHMARKS[name], EVAL_SPECS[name]
    rows, local = _rows_of(src, data_dir)
    origin = local or f"hf://datasets/{src.hub}/{src.split}"
    column = (src.local_column or src.column) if local else src.column
    id_column = (src.local_id_column or src.id_column) if local else src.id_column
    out = []
    for i, row in enumerate(rows):
        pid = str(row[id_column]) if id_column and row.get(id_column) is not None else str(i)
        published = spec.date(row) if spec.date else None
        out.append(
            EvalProblem(
                benchmark=name,
                problem_id=pid,
                prompt=spec.prompt(row) if spec.prompt else str(row[column]),
                domain=spec.domain,
                gold_answer=spec.gold(row) if spec.gold else None,
                tests=spec.tests(row) if spec.tests else None,
                published=published or spec.released,
                row_index=i,
                origin=origin,
            )
        )
    return out


def _first(row: Row, names: tuple[str, ...]) -> Any:
    return next((row[c] for c in names if row.get(c) not in (None, "")), None)


def _user_file(name: str, path: Path) -> list[EvalProblem]:
    if not path.exists():
        raise BenchmarkLoadError(f"benchmark {name!r}: file {path} not found")
    out = []
    for i, row in enumerate(read_rows(path)):
        prompt = _first(row, PROMPT_COLUMNS)
        if prompt is None:
            raise BenchmarkLoadError(
                f"{path} row {i}: no problem column (one of {', '.join(PROMPT_COLUMNS)})"
            )
        tests, answer = row.get("tests"), row.get("answer", row.get("gold_answer"))
        if tests not in (None, "", [], {}):
            domain: EvalDomain = "code"
            tests_text = tests if isinstance(tests, str) else json.dumps(tests)
        elif answer not in (None, ""):
            domain, tests_text = "math", None
        else:
            raise BenchmarkLoadError(f"{path} row {i}: neither `answer` (math) nor `tests` (code)")
        pid = _first(row, ID_COLUMNS)
        out.append(
            EvalProblem(
                benchmark=name,
                problem_id=str(pid) if pid is not None else str(i),
                prompt=str(prompt),
                domain=domain,
                gold_answer=_number_text(answer) if domain == "math" else None,
                tests=tests_text,
                published=_iso_date(_first(row, DATE_COLUMNS)),
                row_index=i,
                origin=str(path),
            )
        )
    return out


def parse_bench_arg(arg: str) -> tuple[str, Path | None]:
    """`NAME` (a registry name), `NAME=PATH` or a bare path (named after the file) -> (name, path)."""
    if "=" in arg:
        name, path = arg.split("=", 1)
        return name, Path(path)
    if arg in EVAL_SPECS:
        return arg, None
    p = Path(arg)
    if p.suffix or p.exists():
        stem = p.name.split(".", 1)[0]
        return stem, p
    raise BenchmarkLoadError(
        f"unknown benchmark {arg!r}: give one of {', '.join(sorted(EVAL_SPECS))}, a file, or NAME=FILE"
    )


def load_problems(bench: str, *, data_dir: str | None = None) -> list[EvalProblem]:
    """The problems of one `--bench` argument (registry name, `NAME=FILE` or a file)."""
    name, path = parse_bench_arg(bench)
    if path is not None:
        return _user_file(name, path)
    return _registered(name, data_dir)


def keep_fresh(problems: list[EvalProblem], after: dt.date) -> tuple[list[EvalProblem], int]:
    """Problems published strictly after `after`, and how many had no date (they are left out)."""
    undated = sum(1 for p in problems if p.published is None)
    return [p for p in problems if p.published is not None and p.published > after], undated
