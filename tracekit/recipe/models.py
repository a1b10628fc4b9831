"""The recipe: one YAML file that says what to build. Each section's model lives with its stage."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tracekit.decontam.config import DecontamConfig
from tracekit.dedup.config import DedupConfig
from tracekit.engine.config import ExecutorConfig, LocalExecutorConfig
from tracekit.filters.config import FilterList
from tracekit.mix.config import MixConfig
from tracekit.publish.config import PublishConfig
from tracekit.rewrite.config import RewriteConfig
from tracekit.select.config import SelectConfig
from tracekit.sources.config import SourceConfig
from tracekit.teachers.config import DatasetTeacherConfig, TeacherConfig
from tracekit.verify.config import VerifyConfig

Compression = Literal["snappy", "lz4", "zstd", "none"]


class Recipe(BaseModel):
    """A tracekit build recipe (`tracekit build RECIPE`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.\-]+$", description="dataset name")
    output: str = Field(..., description="output folder (relative to the recipe file)")
    description: str | None = Field(None, description="one paragraph for the dataset card")
    license: str = Field("other", description="license of the built dataset (card front matter)")
    seed: int = Field(0, description="seed for every random choice (mix, splits)")
    sources: list[SourceConfig] = Field(..., min_length=1)
    select: SelectConfig | None = Field(
        None, description="which prompts the teacher samples: a student's pass rate window, LLM labels"
    )
    teacher: TeacherConfig = Field(default_factory=DatasetTeacherConfig)
    rewrite: RewriteConfig | None = Field(
        None, description="send every trace through a model with a template before it is verified"
    )
    tokenizer: str | None = Field(
        None, description="HF tokenizer (name or local path) used to count tokens; none: counts stay empty"
    )
    verify: VerifyConfig = Field(default_factory=lambda: VerifyConfig())
    filters: FilterList = Field(default_factory=list, description="filters in the order they run")
    dedup: DedupConfig | None = Field(None, description="prompt/completion dedup and k per prompt")
    decontaminate: DecontamConfig | None = Field(None, description="benchmark n-gram decontamination")
    mix: MixConfig | None = Field(None, description="exact quotas per bucket, k per prompt, split")
    publish: PublishConfig | None = Field(None, description="push the dataset to the Hub after a build")
    executor: ExecutorConfig = Field(default_factory=lambda: LocalExecutorConfig())
    rows_per_shard: int = Field(
        5000, ge=1, description="traces per ledger shard (bounds memory; more shards = finer resume)"
    )
    compression: Compression = Field(
        "snappy",
        description="parquet codec of ledger/ and dataset/: snappy (fast, read everywhere), lz4, "
        "zstd (about half the size on real traces, 2-3x slower to write) or none",
    )

    @model_validator(mode="after")
    def _unique_sources(self) -> Recipe:
        seen: set[str] = set()
        for s in self.sources:
            if s.name in seen:
                raise ValueError(f"two sources are named {s.name!r}; source names must be unique")
            seen.add(s.name)
        return self
