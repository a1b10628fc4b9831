"""EvalConfig: everything `tracekit eval` needs (the CLI flags map one to one onto its fields)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tracekit.teachers.config import R1_PROMPT_TEMPLATE, RetryConfig

CODE_PROMPT_TEMPLATE = "{prompt}"


class EvalConfig(BaseModel):
    """An evaluation: models x benchmarks, n samples per problem, pass@k for each k.

    Example:
        >>> EvalConfig(models=["out/student"], benchmarks=["aime25"], k=[1, 4], n=4).temperature
        0.6
    """

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(
        default_factory=list, description="model paths / Hub ids (vLLM) or served names (--base-url)"
    )
    benchmarks: list[str] = Field(..., min_length=1, description="registry names, NAME=FILE, or files")
    output: str | None = Field(
        default=None, description="output folder: ledger/, results.json, results.md (None: out/eval/<id>)"
    )
    k: list[int] = Field(default_factory=lambda: [1], description="the k of pass@k (each <= n)")
    n: int = Field(default=16, ge=1, description="samples per problem")
    temperature: float = Field(default=0.6, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    max_tokens: int = Field(default=32768, ge=1)
    engine: dict[str, Any] = Field(default_factory=dict, description="vLLM engine arguments (managed server)")
    engine_env: dict[str, str] = Field(default_factory=dict, description="environment of the managed server")
    base_url: str | None = Field(default=None, description="a running OpenAI-compatible server (…/v1)")
    api_key_env: str | None = Field(default=None, description="environment variable with the API key")
    samples: str | None = Field(default=None, description="score generations from this file; no model run")
    data_dir: str | None = Field(default=None, description="folder with local copies of registry benchmarks")
    fresh_after: dt.date | None = Field(default=None, description="keep problems published after this date")
    limit: int | None = Field(default=None, ge=1, description="first N problems of each benchmark")
    train_data: list[str] = Field(
        default_factory=list, description="tracekit build outputs to check the benchmarks against (overlap)"
    )
    ngram: int = Field(default=8, ge=1, description="word n-gram length of the overlap check")
    math_template: str = Field(default=R1_PROMPT_TEMPLATE, description="user message of math problems")
    code_template: str = Field(default=CODE_PROMPT_TEMPLATE, description="user message of code problems")
    system_prompt: str | None = None
    max_concurrency: int = Field(default=64, ge=1, description="requests in flight")
    timeout_s: float = Field(default=3600.0, gt=0, description="seconds per request before a retry")
    retries: RetryConfig = Field(default_factory=RetryConfig)
    startup_timeout_s: float = Field(default=1800.0, gt=0, description="managed vLLM: seconds to /health")
    sandbox: Literal["bwrap", "process"] = Field(default="bwrap", description="code sandbox")
    verify_workers: int | None = Field(
        default=None, ge=1, description="verifier processes (default: all cores)"
    )
    confidence: float = Field(default=0.95, gt=0, lt=1, description="level of the bootstrap interval")
    bootstrap: int = Field(default=2000, ge=100, description="bootstrap resamples over problems")
    seed: int = Field(default=0, description="base seed (per-request seeds derive from sample ids)")

    @model_validator(mode="after")
    def _check(self) -> EvalConfig:
        # with --samples, n is what the file holds; problems with fewer than k samples are left out
        bad = [k for k in self.k if k < 1 or (k > self.n and not self.samples)]
        if bad:
            raise ValueError(f"every k must be in 1..n={self.n}; got {bad}")
        if not self.models and not self.samples:
            raise ValueError("name at least one model, or give --samples FILE")
        self.k = sorted(set(self.k))
        return self

    def sampling(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
        }
