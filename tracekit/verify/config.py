"""`verify:` in a recipe (and in a source): which verifiers run, in the order the keys are given.

Each key is one verifier; `VERIFIERS` lists them (the engine builds one step per key present)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tracekit.verify.code.config import CodeVerifyConfig
from tracekit.verify.llm.config import LLMVerifyConfig
from tracekit.verify.math.config import MathVerifyConfig


class VerifyConfig(BaseModel):
    """Verifier settings. In a source, they replace the recipe's for that source's traces.

    Example:
        >>> VerifyConfig(math=MathVerifyConfig(allow_bare_number=True)).math.allow_bare_number
        True
    """

    model_config = ConfigDict(extra="forbid")

    math: MathVerifyConfig | None = Field(None, description="math verifier settings (see docs/verification.md)")
    code: CodeVerifyConfig | None = Field(None, description="code sandbox verifier settings")
    llm: LLMVerifyConfig | None = Field(
        None, description="a judge model checks free-form answers against the reference (method `judge`)"
    )


VERIFIERS: tuple[str, ...] = tuple(VerifyConfig.model_fields)
