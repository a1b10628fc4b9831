"""Answer extraction: boxes, 'final answer is', bare answers, never from inside the thinking."""

from __future__ import annotations

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
