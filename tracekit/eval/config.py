"""EvalConfig: everything `tracekit eval` needs (the CLI flags map one to one onto its fields)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
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


class EvalConfigFileError(ValueError):
    """An eval config file that cannot be read; the message names the file."""


# EvalConfig fields that hold paths (relative ones are resolved against the config file's folder)
_PATH_FIELDS = ("output", "samples", "data_dir")


def read_eval_config_file(path: str | Path) -> dict[str, Any]:
    """The settings of a `tracekit eval --config` YAML file (EvalConfig's field names), paths resolved.

    Relative paths (`output`, `samples`, `data_dir`, `train_data`, benchmark files) are taken relative
    to the file's folder, as a recipe's are. Fields are checked when an `EvalConfig` is made from them.

    Example:
        >>> read_eval_config_file("evals/student.yaml")["benchmarks"]  # doctest: +SKIP
        ['aime25', 'mine=/abs/evals/mine.jsonl']
    """
    import yaml

    from tracekit.eval.benchmarks import BenchmarkLoadError, parse_bench_arg

    file = Path(path)
    if not file.is_file():
        raise EvalConfigFileError(f"eval config {file} not found")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise EvalConfigFileError(f"eval config {file}: invalid YAML: {e}") from None
    if not isinstance(data, dict):
        raise EvalConfigFileError(f"eval config {file}: expected a mapping of settings, got {type(data).__name__}")
    base = file.resolve().parent

    def resolve(p: Any) -> str:
        q = Path(str(p))
        return str(q if q.is_absolute() else base / q)

    for key in _PATH_FIELDS:
        if data.get(key) is not None:
            data[key] = resolve(data[key])
    if isinstance(data.get("train_data"), list):
        data["train_data"] = [resolve(p) for p in data["train_data"]]
    if isinstance(data.get("benchmarks"), list):
        benches = []
        for arg in data["benchmarks"]:
            try:
                name, bench_path = parse_bench_arg(str(arg))
            except BenchmarkLoadError as e:
                raise EvalConfigFileError(f"eval config {file}: benchmarks: {e}") from None
            benches.append(str(arg) if bench_path is None else f"{name}={resolve(bench_path)}")
        data["benchmarks"] = benches
    return data


def load_eval_config(path: str | Path) -> EvalConfig:
    """An EvalConfig from a `tracekit eval --config` file (see `read_eval_config_file`)."""
    from pydantic import ValidationError

    try:
        return EvalConfig.model_validate(read_eval_config_file(path))
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
        raise EvalConfigFileError(f"eval config {path}: {problems}") from None
