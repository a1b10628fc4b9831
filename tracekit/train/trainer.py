"""`SFTTrainer`: the bundled supervised fine-tuning loop, readable top to bottom.

setup (ranks, seed) -> tokenizer + template -> memory plan (printed; a config that cannot fit is refused)
-> rows -> tokens + assistant masks (checked) -> packing -> model (per-document attention, gradient
checkpointing, Liger, torch.compile, DDP/FSDP2) -> AdamW + warmup/cosine -> [resume] -> steps -> export.

One optimizer step takes `per_device_batch_size * gradient_accumulation_steps * world_size` units (packed rows
when packing, else single rows) from a per-epoch shuffle that depends only on (seed, epoch), so the data
position is the step number and resuming replays nothing and skips nothing. Each micro-batch's summed token
loss is divided by the trainable tokens of the whole step (every micro-batch of every rank), which makes
1x8 and 8x1 accumulation the same update.

The step loop never waits for the device: token counts come from the host-side micro-batches, the loss and the
gradient norm stay on the device until a logging step reads all the steps since the last one at once, and the
next micro-batch is collated, pinned and copied (non-blocking) before the current one's forward is queued.

Example:
    >>> cfg = TrainConfig(model="tiny", data="out/x/dataset", output_dir="runs/x", max_steps=10)  # doctest: +SKIP
    >>> SFTTrainer(config=cfg).train()  # doctest: +SKIP
    PosixPath('runs/x/final')
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tracekit.train.attention import resolve_backend, use_document_attention
from tracekit.train.chat_masks import format_masked_example
from tracekit.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from tracekit.train.config import TrainConfig
from tracekit.train.data import IGNORE_INDEX, TokenizedDoc, load_rows, split_held_out, tokenize_rows
from tracekit.train.export import export_model, push_folder
from tracekit.train.loss import CausalLMLoss
from tracekit.train.memory import GIB, MemoryPlan, auto_chunk_size, plan_for_config
from tracekit.train.packing import MicroBatch, collate_documents, pack_best_fit_decreasing


def metrics_through(text: str, *, step: int) -> str:
    """The metrics.jsonl lines of steps up to `step`, for a run resumed there: lines logged after that
    checkpoint go, and so does a last line cut short by a kill (it never parses).

        >>> metrics_through('{"step": 1}\\n{"step": 2}\\n{"step": 3}\\n{"st', step=2)
        '{"step": 1}\\n{"step": 2}\\n'
    """
    kept = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("step", 0) <= step:
            kept.append(line + "\n")
    return "".join(kept)


# Dense bf16 peak TFLOP/s per GPU, for MFU.
_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "L4": 121.0}


def lr_lambda(*, step: int, total: int, warmup: int, kind: str, min_ratio: float) -> float:
    """Learning-rate multiplier: linear warmup, then cosine/linear decay to `min_ratio` (or constant)."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    decay = 0.5 * (1 + math.cos(math.pi * progress)) if kind == "cosine" else 1 - progress
    return min_ratio + (1 - min_ratio) * decay


def autocast_context(*, device: torch.device, bf16: bool, sharded: bool) -> Any:
    """bf16 autocast over fp32 weights (unsharded runs; FSDP2 casts through its mixed-precision policy).

    The cast cache is off: with it, every layer's bf16 weight copy stays alive until the forward ends (the
    size of the model in bf16); without it each copy lives only while its layer runs, and a checkpointed layer
    casts again in its recompute either way.
    """
    if not bf16 or sharded:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)


def stage(mb: MicroBatch, device: torch.device) -> MicroBatch:
    """Put a host micro-batch on `device`: pinned, then copied without waiting for the device's queue."""
    if device.type != "cuda":
        return mb
    return mb.pin_memory().to(device, non_blocking=True)


@dataclass
class StepResult:
    """One optimizer step: device scalars read at the next logging step, host counts known at once."""

    step: int
    loss_sum: torch.Tensor
    grad_norm: torch.Tensor
    lr: float
    tokens: int
    trainable: int
    step_trainable: int  # all ranks: the loss divisor
    flops: float


class _Lookahead:
    """Yields each item while the next one is already made (collated, pinned, its copy queued)."""

    def __init__(self, items: Iterator[Any]) -> None:
        self._items = items
        self._next = next(items, None)

    def __next__(self) -> Any:
        current = self._next
        if current is None:
            raise StopIteration
        self._next = next(self._items, None)
        return current


def device_memory(*, config: TrainConfig, device: torch.device) -> tuple[float, str]:
    """Bytes a memory plan may fill on `device` (config.memory_budget_gib overrides) and how to name it."""
    if config.memory_budget_gib is not None:
        return config.memory_budget_gib * GIB, f"the memory_budget_gib of {config.memory_budget_gib} GiB"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return float(props.total_memory), f"{device} ({props.name})"
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")), "this host's RAM"


class SFTTrainer:
    """Supervised fine-tuning on `messages` rows with assistant-only loss; see the module docstring."""

    def __init__(self, *, config: TrainConfig) -> None:
        self.cfg = config
        self.output_dir = Path(config.output_dir)

    # ------------------------------------------------------------------ setup
    def _setup_distributed(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = torch.cuda.is_available()
        self.device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
        if cuda:
            torch.cuda.set_device(self.device)
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
        self.sharded = self.cfg.sharded(world=self.world, cuda=cuda)
        self.backend = resolve_backend(requested=self.cfg.attn_implementation, device=self.device)
        if self.backend == "flex_attention" and not cuda:
            raise ValueError(
                "attn_implementation: flex_attention trains on GPUs only (PyTorch has no CPU backward for it); "
                "use sdpa, the default on CPU"
            )

    def _log(self, msg: str) -> None:
        if self.rank == 0:
            print(msg, flush=True)

    def _load_tokenizer(self) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(self.cfg.tokenizer or self.cfg.model)
        template = self.cfg.chat_template
        if template is not None and template.endswith(".jinja") and Path(template).is_file():
            template = Path(template).read_text()
        self.chat_template = template or self.tokenizer.chat_template
        if not self.chat_template:
            raise ValueError("chat_template: the tokenizer has none; set `chat_template` in the train config")

    def _plan_memory(self) -> MemoryPlan:
        """Print the expected peak memory per device; refuse (MemoryPlanError) a config that cannot fit."""
        from transformers import AutoConfig

        budget, where = device_memory(config=self.cfg, device=self.device)
        plan = plan_for_config(
            config=self.cfg,
            model_config=AutoConfig.from_pretrained(self.cfg.model),
            world=self.world,
            cuda=self.device.type == "cuda",
            budget=budget,
            where=where,
        )
        self._log(plan.summary(budget=budget))
        return plan

    def _load_docs(self) -> None:
        cfg = self.cfg
        rows = load_rows(data=cfg.data, split=cfg.train_split)
        eval_rows: list[dict[str, Any]] = []
        if isinstance(cfg.eval_split, float):
            rows, eval_rows = split_held_out(rows=rows, fraction=cfg.eval_split, seed=cfg.seed)
        elif isinstance(cfg.eval_split, str):
            eval_rows = load_rows(data=cfg.data, split=cfg.eval_split)
        kw: dict[str, Any] = {
            "tokenizer": self.tokenizer,
            "max_length": cfg.max_length,
            "chat_template": self.chat_template,
        }
        self.docs, report = tokenize_rows(rows=rows, too_long=cfg.too_long, **kw)
        self.eval_docs = tokenize_rows(rows=eval_rows, too_long="drop", **kw)[0] if eval_rows else []
        if not self.docs:
            raise ValueError(
                f"data: no trainable rows in {cfg.data!r} (dropped {len(report.dropped_too_long)})"
            )
        first = self.docs[0]
        mask = [False] + [y != IGNORE_INDEX for y in first.labels[:-1]]
        text = format_masked_example(input_ids=first.input_ids, mask=mask, tokenizer=self.tokenizer)
        if len(text) > 3000:
            text = text[:1500] + "\n[... middle elided ...]\n" + text[-1500:]
        self._log(f"example row {first.row_id} (trained part inside [TRAIN> ... <TRAIN]):\n{text}\n")
        n_tok = sum(len(d) for d in self.docs)
        n_train = sum(d.num_trainable for d in self.docs)
        self._log(
            f"train rows: {len(self.docs)} ({n_tok} tokens, {n_train / n_tok:.1%} trainable); "
            f"dropped too long: {len(report.dropped_too_long)}; eval rows: {len(self.eval_docs)}"
        )

    def _units(self, docs: list[TokenizedDoc]) -> list[list[int]]:
        # A unit is what a micro-batch slot holds: a packed row of documents, or one document.
        if self.cfg.packing:
            return pack_best_fit_decreasing(lengths=[len(d) for d in docs], capacity=self.cfg.max_length)
        return [[i] for i in range(len(docs))]

    def _use_liger(self) -> bool:
        installed = importlib.util.find_spec("liger_kernel") is not None
        if self.cfg.liger_kernels is None:
            return installed and self.device.type == "cuda"
        if self.cfg.liger_kernels and not installed:
            raise ValueError("liger_kernels: true, but the liger-kernel package is not installed")
        return self.cfg.liger_kernels

    def _apply_liger(self, model: Any) -> None:
        # Norms, SwiGLU and RoPE only: the loss is tracekit's own chunked lm-head loss.
        from liger_kernel.transformers import _apply_liger_kernel_to_instance

        _apply_liger_kernel_to_instance(
            model=model,
            rope=True,
            rms_norm=True,
            swiglu=True,
            cross_entropy=False,
            fused_linear_cross_entropy=False,
        )

    def _loss_module(self, model: Any, *, chunk_size: int) -> torch.nn.Module:
        """The module that wraps the model and returns a loss (what DDP/FSDP2 wrap); SFT: `CausalLMLoss`."""
        return CausalLMLoss(model, chunk_size=chunk_size, compile=self.cfg.compile)

    def _load_model(self) -> None:
        from transformers import AutoModelForCausalLM

        cfg = self.cfg
        model = AutoModelForCausalLM.from_pretrained(
            cfg.model, dtype=torch.float32, attn_implementation="sdpa"
        )
        model.config.use_cache = False
        use_document_attention(model)
        self.window = None
        if getattr(model.config, "use_sliding_window", False) or "sliding_attention" in (
            getattr(model.config, "layer_types", None) or []
        ):
            self.window = getattr(model.config, "sliding_window", None)
        liger = self._use_liger()
        if liger:
            self._apply_liger(model)
        if cfg.checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if cfg.compile:
            for layer in model.get_decoder().layers:
                layer.compile(dynamic=True)
        self.hf_model = model
        chunk = cfg.loss_chunk_size or auto_chunk_size(model.get_output_embeddings().weight.shape[0])
        module = self._loss_module(model, chunk_size=chunk).to(self.device)
        if self.sharded:
            from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

            mp = (
                MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
                if cfg.bf16
                else MixedPrecisionPolicy()
            )
            for layer in model.get_decoder().layers:
                fully_shard(layer, mp_policy=mp)
            fully_shard(module, mp_policy=mp)
            self.module: Any = module
            self.model: Any = module
        elif self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.module = module
            self.model = DistributedDataParallel(
                module, device_ids=[self.device.index] if self.device.index is not None else None
            )
        else:
            self.module = self.model = module
        emb: Any = model.get_input_embeddings().weight
        head: Any = model.get_output_embeddings().weight
        n_params = sum(p.numel() for p in model.parameters())
        tied = head is emb
        # FLOPs per token: 6 x (non-embedding weights) for every token, 6 x (head) for trained tokens only
        self.flop_params = n_params - emb.numel() - (0 if tied else head.numel())
        self.head_params = head.numel()
        self.layers_hidden = model.config.num_hidden_layers * model.config.hidden_size
        self._log(
            f"model {cfg.model}: {n_params / 1e6:.1f}M parameters, attention {self.backend} per document, "
            f"gradient checkpointing {'on' if cfg.checkpointing else 'off'}, Liger {'on' if liger else 'off'}, "
            f"compile {'on' if cfg.compile else 'off'}, ranks {self.world}"
        )

    def _make_optimizer(self, total_steps: int) -> None:
        cfg = self.cfg
        decay: list[torch.nn.Parameter] = []
        no_decay: list[torch.nn.Parameter] = []
        for name, p in self.module.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
        groups = [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        # fused: one kernel for every parameter, and its step counts stay on the device (the for-loop version
        # reads them back with .item() every step)
        fused = not self.sharded
        self.optimizer = torch.optim.AdamW(
            groups,
            lr=cfg.learning_rate,
            betas=(cfg.adam_beta1, cfg.adam_beta2),
            eps=cfg.adam_epsilon,
            fused=fused,
        )
        warmup = math.ceil(cfg.warmup_ratio * total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: lr_lambda(
                step=s, total=total_steps, warmup=warmup, kind=cfg.lr_scheduler, min_ratio=cfg.min_lr_ratio
            ),
        )

    # ------------------------------------------------------------------ data plan
    def _step_plan(self, step: int) -> list[list[int]]:
        """Every micro-batch (a list of unit indices) of optimizer step `step`, all ranks, in slot order."""
        per_step = self.cfg.per_device_batch_size * self.cfg.gradient_accumulation_steps * self.world
        epoch, j = divmod(step, self.steps_per_epoch)
        order = list(range(len(self.units)))
        random.Random(self.cfg.seed + epoch).shuffle(order)
        chunk = order[j * per_step : (j + 1) * per_step]
        b = self.cfg.per_device_batch_size
        return [chunk[k : k + b] for k in range(0, len(chunk), b)]

    def _collate(self, unit_ids: list[int], units: list[list[int]], docs: list[TokenizedDoc]) -> MicroBatch:
        picked = [docs[i] for u in unit_ids for i in units[u]]
        if not picked:  # a rank with nothing left in the last step still runs forward/backward, at zero loss
            d = docs[0]
            picked = [TokenizedDoc(input_ids=d.input_ids, labels=[IGNORE_INDEX] * len(d), row=d.row)]
        return collate_documents(picked, backend=self.backend, window=self.window)

    def _my_micro_batches(self, plan: list[list[int]]) -> list[list[int]]:
        slots = self.cfg.gradient_accumulation_steps
        mine = [
            plan[g * self.world + self.rank] if g * self.world + self.rank < len(plan) else []
            for g in range(slots)
        ]
        if self.world == 1:
            mine = [m for m in mine if m]
        else:  # every rank runs as many micro-batches as the busiest one
            busiest = max(
                sum(1 for g in range(slots) if g * self.world + r < len(plan)) for r in range(self.world)
            )
            mine = mine[:busiest]
        return mine

    def _staged_micro_batches(self, start: int, total: int) -> Iterator[tuple[list[int], MicroBatch]]:
        """(unit ids, device micro-batch) of this rank for steps start..total-1, in order."""
        for step in range(start, total):
            for unit_ids in self._my_micro_batches(self._step_plan(step)):
                yield unit_ids, stage(self._collate(unit_ids, self.units, self.docs), self.device)

    # ------------------------------------------------------------------ one forward
    def _forward(self, mb: MicroBatch) -> torch.Tensor:
        with autocast_context(device=self.device, bf16=self.cfg.bf16, sharded=self.sharded):
            out: torch.Tensor = self.model(mb)
        return out

    def _all_reduce(self, values: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            torch.distributed.all_reduce(values)
        return values

    def evaluate(self) -> float | None:
        """Mean token loss on the held-out rows (all ranks take part); one read of the device at the end."""
        if not self.eval_docs:
            return None
        units = self.eval_units
        per_rank = math.ceil(len(units) / self.world)
        mine = [[u] if u < len(units) else [] for u in range(self.rank, per_rank * self.world, self.world)]
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        count = 0
        self.model.eval()
        with torch.no_grad():
            for unit in mine:
                mb = self._collate(unit, units, self.eval_docs)
                total += self._forward(stage(mb, self.device)).double()
                count += mb.num_trainable if unit else 0
        self.model.train()
        both = self._all_reduce(
            torch.stack([total, torch.tensor(float(count), dtype=torch.float64).to(total)])
        )
        loss_sum, n = both.tolist()
        return float(loss_sum / max(n, 1.0))

    # ------------------------------------------------------------------ the loop
    def _train_step(self, step: int, batches: _Lookahead) -> StepResult:
        """Forward/backward of this rank's micro-batches and the optimizer update; never waits for the device."""
        cfg = self.cfg
        plan = self._step_plan(step)
        step_trainable = sum(
            self.docs[i].num_trainable for unit_ids in plan for u in unit_ids for i in self.units[u]
        )
        loss_sum = torch.zeros((), dtype=torch.float32, device=self.device)
        tokens = trainable = 0
        sum_sq = 0
        n_mine = len(self._my_micro_batches(plan))
        for k in range(n_mine):
            unit_ids, mb = next(batches)
            sync = k == n_mine - 1
            if self.sharded:
                self.model.set_requires_gradient_sync(sync)
            ctx = (
                self.model.no_sync()
                if self.world > 1 and not self.sharded and not sync
                else contextlib.nullcontext()
            )
            with ctx:
                part = self._forward(mb)
                (part * (self.world / max(step_trainable, 1))).backward()
            loss_sum += part.detach()
            # An empty slot's stand-in forward (zero loss) is no data: keep it out of tokens/s and fractions.
            if unit_ids:
                tokens += mb.num_tokens
                trainable += mb.num_trainable
                sum_sq += mb.sum_sq_lengths
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self.module.parameters(), cfg.max_grad_norm if cfg.max_grad_norm else float("inf")
        )
        if hasattr(grad_norm, "full_tensor"):
            grad_norm = grad_norm.full_tensor()
        lr = float(self.scheduler.get_last_lr()[0])
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        flops = (
            6.0 * self.flop_params * tokens
            + 6.0 * self.head_params * trainable
            + 6.0 * self.layers_hidden * sum_sq
        )
        return StepResult(
            step=step,
            loss_sum=loss_sum,
            grad_norm=grad_norm.detach().float(),
            lr=lr,
            tokens=tokens,
            trainable=trainable,
            step_trainable=step_trainable,
            flops=flops,
        )

    def _flush(self, pending: list[StepResult], elapsed: float) -> list[dict[str, Any]]:
        """Metrics records of the steps since the last flush: the one read of the device per logging step."""
        n = len(pending)
        device_vals = torch.stack([torch.stack([r.loss_sum, r.grad_norm]) for r in pending]).double()
        host = [[r.tokens, r.trainable, r.flops, elapsed / n] for r in pending]
        if self.world > 1:  # one collective for every value of every pending step
            merged = torch.cat([device_vals, torch.tensor(host, dtype=torch.float64).to(self.device)], dim=1)
            both = self._all_reduce(merged).tolist()
        else:
            both = [d + h for d, h in zip(device_vals.tolist(), host, strict=True)]
        records = []
        for r, (loss_sum, norm_sum, tokens, trainable, flops, dt_sum) in zip(pending, both, strict=True):
            dt = dt_sum / self.world  # mean step time across ranks
            records.append(
                {
                    "step": r.step + 1,
                    "epoch": round((r.step + 1) / self.steps_per_epoch, 4),
                    "loss": loss_sum / max(r.step_trainable, 1),
                    "lr": r.lr,
                    "grad_norm": norm_sum / self.world,  # identical on every rank
                    "tokens_per_s": tokens / dt,
                    "mfu": flops / dt / (self.peak * 1e12 * self.world) if self.peak else None,
                    "trainable_fraction": trainable / max(tokens, 1),
                    "padding_fraction": 0.0,  # micro-batches are padding-free rows
                    "tokens": int(tokens),
                    "step_time_s": dt,
                }
            )
        return records

    def train(self, *, resume: bool = False) -> Path:
        cfg = self.cfg
        self._setup_distributed()
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._load_tokenizer()
        self._plan_memory()
        self._load_docs()
        self.units = self._units(self.docs)
        self.eval_units = self._units(self.eval_docs) if self.eval_docs else []
        per_step = cfg.per_device_batch_size * cfg.gradient_accumulation_steps * self.world
        self.steps_per_epoch = math.ceil(len(self.units) / per_step)
        total_steps = cfg.max_steps or math.ceil(cfg.epochs * self.steps_per_epoch)
        self._load_model()
        self._make_optimizer(total_steps)
        self.model.train()

        state = self._restore(resume=resume)
        start = int(state["step"]) if state else 0
        if state:
            self._log(f"resuming at epoch {state['epoch']}, batch {state['batch_in_epoch']}")
        metrics_path = self._metrics_through(start)

        peak = cfg.peak_tflops
        if peak is None and self.device.type == "cuda":
            name = torch.cuda.get_device_name(self.device)
            peak = next((v for k, v in _PEAK_TFLOPS.items() if k in name), None)
        self.peak = peak
        self._log(f"training {total_steps} steps ({self.steps_per_epoch} per epoch, {len(self.units)} units)")

        batches = _Lookahead(self._staged_micro_batches(start, total_steps))
        pending: list[StepResult] = []
        window_start = time.perf_counter()
        for step in range(start, total_steps):
            pending.append(self._train_step(step, batches))
            last = step + 1 == total_steps
            evaluate = bool(cfg.eval_every and (step + 1) % cfg.eval_every == 0) or (
                last and bool(self.eval_docs)
            )
            save = bool(cfg.save_every and ((step + 1) % cfg.save_every == 0 or last))
            if not ((step + 1) % cfg.logging_every == 0 or last or evaluate or save):
                continue
            records = self._flush(pending, time.perf_counter() - window_start)
            pending = []
            if evaluate:
                records[-1]["eval_loss"] = self.evaluate()
            self._write_records(metrics_path, records, total_steps)
            if save:
                epoch, batch = divmod(step + 1, self.steps_per_epoch)
                save_checkpoint(
                    output_dir=self.output_dir,
                    step=step + 1,
                    module=self.module,
                    optimizer=self.optimizer,
                    scheduler=self.scheduler,
                    trainer_state={
                        "step": step + 1,
                        "epoch": epoch,
                        "batch_in_epoch": batch,
                        "config": cfg.model_dump(mode="json"),
                    },
                    rank=self.rank,
                    sharded=self.sharded,
                    keep=cfg.save_total_limit,
                )
            window_start = time.perf_counter()
        return self._export()

    def _restore(self, *, resume: bool) -> dict[str, Any] | None:
        """With `resume`, load the latest checkpoint into the model, optimizer and scheduler and return its
        trainer state (None when there is none: the run starts at step 0)."""
        ckpt = latest_checkpoint(self.output_dir) if resume else None
        if resume and ckpt is None:
            self._log(f"resume: no checkpoint in {self.output_dir}, starting from step 0")
        if ckpt is None:
            return None
        state = load_checkpoint(
            path=ckpt,
            module=self.module,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            rank=self.rank,
            sharded=self.sharded,
        )
        self._log(f"resumed from {ckpt} at step {int(state['step'])}")
        return dict(state)

    def _metrics_through(self, start: int) -> Path:
        """metrics.jsonl without the lines logged after step `start` (rank 0 owns the file); its path."""
        metrics_path = self.output_dir / "metrics.jsonl"
        if self.rank == 0:
            old = metrics_path.read_text() if metrics_path.exists() and start else ""
            metrics_path.write_text(metrics_through(old, step=start))
        return metrics_path

    def _write_records(self, path: Path, records: list[dict[str, Any]], total_steps: int) -> None:
        if self.rank != 0:
            return
        with path.open("a") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in records)
        for r in records:
            if r["step"] % self.cfg.logging_every and r["step"] != total_steps and "eval_loss" not in r:
                continue
            self._log(
                f"step {r['step']}/{total_steps} loss {r['loss']:.4f} lr {r['lr']:.2e} "
                f"grad_norm {r['grad_norm']:.3f} tok/s {r['tokens_per_s']:.0f} "
                + (f"mfu {r['mfu']:.1%} " if r["mfu"] is not None else "")
                + f"trainable {r['trainable_fraction']:.1%}"
                + (f" eval_loss {r['eval_loss']:.4f}" if r.get("eval_loss") is not None else "")
            )

    def _export(self) -> Path:
        cfg = self.cfg
        final = self.output_dir / "final"
        state_dict = None
        if self.sharded:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

            full = get_model_state_dict(
                self.module, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
            )
            state_dict = {k.removeprefix("model."): v for k, v in full.items() if isinstance(v, torch.Tensor)}
        if self.rank == 0:
            dtype = (
                torch.bfloat16
                if cfg.export_dtype == "bfloat16" or (cfg.export_dtype == "auto" and cfg.bf16)
                else torch.float32
            )
            self.hf_model.set_attn_implementation("sdpa")  # the export must not name tracekit's function
            export_model(
                model=self.hf_model,
                state_dict=state_dict,
                tokenizer=self.tokenizer,
                chat_template=self.chat_template,
                out_dir=final,
                dtype=dtype,
                source=cfg.model,
            )
            self._log(f"exported {final}")
            if cfg.push_to_hub:
                self._log(
                    f"pushed to {push_folder(folder=final, repo_id=cfg.push_to_hub, private=cfg.hub_private)}"
                )
        if self.world > 1:
            torch.distributed.barrier()
        return final
