"""Expected peak memory per device of a training config, printed before training, and the refusal of a config
that cannot fit (naming the setting to change).

The model is counted, not guessed: parameters come from the model built on the meta device. Per token and
decoder layer, the tensors saved for backward under bf16 autocast were measured with saved-tensor hooks on
Qwen2-architecture layers of 14 shapes running tracekit's per-document attention (a least-squares fit within
8% of every shape; the bf16 copies of the weights do not grow with tokens and are not counted):

    22 * hidden + 8 * intermediate + 10 * q_dim + 42 * heads   bytes

Two moments bound the peak of a step: the lm-head loss (weights, AdamW state, every layer's checkpoint or
activations, the head's weight gradient and one chunk of logits) and the end of the backward (weights,
gradients and AdamW state, plus one layer's activations recomputed and its gradient temporaries).

Example:
    >>> shape = ModelShape(params=494_032_768, layers=24, hidden=896, intermediate=4864, q_dim=896,
    ...     kv_dim=128, heads=14, vocab=151936, tied=True)
    >>> plan = plan_memory(shape=shape, tokens=16384, checkpointing=True, bf16=True, chunk=1024)
    >>> round(plan.peak / 2**30, 1)
    8.9
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracekit.train.config import TrainConfig

# Tokens per lm-head chunk = this / vocab, rounded down to a power of two (1024 for a 150k vocabulary): one
# chunk's float32 logits stay under 1 GiB, while each chunk's read-modify-write of the float32 weight gradient
# (8 bytes per weight) stays small next to the chunk's 6 * tokens * weights FLOPs.
LOGITS_PER_CHUNK = 1 << 28


def auto_chunk_size(vocab_size: int) -> int:
    """Tokens per lm-head chunk for a vocabulary (see LOGITS_PER_CHUNK), at least 256.

    >>> auto_chunk_size(151936), auto_chunk_size(32000)
    (1024, 8192)
    """
    n = max(1, LOGITS_PER_CHUNK // vocab_size)
    return max(256, 1 << (n.bit_length() - 1))


GIB = 2**30
ALLOCATOR_HEADROOM = 0.92  # share of a device's memory a plan may use (context, fragmentation)
RECOMPUTE_FACTOR = (
    1.5  # one layer's recomputed activations plus its backward temporaries, in layer activations
)


@dataclass(frozen=True)
class ModelShape:
    """What the memory plan needs to know about a decoder-only model."""

    params: int
    layers: int
    hidden: int
    intermediate: int
    q_dim: int
    kv_dim: int
    heads: int
    vocab: int
    tied: bool

    @classmethod
    def from_config(cls, config: Any) -> ModelShape:
        """Shape of a transformers config; parameters counted on a meta-device instance."""
        import torch
        from transformers import AutoModelForCausalLM

        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        params = sum(p.numel() for p in model.parameters())
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        heads = int(text.num_attention_heads)
        head_dim = int(getattr(text, "head_dim", None) or text.hidden_size // heads)
        kv_heads = int(getattr(text, "num_key_value_heads", None) or heads)
        return cls(
            params=params,
            layers=int(text.num_hidden_layers),
            hidden=int(text.hidden_size),
            intermediate=int(getattr(text, "intermediate_size", 4 * text.hidden_size)),
            q_dim=heads * head_dim,
            kv_dim=kv_heads * head_dim,
            heads=heads,
            vocab=int(text.vocab_size),
            tied=bool(getattr(config, "tie_word_embeddings", False)),
        )

    def layer_bytes_per_token(self, *, bf16: bool) -> int:
        """Tensors one decoder layer saves for backward, per token (measured fit, see the module docstring)."""
        b = 22 * self.hidden + 8 * self.intermediate + 10 * self.q_dim + 42 * self.heads
        return b if bf16 else 2 * b

    @property
    def head_params(self) -> int:
        return self.vocab * self.hidden


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes per device at the two moments that bound a step's peak (see the module docstring)."""

    weights: float
    gradients: float
    optimizer: float
    activations: float  # checkpoints (or all layers' activations) held when the loss runs
    loss: float  # one chunk of logits plus the head's weight gradient
    recompute: float  # one layer's activations and temporaries at the end of the backward
    sharding: float  # FSDP2: unsharded root parameters and gathered layers
    tokens: int
    checkpointing: bool

    @property
    def at_loss(self) -> float:
        return self.weights + self.optimizer + self.activations + self.loss + self.sharding

    @property
    def at_backward_end(self) -> float:
        return self.weights + self.optimizer + self.gradients + self.recompute + self.sharding

    @property
    def peak(self) -> float:
        return max(self.at_loss, self.at_backward_end)

    def summary(self, *, budget: float | None = None) -> str:
        parts = (
            f"weights {self.weights / GIB:.1f} + grads {self.gradients / GIB:.1f} + AdamW "
            f"{self.optimizer / GIB:.1f} GiB; activations {self.activations / GIB:.1f} GiB "
            f"({'checkpointed' if self.checkpointing else 'all layers'}, {self.tokens:,} tokens), "
            f"recompute {self.recompute / GIB:.1f}, loss chunk {self.loss / GIB:.1f}"
        )
        if self.sharding:
            parts += f", FSDP2 buffers {self.sharding / GIB:.1f}"
        tail = f" of {budget / GIB:.1f} GiB" if budget else ""
        return f"memory plan per device: {parts}; expected peak {self.peak / GIB:.1f} GiB{tail}"


def plan_memory(
    *,
    shape: ModelShape,
    tokens: int,
    checkpointing: bool,
    bf16: bool,
    chunk: int,
    world: int = 1,
    sharded: bool = False,
) -> MemoryPlan:
    """Expected memory per device of one training step (fp32 master weights, fp32 AdamW state)."""
    shards = world if sharded else 1
    p = shape.params / shards
    low = sharded and bf16  # FSDP2 mixed precision: the whole forward runs in bf16
    residual = 2 if low else 4  # bytes per hidden value kept at each layer boundary
    layer = shape.layer_bytes_per_token(bf16=bf16) * tokens
    if checkpointing:
        activations = shape.layers * tokens * shape.hidden * residual
        recompute = RECOMPUTE_FACTOR * layer
    else:
        activations = shape.layers * layer
        recompute = 0.5 * layer
    head_grad = shape.head_params * (2 if low else 4)
    loss = min(chunk, tokens) * shape.vocab * (8 if bf16 else 12) + head_grad + tokens * shape.hidden * 8
    sharding = 0.0
    if sharded:
        root = shape.head_params * (1 if shape.tied else 2)  # embeddings (+ untied head) stay unsharded
        layer_params = (shape.params - root) / max(shape.layers, 1)
        sharding = root * (2 if bf16 else 4) * 2 + 2 * layer_params * (2 if bf16 else 4) * 2
    return MemoryPlan(
        weights=4 * p,
        gradients=4 * p,
        optimizer=8 * p,
        activations=activations,
        loss=loss,
        recompute=recompute,
        sharding=sharding,
        tokens=tokens,
        checkpointing=checkpointing,
    )


def plan_for_config(
    *, config: TrainConfig, model_config: Any, world: int, cuda: bool, budget: float, where: str
) -> MemoryPlan:
    """The memory plan of a train config on `world` devices; raises MemoryPlanError if it cannot fit `budget`."""
    shape = ModelShape.from_config(model_config)
    return check_fits(
        shape=shape,
        max_length=config.max_length,
        batch=config.per_device_batch_size,
        checkpointing=config.checkpointing,
        bf16=config.bf16,
        chunk=config.loss_chunk_size or auto_chunk_size(shape.vocab),
        world=world,
        sharded=config.sharded(world=world, cuda=cuda),
        budget=budget,
        where=where,
    )


class MemoryPlanError(ValueError):
    """A config whose expected peak memory does not fit the device; the message names what to change."""


def check_fits(
    *,
    shape: ModelShape,
    max_length: int,
    batch: int,
    checkpointing: bool,
    bf16: bool,
    chunk: int,
    world: int,
    sharded: bool,
    budget: float,
    where: str,
) -> MemoryPlan:
    """The plan of a config; raises MemoryPlanError naming the first setting that would make it fit."""
    kw: dict[str, Any] = {"bf16": bf16, "chunk": chunk, "world": world, "sharded": sharded, "shape": shape}
    plan = plan_memory(tokens=max_length * batch, checkpointing=checkpointing, **kw)
    usable = budget * ALLOCATOR_HEADROOM
    if plan.peak <= usable:
        return plan

    def fits(p: MemoryPlan) -> bool:
        return p.peak <= usable

    fixes: list[str] = []
    ckpt_on = "" if checkpointing else "set gradient_checkpointing: true and "
    if not checkpointing and fits(alt := plan_memory(tokens=max_length * batch, checkpointing=True, **kw)):
        fixes.append(f"set gradient_checkpointing: true (expected {alt.peak / GIB:.1f} GiB)")
    if not fixes:
        for b in range(batch - 1, 0, -1):
            if fits(alt := plan_memory(tokens=max_length * b, checkpointing=True, **kw)):
                fixes.append(
                    f"{ckpt_on}lower per_device_batch_size to {b}, raising gradient_accumulation_steps to keep "
                    f"the global batch (expected {alt.peak / GIB:.1f} GiB)"
                )
                break
    if not fixes:
        length = max_length // 2
        while length >= 256 and not fits(alt := plan_memory(tokens=length, checkpointing=True, **kw)):
            length //= 2
        if length >= 256:
            fixes.append(
                f"{ckpt_on}lower max_length to {length}{' and per_device_batch_size to 1' if batch > 1 else ''} "
                f"(expected {alt.peak / GIB:.1f} GiB)"
            )
        fixes.append(
            "run on more GPUs (each holds 1/world of the weights and optimizer state)"
            if sharded
            else "shard the model over several GPUs (torchrun with distributed: fsdp2)"
        )
    raise MemoryPlanError(
        f"the config does not fit: {plan.summary(budget=budget)}, more than the {ALLOCATOR_HEADROOM:.0%} a plan "
        f"may use on {where}. To make it fit: " + "; or ".join(fixes)
    )
