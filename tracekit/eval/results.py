"""Per (model, benchmark) results: pass@k with intervals, pass@1 -> pass@k gap, answer diversity,
response length and truncation rate.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tracekit.eval.passk import PassAtK, benchmark_pass_at_k
from tracekit.eval.sample import EvalSample
from tracekit.eval.scorer import answer_key


@dataclass
class BenchResult:
    """The numbers of one model on one benchmark."""

    model: str
    benchmark: str
    problems: int
    samples: int
    correct: int
    pass_at: list[PassAtK]
    distinct_answers: float  # mean number of distinct final answers per problem
    no_answer_rate: float  # share of samples without an extractable final answer
    mean_completion_tokens: float | None
    mean_completion_chars: float
    truncation_rate: float
    error_rate: float
    per_problem: list[dict[str, Any]] = field(default_factory=list)

    @property
    def gap(self) -> float | None:
        """pass@k_max - pass@1 (how much more sampling finds; a small gap with low diversity = collapse)."""
        by_k = {p.k: p.value for p in self.pass_at if p.problems}
        if 1 not in by_k or len(by_k) < 2:
            return None
        return by_k[max(by_k)] - by_k[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "benchmark": self.benchmark,
            "problems": self.problems,
            "samples": self.samples,
            "correct": self.correct,
            "pass_at_k": {str(p.k): p.to_dict() for p in self.pass_at},
            "pass_at_k_minus_pass_at_1": self.gap,
            "distinct_answers_per_problem": self.distinct_answers,
            "no_answer_rate": self.no_answer_rate,
            "mean_completion_tokens": self.mean_completion_tokens,
            "mean_completion_chars": self.mean_completion_chars,
            "truncation_rate": self.truncation_rate,
            "error_rate": self.error_rate,
            "per_problem": self.per_problem,
        }


def compute_results(
    samples: list[EvalSample], *, ks: list[int], level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> list[BenchResult]:
    """One `BenchResult` per (model, benchmark), in the order they first appear in `samples`."""
    groups: dict[tuple[str, str], list[EvalSample]] = defaultdict(list)
    for s in samples:
        groups[(s.model, s.problem.benchmark)].append(s)
    out = []
    for (model, bench), group in groups.items():
        per_problem: dict[tuple[str, int], list[EvalSample]] = defaultdict(list)
        for s in group:
            per_problem[(s.problem.problem_id, s.problem.row_index)].append(s)
        rows, counts, distinct = [], [], []
        for (pid, _), ss in per_problem.items():
            n, c = len(ss), sum(1 for s in ss if s.verdict == "correct")
            keys = {k for k in (answer_key(s) for s in ss) if k is not None}
            counts.append((n, c))
            distinct.append(len(keys))
            rows.append({"problem_id": pid, "n": n, "correct": c, "distinct_answers": len(keys)})
        tokens = [s.completion_tokens for s in group if s.completion_tokens is not None]
        total = len(group)
        out.append(
            BenchResult(
                model=model,
                benchmark=bench,
                problems=len(per_problem),
                samples=total,
                correct=sum(c for _, c in counts),
                pass_at=[
                    benchmark_pass_at_k(counts, k=k, level=level, resamples=resamples, seed=seed) for k in ks
                ],
                distinct_answers=sum(distinct) / len(distinct),
                no_answer_rate=sum(1 for s in group if answer_key(s) is None) / total,
                mean_completion_tokens=sum(tokens) / len(tokens) if tokens else None,
                mean_completion_chars=sum(len(s.completion or "") for s in group) / total,
                truncation_rate=sum(1 for s in group if s.truncated) / total,
                error_rate=sum(1 for s in group if s.verdict == "error") / total,
                per_problem=rows,
            )
        )
    return out
