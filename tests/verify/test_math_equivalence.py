"""Equivalence families of issue 4 item 2, traps, verdict/method/detail contract."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tracekit.verify.math import MathVerifier, MathVerifyConfig


@pytest.fixture(scope="module")
def verifier() -> Iterator[MathVerifier]:
    v = MathVerifier(MathVerifyConfig(timeout_s=10.0))
    yield v
    v.close()


SAME = [
    # integers with separators, decimals, fractions, mixed numbers
    ("7425000", "7,425,000"),
    ("11111111100", r"11,\! 111,\! 111,\! 100"),
    ("14916", "14{,}916"),
    ("1000", "1000.0"),
    ("0.5", r"\frac{1}{2}"),
    (r"\frac{1}{12}", "0.0833333"),
    ("918.5", r"918\frac{1}{2}"),
    (r"\frac{9}{4}\pi", r"\frac94\pi"),
    # percentages, scientific notation
    (r"28\%", "28"),
    (r"28\%", "0.28"),
    ("3000", r"3 \times 10^{3}"),
    ("0.00015", "1.5e-4"),
    # roots and pi, LaTeX variants
    (r"3\sqrt{13}", r"\sqrt{117}"),
    (r"\frac{\sqrt{3}}{3}", r"\frac{1}{\sqrt{3}}"),
    (r"\frac{\pi}{2}", r"\dfrac{\pi}{2}"),
    (r"\frac{1}{2} + \frac1{72}", r"\tfrac{1}{2} +\! \frac{1}{72}"),
    (r"(x-2)(x+2)", r"\left(x-2\right)\left(x+2\right)"),
    # units and \text{}, degrees, currency
    ("15", r"15\mbox{ cm}^2"),
    ("125", r"125\text{ miles}"),
    (r"90^\circ", "90"),
    ("10", r"\$10"),
    (r"\text{Evelyn}", "Evelyn"),
    # intervals, sets vs tuples, several answers
    ("[0, 1)", "[0,1)"),
    (r"(-\infty, 3)", "x < 3"),
    (r"x \geq 5", r"[5, \infty)"),
    (r"\{1, 2, 3\}", "3, 2, 1"),
    ("(1, 3)", r"\{1,3\}"),
    (r"1 \pm \sqrt{19}", r"1+\sqrt{19}, 1-\sqrt{19}"),
    # equations vs values
    ("k = 1", "1"),
    ("2x+4y-3=0", r"y=-\frac{1}{2}x+\frac{3}{4}"),
    # matrices, complex numbers, letters
    (r"\begin{pmatrix}1 & 0\\0 & 1\end{pmatrix}", r"\begin{bmatrix}1&0\\0&1\end{bmatrix}"),
    ("14 - i", "14.0 + -1.0i"),
    (r"\frac34i", r"\frac{3}{4}i"),
    ("C", r"\text{(C)}"),
    ("(D) Alina", "D"),
    # symbolic
    (r"\tan^2(y)+1", r"\sec^2(y)"),
    ("x^2+2x+1", "(x+1)^2"),
]

DIFFERENT = [
    ("5", "5.001"),
    ("5.001", "5"),
    ("[0, 1)", "(0, 1)"),
    ("(3, 1)", r"\{1,3\}"),
    (r"\sqrt{67}", r"\sqrt{67}, -\sqrt{85}"),
    ("x > 5", "x < 5"),
    ("2x + z = 1", "1"),
    (r"\begin{pmatrix}1 & 2\\3 & 4\end{pmatrix}", r"\begin{pmatrix}1 & 2\\3 & 5\end{pmatrix}"),
    ("odd", r"\text{oddd}"),
    ("A", "B"),
    ("12:00", "1:00"),
    ("x^2+2x+1", "x^3+2x+1"),
    ("927.5", "1" + "0" * 400),  # a huge integer must not overflow to inf and pass any tolerance
    ("-2", "-2x"),  # a letter after a number is a variable, not a unit
]

# values too small for absolute rounding: a 6-decimal comparison would call each pair equal
TINY_TRAPS = [
    (r"\frac{1}{2004!}", r"\frac{1}{2006!}"),
    (r"\frac{1}{2^{99}}", r"\frac{1}{2^{98}}"),
    ("0.0000001", "0.0000002"),
    ("1e-9", "2e-9"),
    (r"10^{-8}", "0"),
    (r"\frac{2^{2005}+1}{3 \cdot 2^{2006}}", r"\frac{1}{3 \cdot 2^{2006}}"),
]


@pytest.mark.parametrize(("gold", "pred"), SAME)
def test_equivalent_forms_are_correct(verifier: MathVerifier, gold: str, pred: str) -> None:
    res = verifier.verify(answer_text=f"The answer is $\\boxed{{{pred}}}$.", gold=gold)
    assert res.verdict == "correct", res
    assert res.method == "math_rule"


@pytest.mark.parametrize(("gold", "pred"), DIFFERENT)
def test_different_answers_are_incorrect(verifier: MathVerifier, gold: str, pred: str) -> None:
    assert verifier.verify(answer_text=f"\\boxed{{{pred}}}", gold=gold).verdict == "incorrect"


@pytest.mark.parametrize(("gold", "pred"), TINY_TRAPS)
def test_tiny_numbers_that_differ_are_different(verifier: MathVerifier, gold: str, pred: str) -> None:
    assert verifier.verify(answer_text=f"\\boxed{{{pred}}}", gold=gold).verdict == "incorrect"
    assert verifier.verify(answer_text=f"\\boxed{{{gold}}}", gold=gold).verdict == "correct"


def test_bare_answer_text_is_the_answer(verifier: MathVerifier) -> None:
    assert verifier.verify(answer_text="7,425,000", gold="7425000").verdict == "correct"
    assert verifier.verify(answer_text=r"\frac{1}{2}", gold="0.5").verdict == "correct"


def test_no_answer_and_bad_gold_details(verifier: MathVerifier) -> None:
    res = verifier.verify(answer_text="I am not sure how to proceed with this one at all.", gold="3")
    assert (res.verdict, res.detail) == ("incorrect", "no_answer")
    res = verifier.verify(answer_text=r"\boxed{3}", gold="")
    assert (res.verdict, res.detail) == ("error", "gold_unparseable")
    res = verifier.verify(answer_text=r"\boxed{3}", gold=r"\frac{1}{")
    assert res.verdict == "error" and res.detail == "gold_unparseable"
    res = verifier.verify(answer_text=r"\boxed{\frac{1}{2}}", gold="0.5")
    assert res.extracted_answer == r"\frac{1}{2}"


def test_multiple_choice_letters(verifier: MathVerifier) -> None:
    assert (
        verifier.verify(answer_text="The answer is for sure D, it can't be A or B", gold="D").verdict
        == "correct"
    )
    assert (
        verifier.verify(answer_text="It is not A because of that, therefore I think it's B", gold="B").verdict
        == "correct"
    )
    assert verifier.verify(answer_text=r"\boxed{C}", gold="(A) Cecile").verdict == "incorrect"
