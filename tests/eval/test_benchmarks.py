"""Registry benchmarks from ../shared/data/benchmarks become problems with gold answers or tests."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SHARED_DATA
from tracekit.eval.benchmarks import BenchmarkLoadError, load_problems, parse_bench_arg
from tracekit.verify.code import read_tests

BENCH_DIR = str(SHARED_DATA / "benchmarks")


@pytest.mark.parametrize(
    ("name", "count", "first_gold"),
    [("aime24", 30, "204"), ("aime25", 30, "70"), ("amc23", 40, "27"), ("math500", 500, "\\left( 3, \\frac{\\pi}{2} \\right)"),
     ("gsm8k", 1319, "18")],
)  # fmt: skip
def test_math_registry_gold_answers(name: str, count: int, first_gold: str) -> None:
    probs = load_problems(name, data_dir=BENCH_DIR)
    assert len(probs) == count and all(p.domain == "math" and p.gold_answer for p in probs)
    assert probs[0].gold_answer == first_gold
    assert all(p.published is not None for p in probs)  # every registry math set here has dates
    assert len({p.problem_id for p in probs}) == count


@pytest.mark.parametrize(("name", "count"), [("humaneval", 164), ("mbpp", 974)])
def test_code_registry_tests_are_readable(name: str, count: int) -> None:
    probs = load_problems(name, data_dir=BENCH_DIR)
    assert len(probs) == count and all(p.domain == "code" for p in probs)
    for p in probs[:20]:
        suite = read_tests(p.tests)
        assert suite.mode == "assert" and suite.total >= 1
        assert "```python" in p.prompt
    if name == "humaneval":
        assert json.loads(probs[0].tests)["entry_point"] == "has_close_elements"


def test_bench_arguments() -> None:
    assert parse_bench_arg("aime25") == ("aime25", None)
    name, path = parse_bench_arg("mine=evals/x.jsonl")
    assert name == "mine" and str(path) == "evals/x.jsonl"
    assert parse_bench_arg("evals/hard.jsonl")[0] == "hard"
    with pytest.raises(BenchmarkLoadError):
        parse_bench_arg("nonsense")
