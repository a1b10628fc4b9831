"""One evaluation problem: its prompt, and the reference the verifiers check answers against."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

EvalDomain = Literal["math", "code"]


@dataclass(frozen=True, slots=True)
class EvalProblem:
    """A problem of a benchmark. Math problems carry `gold_answer`, code problems `tests` (JSON text in
    any shape `tracekit.verify.code.read_tests` reads), `row_index` its row in `origin`. `published` is the date the problem became
    public, when the source says so (`--fresh-after` keeps problems published after a date).

    Example:
        >>> EvalProblem(benchmark="aime25", problem_id="0", prompt="...", domain="math", gold_answer="70").domain
        'math'
    """

    benchmark: str
    problem_id: str
    prompt: str
    domain: EvalDomain
    gold_answer: str | None = None
    tests: str | None = None
    published: dt.date | None = None
    row_index: int = 0
    origin: str = ""  # the file or Hub dataset the row came from
