"""Answer extraction: boxes, 'final answer is', bare answers, never from inside the thinking."""

from __future__ import annotations

import random

import pytest

from tracekit.parse.split import split_reasoning
from tracekit.verify.math.extract import extract_answer, extract_gold, find_boxes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so the answer is \boxed{42}.", "42"),
        (r"first \boxed{1} then, after checking, \boxed{2}", "2"),
        (r"\fbox{7}", "7"),
        (r"\boxed{\frac{1}{\sqrt{2}}}", r"\frac{1}{\sqrt{2}}"),
        (r"\boxed{\{1, \{2\}\}}", r"\{1, \{2\}\}"),
        (r"\boxed 5.", "5"),
        (r"roots $\boxed{-2}$ and $\boxed{1}$", "-2, 1"),
        (r"\boxed{1} then a long detour with many words in between \boxed{2}", "2"),
        ("Final Answer: The final answer is $(0, 1)$. I hope it is correct.", "(0, 1)"),
        ("The final answer is 12,000,023. I hope it is correct.", "12,000,023"),
        ("Final Answer: The largest $n$ is 34.", "34"),
        ("7,425,000", "7,425,000"),
        (r"\frac{1}{2}", r"\frac{1}{2}"),
        ("$x = 3$", "x = 3"),
        ("The answer is 17.", "17"),
    ],
)
def test_extracts_the_final_answer(text: str, expected: str) -> None:
    assert extract_answer(text) == expected


def test_never_reads_inside_the_thinking() -> None:
    text = r"<think>the answer is \boxed{9}</think>I could not decide."
    assert extract_answer(text) is None
    assert extract_answer(r"<think>\boxed{9}</think>So \boxed{10}.") == "10"
    assert extract_answer(r"<think>\boxed{9} still thinking") is None  # unclosed block: all thinking
    assert split_reasoning("no block here").answer_text == "no block here"


def test_bare_last_number_only_when_allowed() -> None:
    text = "We add them up and get 12 apples in total, which is what they wanted"
    assert extract_answer(text) is None
    assert extract_answer(text, allow_bare_number=True) == "12"
    assert (
        extract_answer("AZYUK2A", allow_bare_number=True) is None
    )  # a digit glued to a word is not a number


def test_unclosed_box_takes_the_rest() -> None:
    assert find_boxes(r"\boxed{12")[-1][2] == "12"


def test_gold_forms() -> None:
    assert extract_gold("$\\frac{14}{3}$") == "\\frac{14}{3}"
    assert extract_gold("Thus the area is $\\boxed{15}$ square units.") == "15"
    assert extract_gold("x^2+1") == "x^2+1"
    assert extract_gold("") is None


def _value(rng: random.Random) -> tuple[str, str, str]:
    """(as written in the text, the gold, a wrong gold): integers, decimals, fractions, math segments."""
    k = rng.random()
    if k < 0.4:
        v = rng.randint(-50, 5000)
        return str(v), str(v), str(v + rng.choice((-1, 1, 10)))
    if k < 0.6:
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        return f"{a}.{b:02d}", f"{a}.{b:02d}", f"{a}.{b + 1:02d}"
    a, b = rng.randint(1, 30), rng.randint(31, 60)
    written = rng.choice((f"$\\frac{{{a}}}{{{b}}}$", f"\\(\\dfrac{{{a}}}{{{b}}}\\)", f"$\\frac{{{a}}}{{{b}}}$"))
    return written, f"\\frac{{{a}}}{{{b}}}", f"\\frac{{{a + 1}}}{{{b}}}"


FILLER = [
    "We expand both sides and collect the terms.",
    "Let me double-check the arithmetic once more.",
    "This matches the earlier estimate, so the setup is consistent.",
    "Substituting back gives the same result.",
]

# (template, reads the value) - {v} is the value as written, {w} another value stated earlier
CLOSINGS = [
    ("Therefore, $\\boxed{{{v}}}$ is the final answer.", True),
    ("So the first part is $\\boxed{{{w}}}$.\n\n**Final Answer**\n\nThe value asked for is {v}.", True),
    ("**Final Answer**\n\nThe time constant is {w} and the steady-state value is {v}.", True),
    ("Adding the parts: {w} + 0 = **{v}**", True),
    ("The total comes to **{v}**\n\n\n\nLet me know if you have any other questions!", True),
    ("Therefore, the polygon has {v} sides.\n\nI think that's the correct answer.", True),
    ("It is the same answer as before.\n\nSo, Hillary has {v} nickels.", True),
    ("I'm confident that {v} is the correct answer.", True),
    ("I checked it twice and the answer is correct.\n\nThe greater integer is indeed {v}.", True),
    ("Every method I try, I end up with {v} inches per second.", True),
    ("The answer is {w}.\n\nWait, that ignores a case.\n\nLet me redo it.\n\nThen the count becomes", False),
    ("So the answer is {v}, but let me try another value of \\(k =", False),
    ("Alternatively, I can think", False),
]


def test_generated_closings_read_the_stated_value() -> None:
    """Closing sentences in the shapes real traces use, with random values and reasoning before them:
    the stated value is read (or, for a trace cut off mid-thought, nothing is)."""
    from tracekit.verify.math import MathVerifier, MathVerifyConfig

    rng = random.Random(1515)
    v = MathVerifier(MathVerifyConfig())
    try:
        for trial in range(4 * len(CLOSINGS)):
            template, reads = CLOSINGS[trial % len(CLOSINGS)]
            written, gold, wrong = _value(rng)
            other = str(rng.randint(100000, 200000))  # never equal to a generated value
            text = "\n\n".join(rng.sample(FILLER, rng.randint(1, 3))) + "\n\n"
            text += template.format(v=written, w=other)
            got = v.verify(answer_text=text, gold=gold)
            if reads:
                assert got.verdict == "correct", (text, got)
                assert v.verify(answer_text=text, gold=wrong).verdict == "incorrect", text
            else:
                assert got.verdict == "incorrect" and got.detail == "no_answer", (text, got)
    finally:
        v.close()
