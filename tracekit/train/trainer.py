"""`SFTTrainer`: the bundled supervised fine-tuning loop, readable top to bottom.

setup (ranks, seed) -> tokenizer + template -> rows -> tokens + assistant masks (checked) -> packing
-> model (+ gradient checkpointing, DDP/FSDP2) -> AdamW + warmup/cosine -> [resume] -> steps -> export.

One optimizer step takes `per_device_batch_size * gradient_accumulation_steps * world_size` units (packed rows
when packing, else single rows) from a per-epoch shuffle that depends only on (seed, epoch), so the data
position is the step number and resuming replays nothing and skips nothing. Each micro-batch's summed token
loss is divided by the trainable tokens of the whole step (every micro-batch of every rank), which makes
1x8 and 8x1 accumulation the same update.

Example:
    >>> cfg = TrainConfig(model="tiny", data="out/x/dataset", output_dir="runs/x", max_steps=10)  # doctest: +SKIP
    >>> SFTTrainer(config=cfg).train()  # doctest: +SKIP
    PosixPath('runs/x/final')
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import torch

from tracekit.train.chat_masks import format_masked_example
from tracekit.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from tracekit.train.config import TrainConfig
from tracekit.train.data import IGNORE_INDEX, TokenizedDoc, load_rows, split_held_out, tokenize_rows
from tracekit.train.export import export_model, push_folder
from tracekit.train.loss import CausalLMLoss
from tracekit.train.packing import MicroBatch, collate_packed, collate_padded, pack_best_fit_decreasing

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
        mode = self.cfg.distributed
        self.sharded = self.world > 1 and (mode == "fsdp2" or (mode == "auto" and cuda))

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

    def _load_model(self) -> None:
        from transformers import AutoModelForCausalLM

        cfg = self.cfg
        attn = cfg.attn_implementation
        if attn == "auto":
            try:
                import flash_attn  # noqa: F401

                attn = "flash_attention_2" if self.device.type == "cuda" else "sdpa"
            except ImportError:
                attn = "sdpa"
        model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=torch.float32, attn_implementation=attn)
        model.config.use_cache = False
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.hf_model = model
        module = CausalLMLoss(model, chunk_size=cfg.loss_chunk_size).to(self.device)
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
        n_params = sum(p.numel() for p in model.parameters())
        emb: Any = model.get_input_embeddings().weight
        self.flop_params = n_params - emb.numel()
        self.vocab_hidden = emb.numel()
        self.layers_hidden = model.config.num_hidden_layers * model.config.hidden_size
        self._log(
            f"model {cfg.model}: {n_params / 1e6:.1f}M parameters, attention {attn}, ranks {self.world}"
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
        fused = self.device.type == "cuda" and not self.sharded
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
        return collate_packed(picked) if self.cfg.packing else collate_padded(picked)

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

    # ------------------------------------------------------------------ one forward
    def _forward(self, mb: MicroBatch) -> tuple[torch.Tensor, torch.Tensor]:
        dev = self.device
        autocast = (
            torch.autocast(dev.type, dtype=torch.bfloat16)
            if self.cfg.bf16 and not self.sharded
            else contextlib.nullcontext()
        )
        with autocast:
            out: tuple[torch.Tensor, torch.Tensor] = self.model(
                input_ids=mb.input_ids.to(dev),
                labels=mb.labels.to(dev),
                position_ids=mb.position_ids.to(dev),
                attention_mask=None if mb.attention_mask is None else mb.attention_mask.to(dev),
            )
        return out

    def _all_reduce(self, values: list[float]) -> list[float]:
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return t.tolist()

    def evaluate(self) -> float | None:
        """Mean token loss on the held-out rows (all ranks take part)."""
        if not self.eval_docs:
            return None
        units = self.eval_units
        per_rank = math.ceil(len(units) / self.world)
        mine = [[u] if u < len(units) else [] for u in range(self.rank, per_rank * self.world, self.world)]
        total, count = 0.0, 0.0
        self.model.eval()
        with torch.no_grad():
            for unit in mine:
                loss_sum, n = self._forward(self._collate(unit, units, self.eval_docs))
                total, count = total + float(loss_sum), count + float(n)
        self.model.train()
        total, count = self._all_reduce([total, count])
        return total / max(count, 1.0)

    # ------------------------------------------------------------------ the loop
    def train(self, *, resume: bool = False) -> Path:
        cfg = self.cfg
        self._setup_distributed()
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._load_tokenizer()
        self._load_docs()
        self.units = self._units(self.docs)
        self.eval_units = self._units(self.eval_docs) if self.eval_docs else []
        per_step = cfg.per_device_batch_size * cfg.gradient_accumulation_steps * self.world
        self.steps_per_epoch = math.ceil(len(self.units) / per_step)
        total_steps = cfg.max_steps or math.ceil(cfg.epochs * self.steps_per_epoch)
        self._load_model()
        self._make_optimizer(total_steps)
        self.model.train()

        start = 0
        ckpt = latest_checkpoint(self.output_dir) if resume else None
        if resume and ckpt is None:
            self._log(f"resume: no checkpoint in {self.output_dir}, starting from step 0")
        if ckpt is not None:
            state = load_checkpoint(
                path=ckpt,
                module=self.module,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                rank=self.rank,
                sharded=self.sharded,
            )
            start = int(state["step"])
            self._log(
                f"resumed from {ckpt} at step {start} (epoch {state['epoch']}, batch {state['batch_in_epoch']})"
            )
        metrics_path = self.output_dir / "metrics.jsonl"
        if self.rank == 0:  # drop lines logged after the checkpoint we resume from
            old = metrics_path.read_text().splitlines() if metrics_path.exists() and start else []
            metrics_path.write_text(
                "".join(line + "\n" for line in old if json.loads(line).get("step", 0) <= start)
            )

        peak = cfg.peak_tflops
        if peak is None and self.device.type == "cuda":
            name = torch.cuda.get_device_name(self.device)
            peak = next((v for k, v in _PEAK_TFLOPS.items() if k in name), None)
        self._log(f"training {total_steps} steps ({self.steps_per_epoch} per epoch, {len(self.units)} units)")

        for step in range(start, total_steps):
            plan = self._step_plan(step)
            step_trainable = sum(
                self.docs[i].num_trainable for unit_ids in plan for u in unit_ids for i in self.units[u]
            )
            t0 = time.perf_counter()
            loss_sum = 0.0
            n_tok = n_pad = n_train = 0.0
            attn_flops = 0.0
            mine = self._my_micro_batches(plan)
            for k, unit_ids in enumerate(mine):
                mb = self._collate(unit_ids, self.units, self.docs)
                sync = k == len(mine) - 1
                if self.sharded:
                    self.model.set_requires_gradient_sync(sync)
                ctx = (
                    self.model.no_sync()
                    if self.world > 1 and not self.sharded and not sync
                    else contextlib.nullcontext()
                )
                with ctx:
                    part, _ = self._forward(mb)
                    (part * (self.world / max(step_trainable, 1))).backward()
                loss_sum += float(part.detach())
                # An empty slot's stand-in forward (zero loss) is no data: keep it out of tokens/s and fractions.
                if unit_ids:
                    n_tok, n_pad, n_train = (
                        n_tok + mb.num_tokens,
                        n_pad + mb.num_padding,
                        n_train + mb.num_trainable,
                    )
                attn_flops += sum(
                    6.0 * self.layers_hidden * len(self.docs[i]) ** 2 for u in unit_ids for i in self.units[u]
                )
            grad_norm = torch.nn.utils.clip_grad_norm_(
                self.module.parameters(), cfg.max_grad_norm if cfg.max_grad_norm else float("inf")
            )
            if hasattr(grad_norm, "full_tensor"):
                grad_norm = grad_norm.full_tensor()
            lr = self.scheduler.get_last_lr()[0]
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            dt = time.perf_counter() - t0

            flops = 6.0 * self.flop_params * n_tok + 6.0 * self.vocab_hidden * n_train + attn_flops
            loss_sum, n_tok, n_pad, n_train, flops, dt_max = self._all_reduce(
                [loss_sum, n_tok, n_pad, n_train, flops, dt]
            )
            dt = dt_max / self.world  # mean step time across ranks
            record: dict[str, Any] = {
                "step": step + 1,
                "epoch": round((step + 1) / self.steps_per_epoch, 4),
                "loss": loss_sum / max(step_trainable, 1),
                "lr": lr,
                "grad_norm": float(grad_norm),
                "tokens_per_s": n_tok / dt,
                "mfu": flops / dt / (peak * 1e12 * self.world) if peak else None,
                "trainable_fraction": n_train / max(n_tok, 1),
                "padding_fraction": n_pad / max(n_tok + n_pad, 1),
                "tokens": int(n_tok),
                "step_time_s": dt,
            }
            last = step + 1 == total_steps
            if cfg.eval_every and ((step + 1) % cfg.eval_every == 0 or last) or (last and self.eval_docs):
                record["eval_loss"] = self.evaluate()
            if self.rank == 0:
                with metrics_path.open("a") as fh:
                    fh.write(json.dumps(record) + "\n")
                if (step + 1) % cfg.logging_every == 0 or last:
                    self._log(
                        f"step {step + 1}/{total_steps} loss {record['loss']:.4f} lr {lr:.2e} "
                        f"grad_norm {record['grad_norm']:.3f} tok/s {record['tokens_per_s']:.0f} "
                        + (f"mfu {record['mfu']:.1%} " if record["mfu"] is not None else "")
                        + f"trainable {record['trainable_fraction']:.1%} pad {record['padding_fraction']:.1%}"
                        + (
                            f" eval_loss {record['eval_loss']:.4f}"
                            if record.get("eval_loss") is not None
                            else ""
                        )
                    )
            if cfg.save_every and ((step + 1) % cfg.save_every == 0 or last):
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
        return self._export()

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
