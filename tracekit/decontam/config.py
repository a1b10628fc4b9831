"""The `decontaminate:` recipe section."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tracekit.decontam.registry import BENCHMARKS, DEFAULT_BENCHMARKS, BenchmarkSource
from tracekit.teachers.config import RetryConfig


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


class JudgeFields(BaseModel):
    """What every judge backend shares: which candidates it sees and how requests are sent."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(..., description="judge model (Hub id or local path; for `openai`, the served name)")
    min_score: float = Field(
        default=0.4,
        ge=0,
        le=1,
        description="candidates at or above this similarity go to the judge (below the no-judge thresholds)",
    )
    max_missing_numbers: int = Field(
        default=0, ge=0, description="item numbers a candidate may lack from the prompt and still be judged"
    )
    max_candidates: int = Field(
        default=1, ge=1, description="benchmark items per prompt the judge is asked about (best first)"
    )
    max_tokens: int = Field(
        default=16, ge=1, description="tokens the judge may answer with (raise it for a reasoning model)"
    )
    max_concurrency: int = Field(default=16, ge=1, description="requests in flight")
    timeout_s: float = Field(default=120.0, gt=0, description="seconds one request may take before a retry")
    retries: RetryConfig = Field(default_factory=RetryConfig)
    cache_fsync_every: int = Field(
        default=64, ge=1, description="answers between two fsyncs of the judge's answer cache (resume)"
    )


class OpenAIJudgeConfig(JudgeFields):
    """A judge behind OpenAI-compatible endpoints that already run (the `openai` teacher backend).

    Example: `judge: {kind: openai, base_urls: [http://localhost:8000/v1], model: Qwen/Qwen3-8B}`
    """

    kind: Literal["openai"] = "openai"
    base_urls: list[str] = Field(..., min_length=1, description="endpoints ending in /v1")
    api_key_env: str | None = Field(
        default=None, description="name of the environment variable holding the API key"
    )


class VllmJudgeConfig(JudgeFields):
    """A judge served by a vLLM server that the stage starts and stops (the `vllm` teacher backend).

    Example: `judge: {kind: vllm, model: Qwen/Qwen3-8B, engine: {max_model_len: 8192}}`
    """

    kind: Literal["vllm"] = "vllm"
    engine: dict[str, Any] = Field(default_factory=dict, description="vLLM server arguments, as they are")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment of the server")
    startup_timeout_s: float = Field(default=1800.0, gt=0, description="seconds to wait for /health")


JudgeConfig = Annotated[OpenAIJudgeConfig | VllmJudgeConfig, Field(discriminator="kind")]


class EmbeddingConfig(BaseModel):
    """A sentence-embedding model whose cosine similarity replaces the token similarity.

    The thresholds of `rephrase:` then apply to cosine similarities: calibrate them for the model
    with `bench/decontam_speed.py --embedding MODEL --calibrate` (the defaults are the token
    similarity's). Example: `embedding: {model: sentence-transformers/all-MiniLM-L6-v2}`
    """

    model_config = ConfigDict(extra="forbid")

    model: str = Field(..., description="Hub id or local folder of a transformers encoder")
    revision: str | None = Field(default=None, description="model revision")
    batch_size: int = Field(default=64, ge=1, description="texts per forward pass")
    max_length: int = Field(default=512, ge=8, description="tokens per text (longer texts are cut)")
    device: str | None = Field(
        default=None, description="torch device (default: cuda if available, else cpu)"
    )


class RephraseConfig(BaseModel):
    """Rephrased benchmark problems: similarity that survives rewording, numbers, and an optional judge.

    Each prompt's most similar benchmark items are found by weighted token containment (IDF-weighted
    words, numbers and LaTeX commands of the item found in the prompt; see
    `tracekit/decontam/features.py`), or by an embedding model's cosine similarity. Without a judge,
    a candidate is flagged when every distinct number of the item is in the prompt, the prompt has
    at most `max_extra_numbers` others, and the similarity reaches the threshold for the item's count
    of distinct numbers (by default only items with 3+ numbers: fewer numbers say too little about
    which problem it is), and the prompt holds at least `min_formula_share` of the item's formulas.
    With a judge, the best candidates from `judge.min_score` whose numbers are all in the prompt are
    asked about instead, and the judge's answer decides.

    The default thresholds were chosen on a calibration set of hand-written rephrasings and
    template-sharing negatives (`bench/data/decontam_rephrasings.jsonl`, docs/decontamination.md).

    Example (recipe YAML):
        decontaminate: {rephrase: {}}   # the calibrated defaults, no judge
        decontaminate: {rephrase: {judge: {kind: openai, base_urls: [http://judge:8000/v1], model: m}}}
    """

    model_config = ConfigDict(extra="forbid")

    min_score_many_numbers: float | None = Field(
        default=0.65, ge=0, le=1, description="flag at this similarity when the item has 3+ distinct numbers"
    )
    min_score_few_numbers: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="flag at this similarity when the item has 1-2 distinct numbers (none: only the judge)",
    )
    min_score_no_numbers: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="flag at this similarity when the item has no numbers (none: only the judge)",
    )
    max_extra_numbers: int = Field(
        default=0,
        ge=0,
        description="numbers the prompt may have beyond the item's (a changed number shows up as one)",
    )
    min_formula_share: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="share of the item's formula (pairs of adjacent math tokens) the prompt must hold",
    )
    candidates: int = Field(default=3, ge=1, le=16, description="most similar items compared per prompt")
    judge: JudgeConfig | None = Field(
        default=None, description="ask an LLM whether candidates are the same problem"
    )
    embedding: EmbeddingConfig | None = Field(
        default=None, description="an embedding model for the similarity instead of token containment"
    )

    def threshold(self, distinct_numbers: int) -> float | None:
        """The no-judge similarity threshold for an item with this many distinct numbers (None: never)."""
        if distinct_numbers >= 3:
            return self.min_score_many_numbers
        if distinct_numbers >= 1:
            return self.min_score_few_numbers
        return self.min_score_no_numbers

    def scan_floor(self) -> float:
        """The lowest similarity any decision looks at (candidates below it are not kept)."""
        set_ = [
            t
            for t in (self.min_score_many_numbers, self.min_score_few_numbers, self.min_score_no_numbers)
            if t is not None
        ]
        floor = min(set_, default=1.0)
        return min(floor, self.judge.min_score) if self.judge is not None else floor


def _default_fields() -> list[Literal["prompt", "completion"]]:
    return ["prompt"]


def _default_benchmarks() -> list[str | BenchmarkEntry]:
    return list(DEFAULT_BENCHMARKS)


class DecontamConfig(BaseModel):
    """Decontamination against benchmarks: word n-grams, short items matched whole, rephrasings.

    Every check runs on the prompt; the n-gram check also on the completion with `fields`.

    Example (recipe YAML):
        decontaminate: {ngram: 8, fields: [prompt], benchmarks: [aime24, math500, {name: mine, path: x.jsonl}]}
        decontaminate: {benchmarks: eval, eval_config: evals/student.yaml, rephrase: {}}
    """

    model_config = ConfigDict(extra="forbid")

    ngram: int = Field(default=8, ge=3, description="words per n-gram (after normalisation)")
    fields: list[Literal["prompt", "completion"]] = Field(
        default_factory=_default_fields, min_length=1, description="trace fields checked"
    )
    benchmarks: list[str | BenchmarkEntry] | Literal["eval"] = Field(
        default_factory=_default_benchmarks,
        description="registry names or entries; `eval`: the benchmarks of the `tracekit eval` config `eval_config`",
    )
    eval_config: str | None = Field(
        default=None,
        description="a `tracekit eval --config` file whose benchmarks are used (with `benchmarks: eval`)",
    )
    rephrase: RephraseConfig | None = Field(
        default=None, description="also catch rephrased benchmark problems (similarity, numbers, judge)"
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
    def _known(
        cls, v: list[str | BenchmarkEntry] | Literal["eval"]
    ) -> list[str | BenchmarkEntry] | Literal["eval"]:
        if v == "eval":
            return v
        if not v:
            raise ValueError("list at least one benchmark (or `eval`)")
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

    @model_validator(mode="after")
    def _eval_config(self) -> DecontamConfig:
        if self.benchmarks == "eval" and not self.eval_config:
            raise ValueError("`benchmarks: eval` needs `eval_config:` (the `tracekit eval --config` file)")
        if self.eval_config and self.benchmarks != "eval":
            raise ValueError("`eval_config:` is read only with `benchmarks: eval`")
        return self

    def sources(self) -> list[BenchmarkSource]:
        """The benchmarks listed in the recipe (not those of an eval config: see `benchmark_texts`)."""
        if self.benchmarks == "eval":
            raise ValueError("the benchmarks come from the eval config; use tracekit.decontam.benchmarks")
        return [BENCHMARKS[b] if isinstance(b, str) else b.source() for b in self.benchmarks]
