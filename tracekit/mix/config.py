"""Recipe model of the mix (`mix:` in a recipe): buckets with exact quotas, k per prompt, a split."""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tracekit.record import LEDGER_COLUMNS

_ORDER_TERM = re.compile(
    r"\s*(?P<col>[A-Za-z_][A-Za-z0-9_]*)(?:\s+(?P<dir>ASC|DESC))?(?:\s+NULLS\s+(?P<nulls>FIRST|LAST))?\s*",
    re.IGNORECASE,
)


def order_by_sql(text: str) -> str:
    """The ORDER BY list `text` (`column [ASC|DESC] [NULLS FIRST|LAST], ...`) rebuilt from what it names.

    Only ledger columns and those keywords are accepted, and the SQL is written from the parsed parts
    (quoted column names), never from the text itself, so nothing else can reach the query. Nulls go
    last unless the term says otherwise. Raises ValueError naming the term that is not one.

        >>> order_by_sql("pass_rate ASC, completion_tokens desc")
        '"pass_rate" ASC NULLS LAST, "completion_tokens" DESC NULLS LAST'
        >>> order_by_sql("pass_rate; DROP TABLE x")
        Traceback (most recent call last):
        ...
        ValueError: `order_by` term 'pass_rate; DROP TABLE x' is not `column [ASC|DESC] [NULLS FIRST|LAST]`
    """
    terms = []
    for part in text.split(","):
        m = _ORDER_TERM.fullmatch(part)
        if m is None:
            raise ValueError(f"`order_by` term {part.strip()!r} is not `column [ASC|DESC] [NULLS FIRST|LAST]`")
        col = m["col"]
        if col not in LEDGER_COLUMNS:
            raise ValueError(f"`order_by` names {col!r}, which is not a ledger column (see schemas/trace.schema.json)")
        terms.append(f'"{col}" {(m["dir"] or "ASC").upper()} NULLS {(m["nulls"] or "LAST").upper()}')
    return ", ".join(terms)


class MixBucket(BaseModel):
    """One bucket: the traces whose ledger row satisfies `where`, `count` of them (or `share` of `total`).

    Example:
        >>> MixBucket(name="math", where="domain = 'math' AND verdict = 'correct'", count=400_000).count
        400000
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.\-]+$", description="bucket name (a dataset column value)")
    where: str = Field(
        "true",
        min_length=1,
        description="SQL predicate (DuckDB) over ledger columns, e.g. \"domain = 'math' AND verdict = 'correct'\"",
    )
    count: int | None = Field(None, ge=0, description="traces wanted in this bucket")
    share: float | None = Field(None, gt=0, le=1, description="fraction of `total` wanted in this bucket")
    order_by: str | None = Field(
        None,
        description=(
            "order in which the bucket's quota is taken, over ledger columns: `column [ASC|DESC] [NULLS "
            "FIRST|LAST], ...` (e.g. \"pass_rate ASC, completion_tokens DESC\": hardest, then longest "
            "first); it also decides which of a prompt's traces count first toward `max_per_prompt`. "
            "Ties, and buckets without it, go one trace per prompt at a time in seeded random order"
        ),
    )

    spread_by: str | None = Field(
        None,
        description=(
            "a ledger column (e.g. domain_label) whose values share the bucket's quota equally: each value "
            "gets as many traces as the others, a value with too few gives what it has and the rest goes to "
            "the others (s1's uniform draw over domains); within a value, `order_by` (else seeded) order"
        ),
    )

    @field_validator("order_by")
    @classmethod
    def _order_by(cls, v: str | None) -> str | None:
        if v is not None:
            order_by_sql(v)
        return v

    @field_validator("spread_by")
    @classmethod
    def _spread_by(cls, v: str | None) -> str | None:
        if v is not None and v not in LEDGER_COLUMNS:
            raise ValueError(f"`spread_by` names {v!r}, which is not a ledger column (see schemas/trace.schema.json)")
        return v

    @model_validator(mode="after")
    def _count_or_share(self) -> MixBucket:
        if (self.count is None) == (self.share is None):
            raise ValueError(f"bucket {self.name!r}: give exactly one of `count` or `share`")
        if ";" in self.where:
            raise ValueError(f"bucket {self.name!r}: `where` is one SQL predicate (no `;`)")
        return self


class SplitConfig(BaseModel):
    """Train/test split by prompt: every trace of a prompt lands on the same side.

    Example:
        >>> SplitConfig(test_size=0.01).test_size
        0.01
    """

    model_config = ConfigDict(extra="forbid")

    test_size: float | None = Field(
        None, gt=0, lt=1, description="fraction of the selected prompts in `test`"
    )
    test_prompts: int | None = Field(None, ge=1, description="number of prompts in `test`")
    seed: int = Field(0, description="seed of the prompt draw")

    @model_validator(mode="after")
    def _one_size(self) -> SplitConfig:
        if (self.test_size is None) == (self.test_prompts is None):
            raise ValueError("give exactly one of `test_size` or `test_prompts`")
        return self


class MixConfig(BaseModel):
    """`mix:` — exact quotas per bucket, at most k traces per prompt, deterministic for a seed.

    A trace whose row satisfies several buckets' predicates goes to the first bucket listed.

    Example (the R1 mix):
        >>> cfg = MixConfig(total=800_000, buckets=[
        ...     MixBucket(name="reasoning", where="domain <> 'general' AND verdict = 'correct'", share=0.75),
        ...     MixBucket(name="general", where="domain = 'general'", share=0.25)])
        >>> cfg.quotas()
        {'reasoning': 600000, 'general': 200000}
    """

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, description="seed of every random choice of the mix")
    max_per_prompt: int | None = Field(None, ge=1, description="at most this many traces of one prompt")
    fill: Literal["none", "resample"] = Field(
        "none", description="resample: go back to the teacher for short buckets until full or sources run dry"
    )
    max_rounds: int = Field(4, ge=1, description="resample rounds at most (fill: resample)")
    total: int | None = Field(None, ge=0, description="dataset size that `share` buckets are fractions of")
    buckets: list[MixBucket] = Field(..., min_length=1)
    split: SplitConfig | None = Field(None, description="optional train/test split by prompt")

    @model_validator(mode="after")
    def _check(self) -> MixConfig:
        names = [b.name for b in self.buckets]
        if len(set(names)) != len(names):
            raise ValueError("bucket names must be unique")
        shares = [b.share for b in self.buckets if b.share is not None]
        if shares and self.total is None:
            raise ValueError("buckets with `share` need `total`")
        if sum(shares) > 1 + 1e-9:
            raise ValueError(f"bucket shares add up to {sum(shares):g} > 1")
        return self

    def quotas(self) -> dict[str, int]:
        """Requested traces per bucket. Shares become counts by largest remainder, so shares adding up
        to 1 give exactly `total`."""
        out: dict[str, int] = {}
        exact: dict[str, float] = {}
        for b in self.buckets:
            if b.count is not None:
                out[b.name] = b.count
            else:
                assert b.share is not None and self.total is not None
                exact[b.name] = b.share * self.total
                out[b.name] = math.floor(exact[b.name] + 1e-9)
        target = round(sum(exact.values()))
        by_remainder = sorted(exact, key=lambda n: (-(exact[n] - out[n]), list(out).index(n)))
        for name in by_remainder[: max(0, target - sum(out[n] for n in exact))]:
            out[name] += 1
        return out
