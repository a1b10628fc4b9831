"""Recipe models of the teachers (`teacher:` in a recipe), one per `kind`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

R1_PROMPT_SUFFIX = "Please reason step by step, and put your final answer within \\boxed{}."
R1_PROMPT_TEMPLATE = "{prompt}\n" + R1_PROMPT_SUFFIX


class SamplingConfig(BaseModel):
    """Sampling parameters. Defaults are DeepSeek-R1's. Any other vLLM sampling parameter is passed on."""

    model_config = ConfigDict(extra="allow")

    n: int = Field(4, ge=1, description="samples per prompt")
    temperature: float = Field(0.6, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(32768, ge=1)
    seed: int | None = Field(None, description="base seed; per-request seeds derive from trace ids")


class DatasetTeacherConfig(BaseModel):
    """Replay traces that already exist in the sources (`generations` or `messages` columns)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["dataset"] = "dataset"
    model: str | None = Field(None, description="name of the model that wrote the traces (for the card)")
    max_generations: int | None = Field(
        None, ge=1, description="replay at most this many generations per prompt row"
    )


TeacherConfig = Annotated[DatasetTeacherConfig, Field(discriminator="kind")]
