"""Differential fuzzing: 10,000 generated answer pairs, zero false accepts (tests/verify/mathfuzz.py).

The oracle evaluates the generated trees exactly; the verifier sees only the LaTeX. bench/math_fuzz.py
runs the same generator longer and prints the counts per construct.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from fractions import Fraction

import pytest

from tests.verify.mathfuzz import Fuzzer, Oracle, Point, Q, evaluate, q_sqrt
from tracekit.verify.math import MathVerifier, MathVerifyConfig

PAIRS = 10_000


@pytest.fixture(scope="module")
def verifier() -> Iterator[MathVerifier]:
    v = MathVerifier(MathVerifyConfig(timeout_s=10.0))
    yield v
    v.close()


def n(v: int) -> tuple[str, Fraction]:
    return ("n", Fraction(v))


def test_oracle_reads_trees_exactly() -> None:
    pt = Point(__import__("random").Random(0))
    assert evaluate(("div", n(6), ("add", n(2), n(1))), pt) == Q.rat(2)
    assert evaluate(("add", ("div", n(6), n(2)), n(1)), pt) == Q.rat(4)
    # sqrt(12) = 2 sqrt(3); (1 + sqrt 2)(sqrt 2 - 1) = 1; i * i = -1
    assert evaluate(("sqrt", n(12)), pt) == Q.rat(2) * q_sqrt(Fraction(3))
    s2 = q_sqrt(Fraction(2))
    assert (Q.rat(1) + s2) * (s2 - Q.rat(1)) == Q.rat(1)
    assert q_sqrt(Fraction(-1)) * q_sqrt(Fraction(-1)) == Q.rat(-1)
    assert (Q.rat(1) / (Q.rat(1) + s2)) == s2 - Q.rat(1)
    oracle = Oracle(seed=3)
    assert (
        oracle.values_equal(
            ("idx", "a", ("add", ("iv", "n"), n(1))), ("add", ("idx", "a", ("iv", "n")), n(1))
        )
        is False
    )
    assert oracle.values_equal(("pow", ("v", "x"), n(2)), ("mul", ("v", "x"), ("v", "x"))) is True


@pytest.mark.slow
def test_ten_thousand_generated_pairs_have_no_false_accept(verifier: MathVerifier) -> None:
    fz = Fuzzer(seed=20240515)
    tally: Counter[tuple[str, str]] = Counter()
    false_accepts: list[dict] = []
    false_rejects: list[dict] = []
    judged = 0
    while judged < PAIRS:
        case = fz.case()
        if case["equal"] is None:  # the oracle found no point where both sides are defined
            continue
        judged += 1
        res = verifier.verify(answer_text=f"\\boxed{{{case['pred']}}}", gold=case["gold"])
        accepted = res.verdict == "correct"
        tally[(case["construct"], "accept" if accepted else "reject")] += 1
        if accepted and not case["equal"]:
            false_accepts.append({**case, "detail": res.detail})
        elif case["equal"] and not accepted:
            false_rejects.append({**case, "detail": res.detail})
    assert false_accepts == []
    # the other direction is measured too: a right answer written another way is rarely refused
    assert len(false_rejects) <= PAIRS // 200, false_rejects[:10]
    # the generator covers every construct, with both outcomes
    for construct in Fuzzer.CONSTRUCTS:
        assert tally[(construct, "accept")] > 100, construct
        assert tally[(construct, "reject")] > 100, construct


def test_generated_edits_include_the_trap_classes() -> None:
    fz = Fuzzer(seed=9)  # brace drops in fractions are rare (a numerator and denominator of one digit each)
    kinds = Counter(fz.case()["kind"] for _ in range(3000))
    for kind in (
        "move brace (div)",
        "move brace (sqrt)",
        "move brace (pow)",
        "move brace (idx)",
        "move brace (fn)",
        "drop braces (frac)",
        "drop braces (power)",
        "drop braces (subscript)",
        "change unit",
        "change variable",
        "flip bracket",
        "decimal",
        "change base",
        "value in base 10",
        "change exponent",
        "drop braces (exponent)",
        "respelled",
        "rewritten",
    ):
        assert kinds[kind] > 0, kind


def test_the_public_equivalence_is_symmetric_and_never_wrongly_equal(verifier: MathVerifier) -> None:
    """`MathVerifier.equivalent` (for callers that group answers): both orders give one answer, and a
    pair the oracle calls different is never equivalent."""
    fz = Fuzzer(seed=19)
    checked = same = 0
    while checked < 400:
        case = fz.case()
        if case["equal"] is None:
            continue
        checked += 1
        one = verifier.equivalent(first=case["gold"], second=case["pred"])
        assert one == verifier.equivalent(first=case["pred"], second=case["gold"]), case
        assert not (one and not case["equal"]), case
        same += one
    assert same > 50
