"""Recipe model of the executor (`executor:` in a recipe)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class LocalExecutorConfig(BaseModel):
    """Run on this machine with datatrove's LocalPipelineExecutor."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["local"] = "local"
    tasks: int = Field(2, ge=1, description="shards of the per-trace stage; keep it fixed across resumes")
    workers: int = Field(-1, description="tasks run at once (-1: one per CPU core, at most tasks)")


ExecutorConfig = Annotated[LocalExecutorConfig, Field(discriminator="kind")]
