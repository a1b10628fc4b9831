"""Accuracy on the 431 public cases (Math-Verify, NeMo-Skills, lighteval, Qwen2.5-Math, MATH, verl, lm-eval)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracekit.verify.math import MathVerifier, MathVerifyConfig

CASES = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "data"
    / "verify"
    / "math_equivalence_public.jsonl"
)


def row_config(row: dict) -> MathVerifyConfig:
    """The settings the source used, where tracekit has the same switch; the public suites grade free text."""
    c = row.get("config") or {}
    return MathVerifyConfig(
        allow_bare_number=True,
        allow_set_relation_comp=bool(c.get("allow_set_relation_comp", True)),
        strict=bool(c.get("strict", True)),
        timeout_s=5.0,
    )


def is_numeric_trap(row: dict) -> bool:
    """A wrong single number (decimal or fraction) that a loose numeric comparison would accept."""
    gold = row["gold"] or ""
    return (
        not row.get("expected_semantic", row["expected"])
        and bool({"decimal", "fraction"} & set(row["tags"]))
        and ("," not in gold)
    )


@pytest.mark.slow
def test_public_case_accuracy_at_least_97_percent() -> None:
    rows = [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) == 431
    verifiers: dict[str, MathVerifier] = {}
    right = 0
    traps_accepted = []
    try:
        for row in rows:
            cfg = row_config(row)
            key = cfg.model_dump_json()
            v = verifiers.setdefault(key, MathVerifier(cfg))
            expected = row.get("expected_semantic", row["expected"])
            got = v.verify(answer_text=row["prediction"] or "", gold=row["gold"] or "").verdict == "correct"
            right += got == expected
            if got and not expected and is_numeric_trap(row):
                traps_accepted.append(row["id"])
    finally:
        for v in verifiers.values():
            v.close()
    assert right / len(rows) >= 0.97, right
    assert traps_accepted == []
