"""`rewrite:` in a recipe: which model rewrites the traces, with what template, and which traces."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tracekit.teachers.config import EndpointModelConfig

# what a template may name; {completion} is required
PLACEHOLDERS = ("{prompt}", "{completion}", "{reasoning}", "{answer}")

DEFAULT_TEMPLATE = (
    "Below is a problem and a solver's raw working. Rewrite the working into two sections without "
    "changing its reasoning or its final answer: first the thinking, enclosed in <|begin_of_thought|> "
    "and <|end_of_thought|>, with steps separated by blank lines; then a clean, self-contained solution "
    "enclosed in <|begin_of_solution|> and <|end_of_solution|>, ending with the final answer as it was "
    "given (in \\boxed{} for a math answer, in one code block for a program).\n\n"
    "Problem:\n{prompt}\n\nRaw working:\n{completion}"
)


class RewriteConfig(BaseModel):
    """Rewrite each trace with `teacher` before it is parsed and verified; the verifiers then judge the
    rewritten text, which is what the dataset holds. The original stays in `original_completion`
    (`keep_original`), the model in `rewrite_model`.

    Traces that failed at the teacher, came back empty or were cut at `max_tokens` are not sent (they
    are dropped later whatever their text). A rewrite that fails after its retries, or is itself cut
    off, drops the trace with reason `rewrite_failed`.

    Example:
        >>> RewriteConfig.model_validate({"teacher": {"base_urls": ["http://h:8000/v1"], "model": "m"},
        ...     "template": "Reformat:\\n{completion}"}).keep_original
        True
    """

    model_config = ConfigDict(extra="forbid")

    teacher: EndpointModelConfig = Field(..., description="the model that rewrites (OpenAI-compatible endpoints)")
    template: str = Field(
        DEFAULT_TEMPLATE,
        description="user message with {completion} (the trace, thinking included) and optionally "
        "{prompt}, {reasoning}, {answer} (the text after the thinking)",
    )
    keep_original: bool = Field(True, description="keep the teacher's text in `original_completion`")
    domains: list[str] | None = Field(None, description="rewrite only traces of these domains (None: all)")
    sources: list[str] | None = Field(None, description="rewrite only traces of these sources (None: all)")

    @field_validator("template")
    @classmethod
    def _template(cls, v: str) -> str:
        if "{completion}" not in v:
            raise ValueError("the rewrite `template` must contain {completion} (the trace to rewrite)")
        return v
