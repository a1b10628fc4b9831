"""The `verify: {math: ...}` recipe section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_MIN_AGREEMENT = 0.5  # `no_gold: majority`: share of a prompt's samples the largest group needs
DEFAULT_REPAIR_AGREEMENT = 0.75  # `gold_repair: majority`: the strong majority that replaces a gold


class MathJudgeConfig(BaseModel):
    """Optional LLM-judge fallback for answers the rules cannot decide (off by default).

    Example:
        >>> MathJudgeConfig(enabled=True, base_url="http://localhost:8000/v1", model="judge")
        ... # doctest: +ELLIPSIS
        MathJudgeConfig(enabled=True, ...)
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=False, description="ask the judge when the rules cannot decide")
    base_url: str = Field(default="", description="OpenAI-compatible base URL, e.g. http://host:8000/v1")
    model: str = Field(default="", description="model name sent in the chat/completions request")
    api_key_env: str | None = Field(
        default=None, description="environment variable holding the API key (never the key itself)"
    )
    timeout_s: float = Field(default=60.0, gt=0, description="HTTP timeout per judge request")
    max_tokens: int = Field(default=16, ge=1, description="tokens the judge may answer with")


class MathAuditConfig(BaseModel):
    """A second opinion on a random sample of verdicts (off by default: `sample: 0`).

    Example:
        >>> MathAuditConfig(sample=100).seed
        0
    """

    model_config = ConfigDict(extra="forbid")

    sample: int = Field(
        default=0, ge=0, description="traces re-checked per source and verdict (accepted, rejected); 0: no audit"
    )
    seed: int = Field(default=0, description="seed of the random sample (the same seed draws the same traces)")
    judge: bool = Field(default=True, description="ask the LLM judge of `judge:` when it is enabled")
    math_verify: bool = Field(default=True, description="ask Math-Verify when it is installed")


class MathVerifyConfig(BaseModel):
    """How math traces are checked against the gold answer.

    Example:
        >>> MathVerifyConfig(timeout_s=2.0).allow_bare_number
        False
    """

    model_config = ConfigDict(extra="forbid")

    timeout_s: float = Field(
        default=5.0, gt=0, description="wall time for one symbolic comparison; the worker is killed after it"
    )
    allow_bare_number: bool = Field(
        default=False,
        description="if no \\boxed{} or 'final answer is' is found, take the last number of the answer text",
    )
    decimal_sig_digits: int = Field(
        default=6,
        ge=1,
        description=(
            "a decimal answer for an exact value that does not terminate (1/3, pi/2, sqrt 2) is correct when it "
            "has at least this many significant digits and is that value rounded or cut at its last digit; "
            "for a terminating value (1/8) only the exact decimal is correct"
        ),
    )
    percent_as_fraction: bool = Field(
        default=True, description="28% also matches 0.28 (and 28 always matches 28%)"
    )
    allow_set_relation_comp: bool = Field(
        default=True,
        description=(
            "accept an inequality answer for an interval gold (x<3 for (-oo,3)); the reverse (interval answer "
            "for an inequality gold) is always accepted"
        ),
    )
    strict: bool = Field(
        default=True, description="if false, free variables may be renamed (f(y) matches f(x))"
    )
    judge: MathJudgeConfig = Field(default_factory=MathJudgeConfig, description="LLM-judge fallback")
    audit: MathAuditConfig = Field(
        default_factory=MathAuditConfig, description="re-check a sample of verdicts with a second opinion"
    )
    domains: list[str] = Field(default_factory=lambda: ["math"], description="trace domains this applies to")
    no_gold: Literal["majority"] | None = Field(
        default=None,
        description=(
            "majority: a prompt without a gold answer takes the answer of its largest group of agreeing "
            "samples (the verifier decides who agrees) as the reference, when that group holds at least "
            "`min_agreement` of the samples; the rest are incorrect. Below that the traces stay unverified "
            "(detail no_majority). Default: such traces stay unverified"
        ),
    )
    min_agreement: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description=f"share of a prompt's samples the majority group needs (default {DEFAULT_MIN_AGREEMENT})",
    )
    gold_repair: Literal["majority"] | None = Field(
        default=None,
        description=(
            "majority: when no sample matches a prompt's gold answer but at least `repair_min_agreement` of "
            "the samples agree on another, that answer becomes the reference (gold_source `repaired`; the "
            "given gold stays in gold_answer)"
        ),
    )
    repair_min_agreement: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description=f"share of the samples that must agree to replace a gold (default {DEFAULT_REPAIR_AGREEMENT})",
    )

    @property
    def votes(self) -> bool:
        """Whether a prompt's samples are verified together (majority with no gold, or gold repair)."""
        return self.no_gold == "majority" or self.gold_repair == "majority"
