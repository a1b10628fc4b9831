"""Recipe model of a source (`sources:` in a recipe)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tracekit.verify.config import VerifyConfig


class ColumnsConfig(BaseModel):
    """Which source column holds what. Only `prompt` (or `messages`) is required."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field("prompt", description="prompt text column")
    answer: str | None = Field(None, description="gold answer column (math)")
    tests: str | None = Field(None, description="tests column (code), any published shape")
    generations: str | None = Field(
        None, description="existing completions: one string or a list of strings per row (replay)"
    )
    messages: str | None = Field(
        None, description="a chat whose last assistant turn is the trace (replay); earlier turns are the prompt"
    )
    reasoning: str | None = Field(None, description="separate reasoning text column (replay)")
    finish_reason: str | None = Field(None, description="finish reason column, if the source has one")
    difficulty: str | None = Field(None, description="difficulty column, if any")
    id: str | None = Field(None, description="column with the source's own row id, if any")


class SourceConfig(BaseModel):
    """One prompt source: a local JSONL/Parquet file (or folder/glob), a saved `datasets` dataset, or a Hub id."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.\-]+$", description="unique source name")
    domain: str = Field("math", description="math | code | science | general | ...")
    path: str | None = Field(None, description="local file, folder or glob (relative to the recipe file)")
    hub: str | None = Field(None, description="Hugging Face Hub dataset id")
    split: str = Field("train", description="split (Hub or saved DatasetDict)")
    config: str | None = Field(None, description="Hub dataset config name")
    format: Literal["auto", "jsonl", "json", "parquet", "arrow"] = Field(
        "auto", description="file format; auto guesses from the extension"
    )
    columns: ColumnsConfig = Field(default_factory=lambda: ColumnsConfig())
    difficulty: str | None = Field(None, description="difficulty label for every row of this source")
    limit: int | None = Field(None, ge=1, description="read only rows numbered below this (per file)")
    match: dict[str, list[str | int | bool]] | None = Field(
        None,
        description="read only rows whose column holds one of the listed values, e.g. "
        "{source: [amc_aime, math]} (a subset of a mixed dataset); other rows are skipped, their row "
        "numbers kept",
    )
    verify: VerifyConfig | None = Field(
        None, description="verifier settings for this source only (override the recipe's `verify:`)"
    )
    reasoning: bool = Field(True, description="false for general samples (no thinking)")
    system_prompt: str | None = Field(None, description="system message (R1: none)")
    prompt_template: str | None = Field(
        None, description="user message template with {prompt}; default: the teacher's"
    )
    sampling: dict[str, Any] | None = Field(
        None, description="sampling parameters of this source over the teacher's (e.g. {n: 1, max_tokens: 4096})"
    )

    @field_validator("sampling")
    @classmethod
    def _sampling_keys(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            from tracekit.teachers.config import SamplingConfig

            SamplingConfig.model_validate(v)  # same names and bounds as the teacher's `sampling`
        return v

    @field_validator("match", mode="before")
    @classmethod
    def _match_lists(cls, v: Any) -> Any:
        if isinstance(v, dict):  # a single value is a list of one
            return {k: x if isinstance(x, list) else [x] for k, x in v.items()}
        return v

    @model_validator(mode="after")
    def _one_location(self) -> SourceConfig:
        if (self.path is None) == (self.hub is None):
            raise ValueError("give exactly one of `path` or `hub`")
        return self
