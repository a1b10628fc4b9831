"""The `decontaminate:` recipe section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tracekit.decontam.registry import BENCHMARKS, DEFAULT_BENCHMARKS, BenchmarkSource


class BenchmarkEntry(BaseModel):
    """A benchmark given in the recipe: a registry name with overrides, or a user file / Hub dataset.

    Example: `{name: my_eval, path: evals/my_eval.jsonl, column: question}`
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., description="benchmark name (shown in the ledger and stats)")
    path: str | None = Field(default=None, description="local file: .jsonl, .jsonl.gz, .json or .parquet")
    hub: str | None = Field(default=None, description="Hugging Face dataset id")
    config: str | None = Field(default=None, description="dataset config (Hub)")
    split: str = Field(default="test", description="split (Hub)")
    column: str | None = Field(
        default=None, description="text column (default: the registry's, else `problem`)"
    )
    id_column: str | None = Field(default=None, description="item id column (default: row number)")

    @model_validator(mode="after")
    def _where(self) -> BenchmarkEntry:
        if self.path and self.hub:
            raise ValueError(f"benchmark {self.name!r}: give `path` or `hub`, not both")
        if not (self.path or self.hub) and self.name not in BENCHMARKS:
            raise ValueError(
                f"benchmark {self.name!r} is not in the registry ({', '.join(sorted(BENCHMARKS))}); "
                "give a `path` or `hub`"
            )
        return self

    def source(self) -> BenchmarkSource:
        base = BENCHMARKS.get(self.name)
        if base is None or self.path or self.hub:
            return BenchmarkSource(
                name=self.name,
                hub=self.hub,
                config=self.config,
                split=self.split,
                column=self.column or (base.column if base else "problem"),
                id_column=self.id_column,
                path=self.path,
            )
        return BenchmarkSource(
            name=base.name,
            hub=base.hub,
            config=self.config or base.config,
            split=self.split if "split" in self.model_fields_set else base.split,
            column=self.column or base.column,
            id_column=self.id_column or base.id_column,
            local_file=base.local_file,
            local_column=base.local_column if not self.column else None,
            local_id_column=base.local_id_column if not self.id_column else None,
        )


def _default_fields() -> list[Literal["prompt", "completion"]]:
    return ["prompt"]


def _default_benchmarks() -> list[str | BenchmarkEntry]:
    return list(DEFAULT_BENCHMARKS)


class DecontamConfig(BaseModel):
    """Word n-gram decontamination against benchmarks.

    Example (recipe YAML):
        decontaminate: {ngram: 8, fields: [prompt], benchmarks: [aime24, math500, {name: mine, path: x.jsonl}]}
    """

    model_config = ConfigDict(extra="forbid")

    ngram: int = Field(default=8, ge=3, description="words per n-gram (after normalisation)")
    fields: list[Literal["prompt", "completion"]] = Field(
        default_factory=_default_fields, min_length=1, description="trace fields checked"
    )
    benchmarks: list[str | BenchmarkEntry] = Field(
        default_factory=_default_benchmarks,
        min_length=1,
        description="registry names or entries",
    )
    data_dir: str | None = Field(
        default=None,
        description="folder with local benchmark copies (registry file names); used before the Hub",
    )
    min_matches: int = Field(
        default=1, ge=1, description="distinct matching n-grams needed to flag a benchmark item"
    )
    max_hits_per_trace: int = Field(
        default=16, ge=1, description="benchmark items recorded per trace at most"
    )
    batch_size: int = Field(default=4096, ge=1, description="ledger rows read per batch")

    @field_validator("benchmarks")
    @classmethod
    def _known(cls, v: list[str | BenchmarkEntry]) -> list[str | BenchmarkEntry]:
        names = []
        for b in v:
            if isinstance(b, str) and b not in BENCHMARKS:
                raise ValueError(
                    f"unknown benchmark {b!r}; known: {', '.join(sorted(BENCHMARKS))} "
                    "(or give {name, path | hub, split, column})"
                )
            names.append(b if isinstance(b, str) else b.name)
        if len(set(names)) != len(names):
            raise ValueError(f"benchmark listed twice: {sorted(n for n in set(names) if names.count(n) > 1)}")
        return v

    def sources(self) -> list[BenchmarkSource]:
        return [BENCHMARKS[b] if isinstance(b, str) else b.source() for b in self.benchmarks]
