"""The policies of docs/verification.md, class by class (issue 15): what was accepted wrongly, what was
refused wrongly, and generated families around each policy with an exact reference."""

from __future__ import annotations

import random
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

from tracekit.verify.math import MathVerifier, MathVerifyConfig
from tracekit.verify.math.policies import card_section, policy_lines


@pytest.fixture(scope="module")
def verifier() -> Iterator[MathVerifier]:
    v = MathVerifier(MathVerifyConfig(timeout_s=10.0))
    yield v
    v.close()


def verdict(v: MathVerifier, gold: str, pred: str) -> str:
    return v.verify(answer_text=f"\\boxed{{{pred}}}", gold=gold).verdict


# accepted before issue 15 although the values differ
WRONG = [
    (r"\frac{6}{2+1}", r"\frac{6}{2}+1"),
    (r"\sqrt{x+1}", r"\sqrt{x}+1"),
    ("x^{n+1}", "x^n+1"),
    ("e^{x+1}", "e^x+1"),
    (r"\frac{a}{b+c}", r"\frac{a}{b}+c"),
    ("a_{n+1}", "a_n+1"),
    (r"5 \text{ cm}", r"5 \text{ m}"),
    ("10 kg", "10 g"),
    ("x = 5", "y = 5"),
    (r"\frac{1}{12}", r"\frac112"),
    (r"\frac{1}{8}", "0.13"),
    (r"\pi", "3.14"),
    (r"\frac{1}{3}", "0.333"),
    ("x^{23}", "x^23"),
    (r"\sqrt{12}", r"\sqrt12"),
    (r"90^\circ", r"90 \text{ rad}"),
    ("y = 2x + 1", "x = 2y + 1"),
    (r"\{1, 2\}", r"\emptyset"),
]

# refused before issue 15 although they are the same answer
RIGHT = [
    (r"\emptyset", r"\varnothing"),
    (r"\varnothing", r"\{\}"),
    ("(2, -1)", "x = 2, y = -1"),
    ("(2, -1)", "y = -1, x = 2"),
    ("x = 2, y = -1", "(2, -1)"),
    ("5", "x = 5"),
    ("x = 5", "5"),
    ("y = 2x+1", "y = 1+2x"),
    ("2x + 4y - 3 = 0", r"y = -\frac{1}{2}x + \frac{3}{4}"),
    (r"\frac{1}{3}", "0.333333"),
    (r"\frac{\pi}{2}", "1.570796"),
    (r"\sqrt{2}", "1.41421"),
    (r"\frac{1}{8}", "0.125"),
    (r"500 \text{ cm}", r"5 \text{ m}"),
    (r"5 \text{ cm}", "5"),
    ("2 hours", r"120 \text{ min}"),
    (r"90^\circ", r"\frac{\pi}{2}"),
    (r"\frac112", "2"),
    ("x^23", "3x^2"),
]


@pytest.mark.parametrize(("gold", "pred"), WRONG)
def test_wrong_answers_of_the_issue_are_refused(verifier: MathVerifier, gold: str, pred: str) -> None:
    assert verdict(verifier, gold, pred) == "incorrect"
    assert verdict(verifier, pred, gold) == "incorrect"


@pytest.mark.parametrize(("gold", "pred"), RIGHT)
def test_right_answers_of_the_issue_are_accepted(verifier: MathVerifier, gold: str, pred: str) -> None:
    assert verdict(verifier, gold, pred) == "correct"


def _sig(x: Fraction, digits: int, *, cut: bool) -> str:
    """x written with `digits` significant digits, rounded or cut (exact decimal arithmetic)."""
    e = 0
    while abs(x) >= 10 ** (e + 1):
        e += 1
    while abs(x) < 10**e:
        e -= 1
    places = digits - 1 - e
    scaled = x * 10**places
    n = int(scaled) if cut else round(scaled)
    if places <= 0:
        return str(n * 10 ** (-places))
    s = str(abs(n)).rjust(places + 1, "0")
    return ("-" if n < 0 else "") + s[:-places] + "." + s[-places:]


def test_decimals_for_non_terminating_fractions_need_six_significant_digits(verifier: MathVerifier) -> None:
    rng = random.Random(15)
    checked = 0
    while checked < 60:
        q = Fraction(rng.randint(1, 999), rng.choice((3, 7, 9, 11, 13, 21, 27, 33)))
        if q.denominator in (1, 2, 4, 5, 8):
            continue
        checked += 1
        gold = f"\\frac{{{q.numerator}}}{{{q.denominator}}}"
        digits = rng.randint(2, 9)
        text = _sig(q, digits, cut=rng.random() < 0.5)
        expected = "correct" if digits >= 6 else "incorrect"
        assert verdict(verifier, gold, text) == expected, (gold, text)
        if "." not in text:
            continue
        # two units off in the last place is wrong at any precision
        off = Fraction(text) + 2 * Fraction(1, 10 ** len(text.split(".")[1]))
        assert verdict(verifier, gold, _sig(off, digits, cut=True)) == "incorrect", (gold, off)


def test_terminating_values_need_the_exact_decimal(verifier: MathVerifier) -> None:
    rng = random.Random(8)
    for _ in range(40):
        q = Fraction(rng.randint(1, 999), rng.choice((2, 4, 8, 16, 5, 25, 40, 80)))
        gold = f"\\frac{{{q.numerator}}}{{{q.denominator}}}"
        exact = f"{float(q):.10f}".rstrip("0").rstrip(".")
        assert verdict(verifier, gold, exact) == "correct", (gold, exact)
        if "." in exact and len(exact.split(".")[1]) >= 2:
            rounded = exact[:-1] + str(min(int(exact[-1]) + 1, 9)) if exact[-1] != "9" else exact[:-1] + "8"
            shortened = exact[:-1]
            for wrong in (rounded, shortened):
                if Fraction(wrong) != q:
                    assert verdict(verifier, gold, wrong) == "incorrect", (gold, wrong)


SI = {"mm": Fraction(1, 1000), "cm": Fraction(1, 100), "m": Fraction(1), "km": Fraction(1000)}
TIME = {"s": Fraction(1), "min": Fraction(60), "h": Fraction(3600)}


@pytest.mark.parametrize("table", [SI, TIME], ids=["length", "time"])
def test_units_convert_exactly_or_differ(verifier: MathVerifier, table: dict[str, Fraction]) -> None:
    rng = random.Random(len(table))
    for _ in range(30):
        a, b = rng.sample(sorted(table), 2)
        value = Fraction(rng.randint(1, 50))
        converted = value * table[a] / table[b]
        num = (
            str(converted.numerator)
            if converted.denominator == 1
            else f"\\frac{{{converted.numerator}}}{{{converted.denominator}}}"
        )
        gold = f"{value} \\text{{ {a}}}"
        assert verdict(verifier, gold, f"{num} \\text{{ {b}}}") == "correct", (gold, num, b)
        assert verdict(verifier, gold, f"{value} \\text{{ {b}}}") == "incorrect", (gold, b)
        assert verdict(verifier, gold, f"{value}") == "correct"  # the unit left out
    assert verdict(verifier, r"5 \text{ m}", r"5 \text{ kg}") == "incorrect"  # another dimension
    assert verdict(verifier, r"3 \text{ apples}", r"3 \text{ pears}") == "incorrect"
    assert verdict(verifier, r"3 \text{ apples}", "3 apple") == "correct"


def test_equations_in_other_variables_differ(verifier: MathVerifier) -> None:
    names = ["x", "y", "z", "t", "k", "a_1", r"\alpha"]
    rng = random.Random(3)
    for _ in range(20):
        a, b = rng.sample(names, 2)
        value = rng.randint(-20, 20)
        assert verdict(verifier, f"{a} = {value}", f"{b} = {value}") == "incorrect"
        assert verdict(verifier, f"{a} = {value}", f"{a} = {value}") == "correct"
        assert verdict(verifier, f"{a} = {value}", f"{value}") == "correct"
        assert verdict(verifier, f"{a} = {value}", f"{value} = {a}") == "correct"


def test_numerals_with_a_base(verifier: MathVerifier) -> None:
    """`4210_5` is `4210` with its base left out; its value in base 10, another base or another digit is not."""
    rng = random.Random(15)
    for _ in range(25):
        base = rng.randint(2, 9)  # below 10: the value in base 10 has other digits
        digits = str(rng.randint(1, base - 1)) + "".join(str(rng.randrange(base)) for _ in range(rng.randint(1, 5)))
        gold = rng.choice((f"{digits}_{base}", f"{digits}_{{{base}}}"))
        value = int(digits, base)
        assert verdict(verifier, gold, digits) == "correct", gold
        assert verdict(verifier, digits, gold) == "correct", gold
        assert verdict(verifier, gold, f"{digits}_{{{base}}}") == "correct", gold
        assert verdict(verifier, gold, str(value)) == "incorrect", (gold, value)
        assert verdict(verifier, gold, f"{digits}_{{{base + 1}}}") == "incorrect", gold
        changed = digits[:-1] + str((int(digits[-1]) + 1) % base)
        assert verdict(verifier, gold, changed) == "incorrect", (gold, changed)
    assert verdict(verifier, "a_5", "5") == "incorrect"  # a subscripted name is no numeral
    assert verdict(verifier, "129_5", "129") == "incorrect"  # 9 is no digit in base 5: not a numeral


def test_the_docs_quote_the_policies_as_written() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "verification.md").read_text(encoding="utf-8")
    for line in policy_lines(MathVerifyConfig()):
        assert f"- {line}" in docs, line


def test_the_policies_are_written_once_and_reach_the_card() -> None:
    lines = policy_lines(MathVerifyConfig(decimal_sig_digits=8))
    assert any("at least 8 significant digits" in line for line in lines)
    section = card_section({"verify": {"math": {"decimal_sig_digits": 8}}, "sources": []})
    assert "at least 8 significant digits" in section and section.count("\n- ") == len(lines)
    assert card_section({"verify": {}}) == ""


def _linear(rng: random.Random) -> tuple[str, dict[str, int]]:
    """A random non-constant linear form in x and y, as TeX and as coefficients."""
    cx, cy, c = rng.choice([-3, -2, -1, 1, 2, 3]), rng.randint(-3, 3), rng.randint(-9, 9)
    tex = f"{cx}x" + (f"{cy:+d}y" if cy else "") + (f"{c:+d}" if c else "")
    return tex, {"x": cx, "y": cy, "c": c}


def _takes_negative_values(coef: dict[str, int]) -> bool:
    """Exact: the form is negative at some rational point (true for every non-constant one, checked)."""
    point = {"x": Fraction(-100 * coef["x"]), "y": Fraction(0)}
    return coef["x"] * point["x"] + coef["y"] * point["y"] + coef["c"] < 0


# (gold, prediction, equal as real functions where the gold has a real value); E is a linear form that
# takes negative values: an identity that holds only for positive values is not an identity
DOMAIN = [
    ("|{E}|", "{E}", False),
    (r"\sqrt{({E})^2}", "{E}", False),
    (r"\sqrt{({E})^2}", "|{E}|", True),
    (r"\left(({E})^2\right)^{3/2}", "({E})^3", False),
    (r"\left(({E})^2\right)^{3/2}", "|{E}|^3", True),
    (r"\sqrt{({E})^4}", "({E})^2", True),
    (r"\ln\left(({E})^2\right)", r"2\ln({E})", False),
    (r"\ln|{E}|", r"\ln({E})", False),
]


@pytest.mark.parametrize(("gold", "pred", "equal"), DOMAIN)
def test_identities_for_positive_values_only_are_refused(
    verifier: MathVerifier, gold: str, pred: str, equal: bool
) -> None:
    rng = random.Random(gold + pred)
    for _ in range(6):
        e, coef = _linear(rng)
        assert _takes_negative_values(coef)
        g, p = gold.replace("{E}", e), pred.replace("{E}", e)
        assert verdict(verifier, g, p) == ("correct" if equal else "incorrect"), (g, p)


def test_a_prediction_defined_wherever_the_gold_is_may_be_wider(verifier: MathVerifier) -> None:
    # 2 ln t is defined for t > 0 only, where ln(t^2) equals it; e^{ln t} likewise
    assert verdict(verifier, r"2\ln t", r"\ln(t^2)") == "correct"
    assert verdict(verifier, r"e^{\ln t}", "t") == "correct"
    assert verdict(verifier, r"\sqrt{s}\sqrt{t}", r"\sqrt{st}") == "correct"


def test_odd_roots_of_negative_numbers_are_real(verifier: MathVerifier) -> None:
    rng = random.Random(27)
    for _ in range(20):
        root, k = rng.randint(2, 9), rng.choice([3, 5])
        assert verdict(verifier, f"\\sqrt[{k}]{{-{root**k}}}", f"-{root}") == "correct"
        assert verdict(verifier, f"\\sqrt[{k}]{{-{root**k}}}", f"{root}") == "incorrect"
        assert verdict(verifier, f"(-{root**k})^{{1/{k}}}", f"-{root}") == "correct"
        assert verdict(verifier, f"\\sqrt[{k}]{{{root**k}t^{k}}}", f"{root}t") == "correct"


@pytest.mark.parametrize("table", [SI], ids=["length"])
def test_one_letter_units_convert_against_a_quantity(verifier: MathVerifier, table: dict) -> None:
    for a in ("km", "cm", "mm"):
        value = Fraction(3)
        converted = value * table[a]
        assert converted.denominator == 1 or a != "km"
        num = f"{float(converted):g}"
        assert verdict(verifier, f"3 {a}", f"{num} m") == "correct", (a, num)
        assert verdict(verifier, f"{num} m", f"3 {a}") == "correct", (a, num)
        assert verdict(verifier, f"3 {a}", "3 m") == "incorrect", a
    assert verdict(verifier, "10 kg", "10000 g") == "correct"
    assert verdict(verifier, "5 m", "5 g") == "incorrect"  # alone, one letter is a name
