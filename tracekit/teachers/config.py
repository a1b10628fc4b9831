"""Recipe models of the teachers (`teacher:` in a recipe), one per `kind`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

R1_PROMPT_SUFFIX = "Please reason step by step, and put your final answer within \\boxed{}."
R1_PROMPT_TEMPLATE = "{prompt}\n" + R1_PROMPT_SUFFIX


class SamplingConfig(BaseModel):
    """Sampling parameters. Defaults are DeepSeek-R1's. Any other vLLM sampling parameter is passed on.

    Example: `sampling: {n: 4, temperature: 0.6, top_p: 0.95, max_tokens: 32768, min_p: 0.0}`. Extra
    keys (`min_p`, `repetition_penalty`, `chat_template_kwargs`, ...) go into each request as they are.
    """

    model_config = ConfigDict(extra="allow")

    n: int = Field(default=4, ge=1, description="samples per prompt")
    temperature: float = Field(default=0.6, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    max_tokens: int = Field(default=32768, ge=1)
    seed: int | None = Field(default=None, description="base seed; per-request seeds derive from trace ids")


class DatasetTeacherConfig(BaseModel):
    """Replay traces that already exist in the sources (`generations` or `messages` columns)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["dataset"] = "dataset"
    model: str | None = Field(
        default=None, description="name of the model that wrote the traces (for the card)"
    )
    max_generations: int | None = Field(
        default=None, ge=1, description="replay at most this many generations per prompt row"
    )


class RetryConfig(BaseModel):
    """How failed requests (timeouts, 429, 5xx, dropped connections) are retried.

    Example: `retries: {attempts: 6, backoff_s: 1, max_backoff_s: 60}` waits about 1, 2, 4, 8, 16 s
    (each times a random factor in [0.5, 1.5]) between the six attempts.
    """

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=6, ge=1, description="tries per request, the first one included")
    backoff_s: float = Field(default=1.0, ge=0, description="wait before the first retry; doubles each retry")
    max_backoff_s: float = Field(default=60.0, ge=0, description="longest wait between two tries")
    jitter: float = Field(
        default=0.5, ge=0, le=1, description="each wait is multiplied by a random factor 1 +- jitter"
    )


class RetryTruncatedConfig(BaseModel):
    """Re-sample traces cut off by `max_tokens` (finish reason `length`) once, with a bigger budget."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(..., ge=1, description="token budget of the second try")


class PriceConfig(BaseModel):
    """Prices to turn token counts into cost (any currency; USD by convention)."""

    model_config = ConfigDict(extra="forbid")

    prompt_per_million: float = Field(default=0.0, ge=0, description="price of 1M prompt tokens")
    completion_per_million: float = Field(default=0.0, ge=0, description="price of 1M completion tokens")
    gpu_hour: float | None = Field(
        default=None, ge=0, description="price of one GPU-hour (managed vLLM estimates)"
    )


class LiveTeacherFields(BaseModel):
    """Fields shared by the teachers that sample (`vllm`, `openai`)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        ..., description="model id (Hub id or local path; for `openai`, the served model name)"
    )
    revision: str | None = Field(default=None, description="model revision, recorded in the ledger")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    prompt_template: str = Field(
        default=R1_PROMPT_TEMPLATE,
        description="user message template with {prompt} (R1's); a source may override it",
    )
    system_prompt: str | None = Field(
        default=None, description="system message (R1: none); a source may override it"
    )
    general_prompt_template: str = Field(
        default="{prompt}", description="user template of sources with `reasoning: false` (no R1 suffix)"
    )
    max_concurrency: int = Field(default=64, ge=1, description="requests in flight per endpoint")
    timeout_s: float = Field(
        default=3600.0, gt=0, description="seconds one request may take before it is retried"
    )
    retries: RetryConfig = Field(default_factory=RetryConfig)
    retry_truncated: RetryTruncatedConfig | None = Field(
        default=None, description="re-sample truncated traces once with a bigger max_tokens"
    )
    price: PriceConfig | None = Field(
        default=None, description="prices for cost accounting and `validate --estimate`"
    )
    cache_fsync_every: int = Field(
        default=64, ge=1, description="answered requests between two fsyncs of the request cache (resume)"
    )


class VllmTeacherConfig(LiveTeacherFields):
    """vLLM that tracekit starts for the run (one per task) and stops when it ends: offline engine or server.

    Example: `teacher: {kind: vllm, model: deepseek-ai/DeepSeek-R1, engine: {tensor_parallel_size: 8,
    max_model_len: 32768}}`. `engine` takes vLLM's own argument names (`vllm serve --help`): in
    `offline` mode they go to `vllm.LLM(model, **engine)` (server-only flags such as `port` are
    skipped), in `server` mode they are passed on as `--name value`.
    """

    kind: Literal["vllm"] = "vllm"
    mode: Literal["offline", "server"] = Field(
        default="offline",
        description=(
            "offline (default): vLLM's engine runs in the task's process and tracekit feeds it every "
            "pending request and steps it, with no HTTP, JSON or second tokenisation in between, so it "
            "keeps the engine's own throughput; renders, seeds and records exactly like server mode, and "
            "the completion is the raw text (reasoning is split from <think> by the parse stage; a "
            "`reasoning_parser` engine argument is not applied). server: a managed OpenAI server "
            "(`vllm serve`) per task, requests over HTTP; use it to apply vLLM's reasoning parser, or to "
            "keep the engine in a process of its own"
        ),
    )
    engine: dict[str, Any] = Field(
        default_factory=dict, description="vLLM engine/server arguments, as they are"
    )
    max_concurrency: int = Field(
        default=256,
        ge=1,
        description=(
            "server: requests in flight to the managed server; offline: requests held by the engine at "
            "once (at least twice the engine's max_num_seqs, so its scheduler always has work queued)"
        ),
    )
    startup_timeout_s: float = Field(
        default=1800.0, gt=0, description="seconds to wait for the server's /health (server mode)"
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="extra environment variables of vLLM (server: its process; offline: set in the task's process)",
    )


class OpenAITeacherConfig(LiveTeacherFields):
    """One or many OpenAI-compatible endpoints (vLLM, SGLang, hosted APIs), requests spread over them.

    Example: `teacher: {kind: openai, base_urls: [http://node1:8000/v1, http://node2:8000/v1],
    model: Qwen/QwQ-32B, api_key_env: MY_KEY}`. The key is read from the named environment variable only.
    """

    kind: Literal["openai"] = "openai"
    base_urls: list[str] = Field(..., min_length=1, description="endpoints ending in /v1")
    api_key_env: str | None = Field(
        default=None, description="name of the environment variable holding the API key"
    )


TeacherConfig = Annotated[
    DatasetTeacherConfig | VllmTeacherConfig | OpenAITeacherConfig, Field(discriminator="kind")
]
LiveTeacherConfig = VllmTeacherConfig | OpenAITeacherConfig


class EndpointModelConfig(BaseModel):
    """A model behind OpenAI-compatible endpoints used as a tool, one request per item: a judge that
    checks answers (`verify: {llm: {judge: ...}}`) or a model that rewrites traces (`rewrite: {teacher:
    ...}`). A hosted API, or `vllm serve MODEL` started beforehand.

    Example: `{base_urls: [https://api.openai.com/v1], model: gpt-4o-mini, api_key_env: OPENAI_API_KEY,
    sampling: {temperature: 0.7, max_tokens: 16384}}`. `sampling` keys go into each request as they are.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["openai"] = Field(
        default="openai", description="openai: OpenAI-compatible endpoints (the only kind for a tool model)"
    )
    base_urls: list[str] = Field(..., min_length=1, description="endpoints ending in /v1")
    model: str = Field(..., description="the served model name sent in each request")
    api_key_env: str | None = Field(
        default=None, description="name of the environment variable holding the API key"
    )
    system_prompt: str | None = Field(default=None, description="system message of every request")
    sampling: dict[str, Any] = Field(
        default_factory=dict,
        description="request parameters sent as they are (temperature, max_tokens, top_p, ...); one "
        "answer per request, seeded from the trace id",
    )
    max_concurrency: int = Field(default=16, ge=1, description="requests in flight per endpoint")
    timeout_s: float = Field(default=600.0, gt=0, description="seconds one request may take before a retry")
    retries: RetryConfig = Field(default_factory=RetryConfig)
    price: PriceConfig | None = Field(default=None, description="prices for the usage log's cost")

    @field_validator("kind", mode="before")
    @classmethod
    def _only_endpoints(cls, v: Any) -> Any:
        if v == "vllm":
            raise ValueError(
                "a judge or rewriting model is reached over HTTP: start it with `vllm serve MODEL` "
                "(or use a hosted API) and give `kind: openai` with its `base_urls`"
            )
        return v

    @field_validator("sampling")
    @classmethod
    def _sampling(cls, v: dict[str, Any]) -> dict[str, Any]:
        reserved = sorted(set(v) & {"model", "messages", "n", "stream"})
        if reserved:
            raise ValueError(f"`sampling` cannot set {reserved}: one answer per request, model and messages are tracekit's")
        return v


class JudgeModelConfig(EndpointModelConfig):
    """A judge model: greedy and short by default."""

    sampling: dict[str, Any] = Field(
        default_factory=lambda: {"temperature": 0.0, "max_tokens": 1024},
        description="request parameters sent as they are (default greedy, 1024 tokens)",
    )
