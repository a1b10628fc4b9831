"""The `dedup:` recipe section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class MinHashConfig(BaseModel):
    """Near-duplicate prompt detection: MinHash over word n-grams, digits kept.

    Two prompts are near-duplicates when their estimated Jaccard similarity is at least `threshold`
    and (with `numbers_must_match`) they contain the same numbers: math problems that differ only
    in their numbers are different problems, even when one number in a long statement changed.
    """

    model_config = ConfigDict(extra="forbid")

    ngram: int = Field(default=3, ge=1, description="words per shingle")
    num_perm: int = Field(default=128, ge=8, description="MinHash permutations (signature length)")
    bands: int = Field(default=32, ge=1, description="LSH bands; num_perm must be a multiple of bands")
    threshold: float = Field(
        default=0.7,
        gt=0.0,
        le=1.0,
        description="estimated Jaccard similarity at or above which prompts are near-duplicates",
    )
    numbers_must_match: bool = Field(
        default=True, description="near-duplicates must contain the same multiset of numbers"
    )
    seed: int = Field(default=42, description="seed of the hash functions")
    threads: int | None = Field(
        default=None, ge=1, description="threads that sketch the prompts (default: the cores available)"
    )

    @model_validator(mode="after")
    def _bands_divide(self) -> MinHashConfig:
        if self.num_perm % self.bands:
            raise ValueError(f"num_perm ({self.num_perm}) must be a multiple of bands ({self.bands})")
        return self


class DedupConfig(BaseModel):
    """Prompt and completion deduplication and the per-prompt cap.

    Example (recipe YAML):
        dedup: {prompts: minhash, completions: exact, max_per_prompt: 4}
    """

    model_config = ConfigDict(extra="forbid")

    prompts: Literal["exact", "minhash", "none"] = Field(
        default="minhash",
        description="exact: same prompt after normalisation; minhash: exact + near-duplicates (digits kept)",
    )
    completions: Literal["exact", "none"] = Field(
        default="exact", description="drop traces whose completion is identical to a better one"
    )
    max_per_prompt: int | None = Field(
        default=None, ge=1, description="keep at most this many traces per prompt (cluster)"
    )
    minhash: MinHashConfig = Field(default_factory=MinHashConfig, description="MinHash parameters")
    batch_size: int = Field(default=4096, ge=1, description="ledger rows read per batch")
