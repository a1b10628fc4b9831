"""The public problems of ../shared/data/verify/code_cases.jsonl: correct solutions pass, wrong fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tracekit.verify.code import CodeItem, CodeVerifier, CodeVerifyConfig

pytestmark = pytest.mark.slow

CASES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "verify" / "code_cases.jsonl"


def case_rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]


def compare_for(row: dict[str, Any]) -> str | None:
    """The row's stated comparison as a tracekit mode (None: the default, tokens)."""
    c = row["comparison"]
    if c.startswith("float"):
        return "float:1e-6"
    if "case-insensitive" in c:
        return "tokens_nocase"
    return None


def suite_of(row: dict[str, Any]) -> Any:
    if row.get("checker"):  # special judge travels with the tests
        return {**row["tests"], "checker": row["checker"]}
    return row["tests"]


@pytest.fixture(scope="module")
def verdicts() -> dict[tuple[str, str], Any]:
    items, keys = [], []
    for row in case_rows():
        for kind in ("solution_correct", "solution_wrong", "solution_tle"):
            if kind in row:
                items.append(
                    CodeItem(code=row[kind], tests=suite_of(row), compare=compare_for(row), time_limit_s=2.0)
                )
                keys.append((row["id"], kind))
    verifier = CodeVerifier(CodeVerifyConfig(stop_on_first_failure=False))
    return dict(zip(keys, verifier.verify_many(items), strict=True))


def test_every_correct_solution_passes(verdicts: dict[tuple[str, str], Any]) -> None:
    bad = {k: v.detail for k, v in verdicts.items() if k[1] == "solution_correct" and v.verdict != "pass"}
    assert bad == {}
    assert sum(1 for k in verdicts if k[1] == "solution_correct") == 33


def test_every_wrong_solution_fails(verdicts: dict[tuple[str, str], Any]) -> None:
    bad = {k: v.verdict for k, v in verdicts.items() if k[1] == "solution_wrong" and v.verdict != "fail"}
    assert bad == {}
    partial = [v for k, v in verdicts.items() if k[1] == "solution_wrong" and v.tests_passed > 0]
    assert partial  # some wrong solutions pass the statement examples and are caught by later tests


def test_tle_solution_fails_by_timeout(verdicts: dict[tuple[str, str], Any]) -> None:
    v = verdicts[("code-03-taco-22", "solution_tle")]
    assert v.verdict == "fail"
    assert v.detail["reason"] == "timeout"
    assert v.detail["first_failing_test"] == 4
    assert v.tests_passed == 4


def test_detail_names_the_first_failing_test_with_excerpts(verdicts: dict[tuple[str, str], Any]) -> None:
    v = verdicts[("code-05-taco-117", "solution_wrong")]  # modes printed in increasing order
    assert v.detail["reason"] == "wrong_answer"
    assert v.detail["first_failing_test"] == 0
    assert v.detail["expected"].startswith("2 ") and "got" in v.detail
    assert v.detail["peak_memory_kb"] > 0 and "time_s" in v.detail
    result = v.to_verify_result()
    assert result.verdict == "incorrect" and result.method == "code_sandbox"
    assert json.loads(result.detail)["first_failing_test"] == 0


def test_exact_comparison_rejects_what_tokens_accept() -> None:
    row = next(r for r in case_rows() if r["id"] == "code-05-taco-117")
    verifier = CodeVerifier(CodeVerifyConfig())
    exact, tokens = verifier.verify_many(
        [
            CodeItem(code=row["solution_correct"], tests=row["tests"], compare="exact"),
            CodeItem(code=row["solution_correct"], tests=row["tests"], compare="tokens"),
        ]
    )
    assert (exact.verdict, tokens.verdict) == ("fail", "pass")


def test_process_sandbox_gives_the_same_verdicts_on_a_sample() -> None:
    rows = case_rows()[::6]
    items = [
        CodeItem(code=r[k], tests=suite_of(r), compare=compare_for(r))
        for r in rows
        for k in ("solution_correct", "solution_wrong")
    ]
    verifier = CodeVerifier(CodeVerifyConfig(sandbox="process"))
    got = [v.verdict for v in verifier.verify_many(items)]
    assert got == ["pass", "fail"] * len(rows)
    assert verifier.method == "code_process"
