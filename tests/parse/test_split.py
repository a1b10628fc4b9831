"""split_reasoning counts opening tags exactly (a format filter drops traces with more than one)."""

from __future__ import annotations

import random

from tracekit.parse.split import _count, split_reasoning


def test_tag_count_matches_str_count_on_adversarial_texts() -> None:
    rng = random.Random(0)
    pieces = ["<", "t", "h", "<think>", "<think", "i", "n", "k", ">", "<<"]
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        assert _count(text, "<think>") == text.count("<think>"), text


def test_think_blocks_counts_every_opening_tag() -> None:
    one = split_reasoning("<think>\na < b and b<c\n</think>\n\n\\boxed{1}")
    assert (one.think_blocks, one.reasoning, one.answer_text) == (1, "a < b and b<c", "\\boxed{1}")
    two = split_reasoning("<think>a</think> <think>b</think> x")
    assert two.think_blocks == 2 and two.answer_text == "x"
    assert split_reasoning("no tags < here").think_blocks == 0
