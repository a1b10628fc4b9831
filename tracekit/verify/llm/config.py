"""`verify: {llm: {...}}`: which traces a judge model checks, and how it is asked."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tracekit.teachers.config import JudgeModelConfig

DEFAULT_TEMPLATE = (
    "You check a student's answer to a problem against the reference answer. Decide only whether the "
    "student's final answer is the same as the reference (equivalent forms count as the same; the "
    "student's reasoning does not matter). Think briefly if you need to, then end your reply with one "
    "line holding only YES (same answer) or NO.\n\n"
    "## Problem\n{prompt}\n\n## Student's answer\n{answer}\n\n## Reference answer\n{gold}"
)


class LLMVerifyConfig(BaseModel):
    """Ask `judge` whether each trace's answer matches its reference (`gold_answer`); verdicts are
    recorded with `verify_method` `judge` and the judge's reply in `verify_detail`.

    The reply's last YES or NO decides (`correct` / `incorrect`); a reply with neither, or a request
    that still fails after its retries, is `error` (dropped as verify_error unless `keep_errors`).
    Traces without a reference, or already dropped (truncated, teacher error), are not sent; an empty
    answer is `incorrect` (no_answer) without a request.

    Example:
        >>> LLMVerifyConfig.model_validate({"judge": {"base_urls": ["http://h:8000/v1"], "model": "j"},
        ...     "domains": ["science"]}).judge.sampling
        {'temperature': 0.0, 'max_tokens': 1024}
    """

    model_config = ConfigDict(extra="forbid")

    judge: JudgeModelConfig = Field(..., description="the judge model (OpenAI-compatible endpoints)")
    domains: list[str] = Field(..., min_length=1, description="trace domains the judge checks")
    template: str = Field(
        DEFAULT_TEMPLATE,
        description="the question, with {answer} and {gold} (and optionally {prompt}); it must ask for "
        "a last line YES or NO",
    )
    answer: Literal["answer_text", "completion"] = Field(
        "answer_text",
        description="what the judge sees as the student's answer: the text after the thinking, or the whole completion",
    )
    keep_errors: bool = Field(False, description="keep traces the judge could not decide (verdict error)")
    reject: bool = Field(
        True,
        description="drop traces judged incorrect; false records the verdict and keeps them (s1K kept its "
        "traces whatever their grade, and graded only a student's answers for difficulty)",
    )
    batch_size: int = Field(64, ge=1, description="traces judged at once")

    @field_validator("template")
    @classmethod
    def _template(cls, v: str) -> str:
        missing = [k for k in ("{answer}", "{gold}") if k not in v]
        if missing:
            raise ValueError(f"the judge `template` must contain {' and '.join(missing)}")
        return v
