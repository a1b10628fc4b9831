"""`TrainConfig`: the recipe section (and standalone YAML file) of `tracekit train`.

Example:
    >>> cfg = TrainConfig(model="Qwen/Qwen2.5-7B-Instruct", data="out/r1-800k/dataset", output_dir="runs/q7b")
    >>> cfg.lr_scheduler, cfg.checkpointing
    ('cosine', True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CHECKPOINTING_FROM_TOKENS = 8192  # micro-batch tokens from which checkpointing is on by default (TRL: always)


class TrainConfig(BaseModel):
    """Everything the bundled SFT trainer needs; unknown keys are an error naming the key."""

    model_config = ConfigDict(extra="forbid")

    # --- what to train on what
    model: str = Field(
        description="Model to fine-tune: a local folder or a Hub id (loaded with transformers)."
    )
    tokenizer: str | None = Field(
        default=None, description="Tokenizer folder or Hub id; defaults to `model`."
    )
    chat_template: str | None = Field(
        default=None,
        description="Chat template override: Jinja text or a path to a .jinja file. Defaults to the tokenizer's.",
    )
    data: str = Field(
        description="A tracekit `dataset/` folder (or the build folder holding it), a parquet/jsonl file, or a Hub "
        "dataset id. Rows need a `messages` column."
    )
    train_split: str = Field(default="train", description="Split to train on.")
    eval_split: str | float | None = Field(
        default=None,
        description="Held-out data for eval loss: a split name (e.g. `test`), or a fraction of the train split "
        "held out with `seed`, or null for no eval.",
    )
    output_dir: Path = Field(
        description="Checkpoints, metrics.jsonl and the final export (`final/`) go here."
    )

    # --- sequence handling
    max_length: int = Field(
        default=32768, gt=0, description="Longest sequence in tokens (packed row capacity)."
    )
    too_long: Literal["drop", "error"] = Field(
        default="drop",
        description="Rows longer than max_length: `drop` (counted and reported) or `error`. Truncating a trace "
        "would train on a reasoning chain that never ends, so it is not offered.",
    )
    packing: bool = Field(
        default=True,
        description="Best-fit-decreasing packing of documents into rows of max_length tokens; false puts one "
        "document in each micro-batch slot. Either way a micro-batch is one padding-free row with per-document "
        "attention (position ids restart per document).",
    )

    # --- schedule
    epochs: float = Field(
        default=3.0, gt=0, description="Passes over the data (ignored when max_steps is set)."
    )
    max_steps: int | None = Field(default=None, gt=0, description="Optimizer steps; overrides epochs.")
    learning_rate: float = Field(default=1e-5, gt=0, description="Peak learning rate (AdamW).")
    lr_scheduler: Literal["cosine", "linear", "constant"] = Field(
        default="cosine",
        description="Decay after warmup; cosine and linear end at learning_rate * min_lr_ratio.",
    )
    warmup_ratio: float = Field(default=0.03, ge=0, le=1, description="Fraction of steps with linear warmup.")
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1, description="Final lr as a fraction of the peak.")
    weight_decay: float = Field(
        default=0.0, ge=0, description="AdamW weight decay (not on norms and biases)."
    )
    adam_beta1: float = Field(default=0.9, ge=0, lt=1, description="AdamW beta1.")
    adam_beta2: float = Field(default=0.95, ge=0, lt=1, description="AdamW beta2.")
    adam_epsilon: float = Field(default=1e-8, gt=0, description="AdamW epsilon.")
    max_grad_norm: float | None = Field(default=1.0, gt=0, description="Gradient clipping; null for none.")

    # --- batch
    per_device_batch_size: int = Field(
        default=1,
        gt=0,
        description="Rows per micro-batch per device (packed rows of up to max_length tokens when packing).",
    )
    gradient_accumulation_steps: int = Field(default=1, gt=0, description="Micro-batches per optimizer step.")

    # --- hardware
    gradient_checkpointing: bool | None = Field(
        default=None,
        description="Recompute each decoder layer's activations in backward; null = on when a micro-batch holds "
        f"{CHECKPOINTING_FROM_TOKENS} tokens or more (max_length * per_device_batch_size).",
    )
    bf16: bool = Field(
        default=False,
        description="bf16 compute with fp32 master weights (autocast, or FSDP2 mixed precision).",
    )
    attn_implementation: Literal[
        "auto", "flash_attention_3", "flash_attention_2", "flex_attention", "sdpa", "eager"
    ] = Field(
        default="auto",
        description="Per-document attention kernel: flash-attn's varlen kernels, flex_attention with a document "
        "block mask, or sdpa/eager called once per document. `auto` = flash-attn when installed on a GPU, else "
        "flex_attention on a GPU, else sdpa. On every one the work is the sum over documents.",
    )
    compile: bool = Field(
        default=False,
        description="torch.compile each decoder layer and the lm-head loss's elementwise part (dynamic shapes).",
    )
    liger_kernels: bool | None = Field(
        default=None,
        description="Liger's RMSNorm/SwiGLU/RoPE kernels in the model; null = when liger-kernel is installed "
        "and training on a GPU.",
    )
    memory_budget_gib: float | None = Field(
        default=None,
        gt=0,
        description="Memory per device that the plan must fit in; null = the GPU's memory (host RAM on CPU). "
        "Set it to plan for another card, e.g. 80.",
    )
    distributed: Literal["auto", "ddp", "fsdp2"] = Field(
        default="auto",
        description="Under torchrun: `ddp`, `fsdp2` (sharded), or `auto` (= fsdp2 on GPU, ddp on CPU).",
    )
    loss_chunk_size: int | None = Field(
        default=None,
        gt=0,
        description="Tokens per lm-head chunk in the loss (bounds logits memory); null = 2^28 / vocab rounded "
        "down to a power of two (1024 for a 150k vocabulary).",
    )
    peak_tflops: float | None = Field(
        default=None,
        gt=0,
        description="Peak TFLOP/s per device for MFU; known GPUs are looked up, otherwise MFU is not logged.",
    )
    seed: int = Field(default=42, description="Seeds data order, held-out split and torch.")

    # --- bookkeeping
    save_every: int | None = Field(
        default=None, gt=0, description="Checkpoint every N steps (and at the end)."
    )
    save_total_limit: int | None = Field(default=2, gt=0, description="Checkpoints kept; null keeps all.")
    eval_every: int | None = Field(
        default=None, gt=0, description="Eval loss every N steps (and at the end)."
    )
    logging_every: int = Field(
        default=1, gt=0, description="Console line every N steps (metrics.jsonl: every)."
    )
    export_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto", description="dtype of the exported weights; `auto` = bfloat16 when bf16 else float32."
    )
    push_to_hub: str | None = Field(
        default=None, description="Hub repo id to push `final/` to (token from HF_TOKEN); null to skip."
    )
    hub_private: bool = Field(default=True, description="Create the Hub repo as private.")

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if isinstance(self.eval_split, float) and not 0 < self.eval_split < 1:
            raise ValueError(f"eval_split: a held-out fraction must be in (0, 1), got {self.eval_split}")
        if isinstance(self.eval_split, str) and self.eval_split == self.train_split:
            raise ValueError(f"eval_split: {self.eval_split!r} is also the train split")
        return self

    @property
    def micro_batch_tokens(self) -> int:
        """Most tokens one micro-batch can hold."""
        return self.max_length * self.per_device_batch_size

    @property
    def checkpointing(self) -> bool:
        """Whether gradient checkpointing is on (the explicit setting, else the token threshold)."""
        if self.gradient_checkpointing is not None:
            return self.gradient_checkpointing
        return self.micro_batch_tokens >= CHECKPOINTING_FROM_TOKENS

    def sharded(self, *, world: int, cuda: bool) -> bool:
        """Whether `world` ranks shard the model (FSDP2) rather than replicate it (DDP)."""
        return world > 1 and (self.distributed == "fsdp2" or (self.distributed == "auto" and cuda))

    @classmethod
    def from_yaml(cls, path: Path, *, overrides: dict[str, Any] | None = None) -> TrainConfig:
        """Read a YAML file (optionally under a top-level `train:` key) and apply `overrides`.

        Errors name the offending key and the file, e.g. `pipelines/x.yaml: learning_rate: Input should be
        greater than 0`.
        """
        raw = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping of train settings, got {type(raw).__name__}")
        if set(raw) == {"train"} or (
            "train" in raw and isinstance(raw["train"], dict) and "model" not in raw
        ):
            raw = raw["train"]
        raw = {**raw, **(overrides or {})}
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ValueError(validation_message(exc, path=path, what="train", model="TrainConfig")) from None


def validation_message(exc: ValidationError, *, path: Path | str, what: str, model: str) -> str:
    """One line per problem of a config file, each naming the file and the key (dotted for nested keys).

    Example:
        >>> try:
        ...     TrainConfig.model_validate({"model": "m", "data": "d", "output_dir": "o", "lr": 1})
        ... except ValidationError as e:
        ...     print(validation_message(e, path="x.yaml", what="train", model="TrainConfig"))
        invalid train config:
          x.yaml: lr: unknown key (see TrainConfig for the accepted keys)
    """
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(config)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = f"unknown key (see {model} for the accepted keys)"
        lines.append(f"{path}: {key}: {msg}")
    return f"invalid {what} config:\n  " + "\n  ".join(lines)
