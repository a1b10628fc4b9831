"""Votes among a prompt's samples: who agrees with whom, and whether the largest group is a majority.

Used when a prompt has no gold answer (`verify: {math: {no_gold: majority}}`) or when its gold may be
wrong (`gold_repair: majority`). What "agree" means is the caller's: for math, the math verifier
decides whether one sample's answer matches another's.

    >>> answers = ["1/2", "0.5", "2", None, "1/2"]
    >>> same = lambda i, j: eval(answers[i]) == eval(answers[j])  # a stand-in for the verifier
    >>> groups = group_agreeing(answers, same)
    >>> groups
    [[0, 1, 4], [2]]
    >>> vote = count_votes(groups, voters=5, min_agreement=0.5)
    >>> vote.winner, vote.share
    ([0, 1, 4], 0.6)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Public names: they show in the ledger (`verify_method`, `verify_detail`, `gold_source`).
METHOD_MAJORITY = "math_majority"
DETAIL_NO_MAJORITY = "no_majority"
GOLD_GIVEN = "given"
GOLD_MAJORITY = "majority"
GOLD_REPAIRED = "repaired"

# One-word answers that say there is none; longer answers of plain words never vote (see casts_a_vote).
NON_ANSWER_WORDS = frozenset({"unknown", "unsure", "unclear", "idk", "n/a", "na", "skip", "pass", "?"})
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|textit|mbox)\s*\{([^{}]*)\}")
_MATH_MARK = re.compile(r"[0-9=<>+*/^_|\\()\[\]{}]|(?<![A-Za-z])-")


@dataclass(frozen=True)
class Vote:
    """The groups of agreeing samples (largest first) and the one that won, if any."""

    groups: list[list[int]]
    voters: int
    winner: list[int] | None

    @property
    def share(self) -> float:
        """Share of the voters in the largest group (0.0 with no voters or no answers)."""
        if not self.groups or not self.voters:
            return 0.0
        return len(self.groups[0]) / self.voters


def casts_a_vote(answer: str | None) -> bool:
    r"""Whether an extracted answer takes part in a vote. Without a gold nothing else tells a refusal from
    an answer, so a majority of "I give up" must not become the reference: an answer of plain words
    (no digit, symbol or LaTeX command once `\text{}` wrappers are read) votes only when it is one word
    that does not say there is no answer. Answers written with mathematics always vote.

        >>> [casts_a_vote(a) for a in [r"\frac{1}{2}", "x = 3", r"\pi", "Yes", "odd", None]]
        [True, True, True, True, True, False]
        >>> [casts_a_vote(a) for a in ["I give up.", r"\text{no idea}", "Unknown", "not sure"]]
        [False, False, False, False]
    """
    if answer is None:
        return False
    text = _TEXT_WRAPPER.sub(lambda m: m.group(1), answer).strip().rstrip(".!").strip()
    if _MATH_MARK.search(text):
        return True
    words = text.split()
    return len(words) == 1 and words[0].lower() not in NON_ANSWER_WORDS


def group_agreeing(answers: Sequence[str | None], agree: Callable[[int, int], bool]) -> list[list[int]]:
    """Indices of the answered samples in groups: each joins the first group whose first member it
    agrees with (`agree(i, first)`), else starts a new one. Samples without an answer (None) join none.
    Identical answer texts agree without asking. Groups come largest first, then in order of forming."""
    groups: list[list[int]] = []
    for i, ans in enumerate(answers):
        if ans is None:
            continue
        for g in groups:
            first = g[0]
            if ans.strip() == (answers[first] or "").strip() or agree(i, first):
                g.append(i)
                break
        else:
            groups.append([i])
    return sorted(groups, key=lambda g: -len(g))  # stable: ties keep the order they formed in


def count_votes(groups: list[list[int]], *, voters: int, min_agreement: float) -> Vote:
    """The largest group wins when it holds at least `min_agreement` of `voters` and no other group is
    as large (a tie at the top has no majority)."""
    winner = None
    if groups and voters:
        top = groups[0]
        alone = len(groups) == 1 or len(groups[1]) < len(top)
        if alone and len(top) >= min_agreement * voters - 1e-9:
            winner = top
    return Vote(groups=groups, voters=voters, winner=winner)
