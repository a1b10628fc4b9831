"""`DistillConfig`: the YAML file of `tracekit distill` (on-policy distillation of a student by a teacher).

Example:
    >>> cfg = DistillConfig(student="runs/q1.5b/final", teacher="Qwen/Qwen3-8B", data="out/r1/dataset",
    ...                     output_dir="runs/q1.5b-opd", max_steps=100)
    >>> cfg.objective, cfg.rollout.n, cfg.teacher.model
    ('reverse_kl', 4, 'Qwen/Qwen3-8B')
    >>> cfg.train_config().model
    'runs/q1.5b/final'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tracekit.train.config import TrainConfig, validation_message

# vLLM settings for a small engine on a CPU or one GPU; `engine:` keys override them.
DEFAULT_ENGINE: dict[str, Any] = {"max_model_len": 4096, "enable_prefix_caching": False}


def merge_settings(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` over `base`, mappings merged key by key (how `--set rollout.n=8` reaches a nested setting).

    Example:
        >>> merge_settings({"rollout": {"n": 4, "prompts": 8}}, {"rollout": {"n": 8}})
        {'rollout': {'n': 8, 'prompts': 8}}
    """
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge_settings(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class RolloutConfig(BaseModel):
    """How the student samples each step: `prompts` prompts x `n` completions."""

    model_config = ConfigDict(extra="forbid")

    prompts: int = Field(default=8, ge=1, description="Prompts per optimizer step.")
    n: int = Field(default=4, ge=1, description="Completions sampled per prompt.")
    max_tokens: int = Field(default=1024, ge=1, description="Longest completion in tokens.")
    temperature: float = Field(
        default=1.0,
        gt=0,
        description="Sampling temperature. 1.0 samples the student's own distribution, which the "
        "importance weights and the KL estimate assume; other values are allowed but bias both.",
    )
    top_p: float = Field(
        default=1.0, gt=0, le=1, description="Nucleus sampling (1.0 = off, see temperature)."
    )


class TeacherConfig(BaseModel):
    """The teacher: a model tracekit serves with vLLM, or a running OpenAI-compatible endpoint.

    A bare string is the model: `teacher: Qwen/Qwen3-8B` = `teacher: {model: Qwen/Qwen3-8B}`.
    """

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        description="Model folder or Hub id (served by a managed vLLM), or the served model name at base_url."
    )
    base_url: str | None = Field(
        default=None,
        description="A running OpenAI-compatible server (…/v1) that scores prompts (echo + logprobs, or vLLM's "
        "prompt_logprobs); null = tracekit starts vLLM for `model`.",
    )
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding the endpoint's key."
    )
    tokenizer: str | None = Field(
        default=None,
        description="Tokenizer of the teacher for the shared-tokenizer check; defaults to `model` (needed when "
        "`model` is only a served name).",
    )
    protocol: Literal["auto", "prompt_logprobs", "echo"] = Field(
        default="auto",
        description="How scores are asked for: vLLM's `prompt_logprobs` (token ids, exact) or the OpenAI "
        "`echo` + `logprobs` form; auto = prompt_logprobs for a managed vLLM, echo for base_url.",
    )
    engine: dict[str, Any] = Field(
        default_factory=dict, description="vLLM engine arguments of the managed teacher server."
    )
    engine_env: dict[str, str] = Field(default_factory=dict, description="Environment of the managed server.")
    startup_timeout_s: float = Field(default=1800.0, gt=0, description="Seconds the managed server may take.")
    timeout_s: float = Field(default=600.0, gt=0, description="Seconds per scoring request.")
    batch: int = Field(default=64, ge=1, description="Sequences per scoring request.")
    top_k: int = Field(
        default=0,
        ge=0,
        le=20,
        description="Also ask for the teacher's k most likely tokens at every completion position (vLLM "
        "prompt_logprobs: k); objective jsd then adds the divergence over those tokens, differentiated through "
        "the student's distribution (GKD's form). 0 = the sampled token only.",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"model": value} if isinstance(value, str) else value

    @property
    def wire_protocol(self) -> str:
        """The protocol actually used (`auto` resolved)."""
        if self.protocol != "auto":
            return self.protocol
        return "echo" if self.base_url else "prompt_logprobs"


class RewardConfig(BaseModel):
    """An optional task reward: the build's verifiers' verdict on each completion, added to the KL signal."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["verifier"] = Field(default="verifier", description="The verdict of tracekit's verifiers.")
    weight: float = Field(
        default=1.0,
        ge=0,
        description="Reward weight against kl_coef (1 = correct, 0 = otherwise, centred per prompt).",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value


class DistillEvalConfig(BaseModel):
    """Every `every` steps: pass@k of the student on benchmarks (`tracekit eval`'s loaders, verifiers and
    estimator) and the teacher KL on the held-out prompts."""

    model_config = ConfigDict(extra="forbid")

    bench: list[str] = Field(
        default_factory=list,
        description="Benchmarks as `tracekit eval --bench` takes them; empty = only the held-out teacher KL.",
    )
    every: int = Field(default=50, ge=1, description="Evaluate every N steps (and at the end).")
    k: list[int] = Field(default_factory=lambda: [1], description="The k of pass@k (each <= n).")
    n: int | None = Field(default=None, ge=1, description="Samples per problem; null = max(k).")
    data_dir: str | None = Field(default=None, description="Folder with local copies of registry benchmarks.")
    limit: int | None = Field(default=None, ge=1, description="First N problems of each benchmark.")
    max_tokens: int | None = Field(default=None, ge=1, description="null = rollout.max_tokens.")
    temperature: float = Field(default=0.6, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    sandbox: Literal["bwrap", "process"] = Field(default="bwrap", description="Code sandbox of the verifier.")

    @field_validator("bench", mode="before")
    @classmethod
    def _one(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> DistillEvalConfig:
        self.k = sorted(set(self.k))
        if bad := [k for k in self.k if k < 1 or k > self.samples]:
            raise ValueError(f"every k must be in 1..n={self.samples}; got {bad}")
        return self

    @property
    def samples(self) -> int:
        return self.n if self.n is not None else max(self.k)


class DistillConfig(BaseModel):
    """Everything `tracekit distill` needs; unknown keys are an error naming the key."""

    model_config = ConfigDict(extra="forbid")

    # --- who learns from whom, on what
    student: str = Field(description="Model to train: a folder or Hub id, usually `tracekit train`'s export.")
    teacher: TeacherConfig = Field(description="The model whose per-token log-probabilities are the signal.")
    data: str = Field(
        description="Prompts: a tracekit dataset or build folder (each row's messages up to its last assistant "
        "turn), or a jsonl/parquet file with `messages` or `prompt`/`problem` (+ `answer` for the reward)."
    )
    split: str = Field(default="train", description="Split of a dataset folder to take prompts from.")
    held_out: int = Field(
        default=0,
        ge=0,
        description="Prompts kept out of training; the teacher KL on them (`held_out_teacher_kl`) is measured "
        "before the first step, at every eval and at the end.",
    )
    output_dir: Path = Field(
        description="Checkpoints, metrics.jsonl and the final export (`final/`) go here."
    )
    chat_template: str | None = Field(
        default=None,
        description="Chat template for both models (Jinja text or a .jinja file); default: the student's.",
    )

    # --- the objective
    objective: Literal["reverse_kl", "jsd"] = Field(
        default="reverse_kl",
        description="Per-token signal on the student's samples: reverse KL, log p_student - log p_teacher, or "
        "the generalised Jensen-Shannon divergence with `beta`.",
    )
    beta: float = Field(
        default=0.5, gt=0, lt=1, description="JSD interpolation: M = beta * teacher + (1 - beta) * student."
    )
    kl_coef: float = Field(
        default=1.0, ge=0, description="Weight of the divergence in the per-token advantage."
    )
    discount: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Each token's advantage is the discounted divergence of the rest of its sequence. 0 = its own "
        "divergence only (TRL, tinker: low variance, no credit for what a token leads to); 1 = the exact gradient "
        "of the whole sequence's divergence, which also rewards ending early: a weak student then learns to stop "
        "at once, so use it only from a student that already answers like the teacher.",
    )
    baseline: Literal["batch_mean", "none"] = Field(
        default="batch_mean",
        description="Subtracted from every token's cost to go before it becomes an advantage: the mean over the "
        "step's tokens (lower variance; the expected gradient barely moves), or none (the loss then equals "
        "kl_coef x the mean cost at ratio 1).",
    )
    reward: RewardConfig | None = Field(
        default=None, description="Optional verifier reward (`reward: verifier`)."
    )

    # --- sampling
    max_steps: int = Field(gt=0, description="Optimizer steps (one rollout each).")
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    engine: dict[str, Any] = Field(
        default_factory=dict,
        description="vLLM engine arguments of the student's sampler (in this process), over "
        f"{DEFAULT_ENGINE}.",
    )
    engine_env: dict[str, str] = Field(
        default_factory=dict, description="Environment set before the student's engine starts."
    )

    # --- optimisation (as `tracekit train`)
    learning_rate: float = Field(default=1e-6, gt=0, description="Peak learning rate (AdamW).")
    lr_scheduler: Literal["cosine", "linear", "constant"] = Field(default="constant")
    warmup_ratio: float = Field(default=0.0, ge=0, le=1)
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1)
    weight_decay: float = Field(default=0.0, ge=0)
    adam_beta1: float = Field(default=0.9, ge=0, lt=1)
    adam_beta2: float = Field(default=0.95, ge=0, lt=1)
    adam_epsilon: float = Field(default=1e-8, gt=0)
    max_grad_norm: float | None = Field(default=1.0, gt=0)
    max_length: int = Field(
        default=8192, gt=0, description="Tokens per packed micro-batch row (prompt + completion must fit)."
    )
    gradient_checkpointing: bool | None = Field(default=None)
    bf16: bool = Field(default=False)
    attn_implementation: Literal[
        "auto", "flash_attention_3", "flash_attention_2", "flex_attention", "sdpa", "eager"
    ] = Field(default="auto")
    loss_chunk_size: int | None = Field(default=None, gt=0, description="Tokens per lm-head chunk.")
    memory_budget_gib: float | None = Field(default=None, gt=0)
    seed: int = Field(default=42, description="Seeds prompt order, held-out prompts, sampling and torch.")

    # --- bookkeeping
    save_every: int | None = Field(
        default=None, gt=0, description="Checkpoint every N steps (and at the end)."
    )
    save_total_limit: int | None = Field(default=2, gt=0)
    logging_every: int = Field(
        default=1, gt=0, description="Console line every N steps (metrics.jsonl: every)."
    )
    eval: DistillEvalConfig | None = Field(default=None, description="pass@k every `eval.every` steps.")
    export_dtype: Literal["auto", "float32", "bfloat16"] = Field(default="auto")
    distributed: Literal["auto", "ddp", "fsdp2"] = Field(
        default="auto",
        description="Under torchrun: `ddp`, `fsdp2` (sharded), or `auto` (= fsdp2 on GPU, ddp on CPU), as in "
        "`tracekit train`. Rank 0 samples and scores; every rank updates on its share of the rollouts.",
    )

    @model_validator(mode="after")
    def _check(self) -> DistillConfig:
        if self.teacher.top_k:
            if self.objective != "jsd":
                raise ValueError("teacher.top_k: the teacher's top-k tokens are used by objective jsd only")
            if self.teacher.wire_protocol != "prompt_logprobs":
                raise ValueError(
                    "teacher.top_k: needs protocol prompt_logprobs (echo's top tokens come back as text, not ids)"
                )
        if self.rollout.max_tokens >= self.max_length:
            raise ValueError(
                f"rollout.max_tokens ({self.rollout.max_tokens}) must be below max_length ({self.max_length})"
            )
        return self

    def train_config(self) -> TrainConfig:
        """The `tracekit train` settings the shared trainer parts (model, optimizer, checkpoints, export) read."""
        return TrainConfig(
            model=self.student,
            chat_template=self.chat_template,
            data=self.data,
            output_dir=self.output_dir,
            max_length=self.max_length,
            max_steps=self.max_steps,
            learning_rate=self.learning_rate,
            lr_scheduler=self.lr_scheduler,
            warmup_ratio=self.warmup_ratio,
            min_lr_ratio=self.min_lr_ratio,
            weight_decay=self.weight_decay,
            adam_beta1=self.adam_beta1,
            adam_beta2=self.adam_beta2,
            adam_epsilon=self.adam_epsilon,
            max_grad_norm=self.max_grad_norm,
            gradient_checkpointing=self.gradient_checkpointing,
            bf16=self.bf16,
            attn_implementation=self.attn_implementation,
            loss_chunk_size=self.loss_chunk_size,
            memory_budget_gib=self.memory_budget_gib,
            seed=self.seed,
            save_every=self.save_every,
            save_total_limit=self.save_total_limit,
            logging_every=self.logging_every,
            export_dtype=self.export_dtype,
            distributed=self.distributed,
        )

    def engine_args(self) -> dict[str, Any]:
        """The student sampler's vLLM arguments: defaults, then `engine`, dtype following bf16."""
        dtype = "bfloat16" if self.bf16 else "float32"
        return {**DEFAULT_ENGINE, "dtype": dtype, "seed": self.seed, **self.engine}

    @classmethod
    def from_yaml(cls, path: Path, *, overrides: dict[str, Any] | None = None) -> DistillConfig:
        """Read a YAML file (optionally under a top-level `distill:` key) and apply `overrides`.

        Errors name the file and the key, e.g. `x.yaml: rollout.n: Input should be greater than or equal to 1`.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such config file")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: invalid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping of distill settings, got {type(raw).__name__}")
        if set(raw) == {"distill"} and isinstance(raw["distill"], dict):
            raw = raw["distill"]
        raw = merge_settings(raw, overrides or {})
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ValueError(
                validation_message(exc, path=path, what="distill", model="DistillConfig")
            ) from None
