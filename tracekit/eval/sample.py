"""One sampled answer to an evaluation problem, with its verdict once scored."""

from __future__ import annotations

from dataclasses import dataclass

from tracekit.eval.problem import EvalProblem


@dataclass(slots=True)
class EvalSample:
    """A model's answer to a problem (`sample_index` among its n), then the verifier's verdict.

    Example:
        >>> s = EvalSample(model="m", problem=EvalProblem(benchmark="b", problem_id="1", prompt="?",
        ...     domain="math", gold_answer="2"), sample_index=0, completion="\\\\boxed{2}")
        >>> s.verdict
        'unverified'
    """

    model: str
    problem: EvalProblem
    sample_index: int
    completion: str
    backend: str = "samples"
    reasoning: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None
    error: str | None = None
    seed: int | None = None
    prompt_messages: list[dict[str, str]] | None = None
    # filled by scoring
    answer_text: str | None = None
    think_format: str | None = None
    think_blocks: int | None = None
    extracted_answer: str | None = None
    verdict: str = "unverified"
    verify_method: str | None = None
    verify_detail: str | None = None

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"
