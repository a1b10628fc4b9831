"""`DistillTrainer`: on-policy distillation, the student learning from the teacher on its own samples.

setup -> tokenizers (student and teacher must share one, and the chat template) -> prompts (held-out ones
aside) -> model, AdamW + schedule, [resume] -> teacher server + student sampler -> steps -> export.

One step: the student's vLLM samples `rollout.n` completions of `rollout.prompts` prompts (per-request seeds
from (seed, step, prompt, sample), so a step's samples depend only on the weights); the teacher scores every
completion token; the completions become `TokenizedDoc`s whose labels are the completion tokens only, packed
and collated by `tracekit train`'s packing into padding-free micro-batches with per-document attention; the
loss (loss.py) is accumulated over them and divided by the step's completion tokens; one AdamW step; the new
weights are loaded into the running sampler. Model loading, optimizer, schedule, precision, checkpoints and
export are `SFTTrainer`'s (this class extends it and swaps only the loss module and the loop).

Several ranks (torchrun, DDP or FSDP2 as in `tracekit train`): rank 0 owns the student sampler (its engine core
in a child process there, see rollout.py) and the teacher; it samples and scores the whole step and broadcasts the
samples, and every rank builds the same documents, advantages and packed units, then runs forward/backward on
every `world`-th unit (ranks with fewer run an empty stand-in, so all run the same collectives). Each rank's
loss is divided by the step's completion tokens (all ranks) and multiplied by `world`, which the gradient
all-reduce's mean undoes as in SFT, so the update is the one-process update on the same global batch. After
the update the full weights are gathered to rank 0 (`get_model_state_dict(full_state_dict=True,
cpu_offload=True)` under FSDP2) and loaded into the sampler.
Checkpoints, resume and export are SFTTrainer's sharded-or-not paths.

The prompt order is a per-epoch shuffle of (seed, epoch), so the step number is the data position: a resumed
run loads the checkpoint (weights, optimizer, schedule, RNG), pushes the weights into a fresh sampler and
continues with the very samples the interrupted run would have drawn.

Example:
    >>> DistillTrainer(config=DistillConfig.from_yaml(Path("pipelines/distill-tiny-cpu.yaml"))).train()  # doctest: +SKIP
    PosixPath('out/distill-tiny-cpu/final')
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import random
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from tracekit.distill.config import DistillConfig
from tracekit.distill.data import Prompt, load_prompts, render_prompt_ids, split_held_out
from tracekit.distill.loss import DistillLoss, advantages, cost_to_go, token_cost
from tracekit.distill.rollout import Completion, StudentSampler, without_torchrun_env
from tracekit.distill.teacher import TeacherScorer
from tracekit.train.checkpoint import save_checkpoint
from tracekit.train.data import IGNORE_INDEX, TokenizedDoc
from tracekit.train.packing import collate_documents, pack_best_fit_decreasing
from tracekit.train.trainer import SFTTrainer, autocast_context, stage


class TokenizerMismatchError(ValueError):
    """Student and teacher do not share a tokenizer or a chat template."""


def check_shared_tokenizer(
    *, student: str, teacher: str, student_tok: Any, teacher_tok: Any, template: str | None
) -> None:
    """Raise TokenizerMismatchError naming both models unless they share vocabulary, special tokens and (when no
    `chat_template` is set for both) the chat template.

    Example:
        >>> check_shared_tokenizer(student="a", teacher="b", student_tok=tok, teacher_tok=tok, template=None)  # doctest: +SKIP
    """
    problems = []
    sv, tv = student_tok.get_vocab(), teacher_tok.get_vocab()
    if sv != tv:
        only_s = sorted(set(sv) - set(tv))[:3]
        only_t = sorted(set(tv) - set(sv))[:3]
        differ = sorted(k for k in set(sv) & set(tv) if sv[k] != tv[k])[:3]
        problems.append(
            f"vocabularies differ ({len(sv)} vs {len(tv)} tokens; only the student's: {only_s}, only the "
            f"teacher's: {only_t}, other ids: {differ})"
        )
    for name in ("eos_token", "bos_token", "pad_token"):
        a, b = getattr(student_tok, name, None), getattr(teacher_tok, name, None)
        if a != b:
            problems.append(f"{name} {a!r} vs {b!r}")
    if template is None and (student_tok.chat_template or "") != (teacher_tok.chat_template or ""):
        problems.append("chat templates differ (set `chat_template` to use one for both)")
    if problems:
        raise TokenizerMismatchError(
            f"student {student} and teacher {teacher} must share a tokenizer and chat template "
            f"(cross-tokenizer distillation is not supported): {'; '.join(problems)}"
        )


def request_seed(*parts: Any) -> int:
    """A 31-bit sampling seed from its parts (same parts, same seed, on every machine)."""
    digest = hashlib.sha256(json.dumps(parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class DistillTrainer(SFTTrainer):
    """On-policy distillation; see the module docstring. The constructor is the config."""

    def __init__(self, *, config: DistillConfig) -> None:
        super().__init__(config=config.train_config())
        self.dcfg = config
        self._last_reward: float | None = None

    def _loss_module(self, model: Any, *, chunk_size: int) -> torch.nn.Module:
        return DistillLoss(model, chunk_size=chunk_size)

    # ------------------------------------------------------------------ setup
    def _check_teacher_tokenizer(self) -> None:
        from transformers import AutoTokenizer

        t = self.dcfg.teacher
        name = t.tokenizer or t.model
        try:
            teacher_tok = AutoTokenizer.from_pretrained(name)
        except Exception as e:  # a served name, a missing folder
            raise ValueError(
                f"teacher.tokenizer: cannot load the teacher's tokenizer from {name!r} ({type(e).__name__}); set "
                "teacher.tokenizer to its folder or Hub id"
            ) from None
        check_shared_tokenizer(
            student=self.dcfg.student,
            teacher=t.model,
            student_tok=self.tokenizer,
            teacher_tok=teacher_tok,
            template=self.dcfg.chat_template,
        )

    def _load_prompts(self) -> None:
        d = self.dcfg
        prompts = load_prompts(data=d.data, split=d.split)
        limit = self.cfg.max_length - d.rollout.max_tokens
        kept, dropped = [], 0
        for p in prompts:
            p.ids = render_prompt_ids(
                messages=p.messages, tokenizer=self.tokenizer, chat_template=self.chat_template
            )
            if len(p.ids) > limit:
                dropped += 1
            else:
                kept.append(p)
        if not kept:
            raise ValueError(
                f"data: every prompt is longer than max_length - rollout.max_tokens = {limit} tokens"
            )
        self.prompts, self.held_out = split_held_out(kept, count=d.held_out, seed=d.seed)
        self._log(
            f"prompts: {len(self.prompts)} to train on, {len(self.held_out)} held out, {dropped} dropped as too "
            f"long for max_length {self.cfg.max_length} with rollout.max_tokens {d.rollout.max_tokens}"
        )

    def _step_prompts(self, step: int) -> list[Prompt]:
        """The prompts of optimizer step `step`: a window of the per-epoch shuffle of (seed, epoch)."""
        per = self.dcfg.rollout.prompts
        per_epoch = max(1, len(self.prompts) // per)
        epoch, j = divmod(step, per_epoch)
        order = list(range(len(self.prompts)))
        random.Random(self.cfg.seed + epoch).shuffle(order)
        picked = order[j * per : (j + 1) * per]
        if len(picked) < per:  # fewer prompts than one step takes: repeat the shuffle
            picked = (order * math.ceil(per / len(order)))[:per]
        return [self.prompts[i] for i in picked]

    def _weights(self) -> list[tuple[str, torch.Tensor]]:
        """The student's full weights (Hugging Face names). Under FSDP2 every rank takes part in the gather and
        only rank 0 gets them (the others: [])."""
        if not self.sharded:
            return [(k, v.detach()) for k, v in self.hf_model.state_dict().items()]
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        full = get_model_state_dict(
            self.module, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
        if self.rank != 0:
            return []
        return [(k.removeprefix("model."), v) for k, v in full.items() if isinstance(v, torch.Tensor)]

    def _share(self, payload: Any) -> Any:
        """Rank 0's `payload` on every rank (pickled through the process group); itself with one rank."""
        if self.world == 1:
            return payload
        box = [payload if self.rank == 0 else None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    # ------------------------------------------------------------------ rollout and scoring
    def _sample(
        self,
        sampler: StudentSampler,
        prompts: list[Prompt],
        tag: Any,
        *,
        n: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
    ) -> list[list[Completion]]:
        seeds = [[request_seed(self.cfg.seed, tag, p.index, j) for j in range(n)] for p in prompts]
        return sampler.sample(
            [p.ids for p in prompts],
            n=n,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            seeds=seeds,
        )

    def _rollout(
        self, sampler: StudentSampler, teacher: TeacherScorer, prompts: list[Prompt], tag: Any
    ) -> tuple[
        list[tuple[Prompt, Completion, list[float]]], float, float, list[list[list[tuple[int, float]]]]
    ]:
        """(prompt, completion, teacher log-probs) of every sample, the sampling and the scoring seconds, and per
        sample the teacher's top-k (id, log-prob) at each completion position (empty without teacher.top_k)."""
        r = self.dcfg.rollout
        t0 = time.perf_counter()
        comps = self._sample(
            sampler, prompts, tag, n=r.n, temperature=r.temperature, top_p=r.top_p, max_tokens=r.max_tokens
        )
        t1 = time.perf_counter()
        flat = [(p, c) for p, cs in zip(prompts, comps, strict=True) for c in cs]
        scores = teacher.score_top_k([(p.ids, c.token_ids) for p, c in flat], k=self.dcfg.teacher.top_k)
        t2 = time.perf_counter()
        samples = [(p, c, s) for (p, c), (s, _) in zip(flat, scores, strict=True)]
        return samples, t1 - t0, t2 - t1, [tops for _, tops in scores]

    def _rewards(self, samples: list[tuple[Prompt, Completion, list[float]]]) -> list[float] | None:
        """Verifier reward per sample (1 correct, else 0), centred over each prompt's samples; None when off."""
        if self.dcfg.reward is None:
            return None
        from tracekit.eval.problem import EvalProblem
        from tracekit.eval.sample import EvalSample
        from tracekit.eval.scorer import score_samples

        checkable = [
            (i, p, c)
            for i, (p, c, _) in enumerate(samples)
            if (p.domain == "math" and p.gold_answer) or (p.domain == "code" and p.tests)
        ]
        raw = [0.0] * len(samples)
        evs = [
            EvalSample(
                model=self.dcfg.student,
                problem=EvalProblem(
                    benchmark="distill",
                    problem_id=str(p.index),
                    prompt=p.text,
                    domain="code" if p.domain == "code" else "math",
                    gold_answer=p.gold_answer,
                    tests=p.tests,
                ),
                sample_index=0,
                completion=c.text,
                finish_reason=c.finish_reason,
            )
            for _, p, c in checkable
        ]
        if evs:
            score_samples(evs, sandbox="bwrap")
        for (i, _, _), ev in zip(checkable, evs, strict=True):
            raw[i] = 1.0 if ev.verdict == "correct" else 0.0
        self._last_reward = sum(raw) / max(len(raw), 1)
        by_prompt: dict[int, list[int]] = {}
        for i, (p, _, _) in enumerate(samples):
            by_prompt.setdefault(p.index, []).append(i)
        centred = [0.0] * len(samples)
        for idx in by_prompt.values():
            mean = sum(raw[i] for i in idx) / len(idx)
            for i in idx:
                centred[i] = raw[i] - mean
        return centred

    # ------------------------------------------------------------------ one step
    def _update(
        self,
        samples: list[tuple[Prompt, Completion, list[float]]],
        rewards: list[float] | None,
        tops: list[list[list[tuple[int, float]]]] | None = None,
    ) -> dict[str, Any]:
        d = self.dcfg
        # jsd with the teacher's top-k: the divergence is differentiated directly over those tokens, so the
        # policy-gradient part carries only the reward
        top_k = d.teacher.top_k if d.objective == "jsd" and tops else 0
        docs: list[TokenizedDoc] = []
        old: list[list[float]] = []
        togo: list[torch.Tensor] = []
        kl_sum = 0.0
        for k, (p, c, t) in enumerate(samples):
            ids = p.ids + c.token_ids
            labels = [IGNORE_INDEX] * (len(p.ids) - 1) + c.token_ids + [IGNORE_INDEX]
            docs.append(TokenizedDoc(input_ids=ids, labels=labels, row=k))
            s_t = torch.tensor(c.logprobs, dtype=torch.float64)
            t_t = torch.tensor(t, dtype=torch.float64)
            cost = token_cost(objective=d.objective, student_logprobs=s_t, teacher_logprobs=t_t, beta=d.beta)
            togo.append(torch.zeros_like(cost) if top_k else cost_to_go(cost, discount=d.discount))
            old.append(c.logprobs)
            kl_sum += float((s_t - t_t).sum())
        base = float(torch.cat(togo).mean()) if d.baseline == "batch_mean" else 0.0
        adv: list[list[float]] = []
        for k, cost_k in enumerate(togo):
            reward = None if rewards is None else torch.full_like(cost_k, rewards[k] * d.reward.weight)  # type: ignore[union-attr]
            adv.append(advantages(cost=cost_k - base, kl_coef=d.kl_coef, reward=reward).tolist())
        n_tokens = sum(len(c.token_ids) for _, c, _ in samples)
        units = pack_best_fit_decreasing(lengths=[len(doc) for doc in docs], capacity=self.cfg.max_length)
        # this rank's share: every world-th unit; every rank runs as many micro-batches as the busiest one
        mine = units[self.rank :: self.world]
        mine += [[] for _ in range(math.ceil(len(units) / self.world) - len(mine))]
        loss_sum = torch.zeros((), dtype=torch.float32, device=self.device)
        all_tokens = 0
        gap_sum = 0.0  # |trainer - sampler| log-prob of the same tokens under the same weights: numerics only
        for n_mb, unit in enumerate(mine):
            sync = n_mb == len(mine) - 1
            if self.sharded:
                self.model.set_requires_gradient_sync(sync)
            # an empty slot: no labels, zero loss, every weight still in the graph
            picked = [docs[i] for i in unit] or [
                TokenizedDoc(input_ids=docs[0].input_ids, labels=[IGNORE_INDEX] * len(docs[0]), row=-1)
            ]
            mb = stage(collate_documents(picked, backend=self.backend, window=self.window), self.device)
            old_t = torch.tensor([x for i in unit for x in old[i]], dtype=torch.float32, device=self.device)
            adv_t = torch.tensor([x for i in unit for x in adv[i]], dtype=torch.float32, device=self.device)
            extra: dict[str, Any] = {}
            if top_k:
                assert tops is not None
                rows = [pos for i in unit for pos in tops[i]]
                if any(len(r) < top_k for r in rows):
                    raise ValueError(
                        f"teacher.top_k: the teacher returned fewer than {top_k} tokens at a position"
                    )
                extra = {
                    "top_ids": torch.tensor(
                        [[v for v, _ in r[:top_k]] for r in rows], dtype=torch.long, device=self.device
                    ).reshape(-1, top_k),
                    "top_teacher": torch.tensor(
                        [[lp for _, lp in r[:top_k]] for r in rows], dtype=torch.float32, device=self.device
                    ).reshape(-1, top_k),
                    "top_coef": d.kl_coef,
                    "beta": d.beta,
                }
            # DDP: gradients are all-reduced with the last micro-batch only
            no_sync = self.world > 1 and not self.sharded and not sync
            with self.model.no_sync() if no_sync else contextlib.nullcontext():
                with autocast_context(device=self.device, bf16=self.cfg.bf16, sharded=self.sharded):
                    part, new_lp = self.model(mb, old_t, adv_t, **extra)
                # the all-reduce averages over ranks; `* world` makes it the sum, as in tracekit train
                (part * (self.world / max(n_tokens, 1))).backward()
            gap_sum += float((new_lp.double() - old_t.double()).abs().sum())
            loss_sum += part.detach()
            all_tokens += mb.num_tokens if unit else 0
        if self.world > 1:  # one collective for the step's sums of every rank
            sums = torch.stack(
                [loss_sum.double(), torch.tensor(gap_sum, dtype=torch.float64, device=self.device),
                 torch.tensor(float(all_tokens), dtype=torch.float64, device=self.device)]
            )  # fmt: skip
            torch.distributed.all_reduce(sums)
            loss_total, gap_sum, tokens_total = sums.tolist()
            loss_sum = torch.tensor(loss_total)
            all_tokens = int(tokens_total)
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self.module.parameters(), self.cfg.max_grad_norm if self.cfg.max_grad_norm else float("inf")
        )
        if hasattr(grad_norm, "full_tensor"):  # FSDP2: a DTensor
            grad_norm = grad_norm.full_tensor()
        lr = float(self.scheduler.get_last_lr()[0])
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {
            "teacher_kl": kl_sum / max(n_tokens, 1),
            "loss": float(loss_sum) / max(n_tokens, 1),
            "tokens": n_tokens,
            "sequence_tokens": all_tokens,
            "lr": lr,
            "grad_norm": float(grad_norm),
            "sampler_logprob_gap": gap_sum / max(n_tokens, 1),
            "mean_completion_tokens": n_tokens / max(len(samples), 1),
            "truncated_fraction": sum(c.finish_reason == "length" for _, c, _ in samples)
            / max(len(samples), 1),
        }

    # ------------------------------------------------------------------ measurements
    def held_out_kl(self, sampler: StudentSampler, teacher: TeacherScorer) -> float | None:
        """Mean per-token reverse KL of the student's samples on the held-out prompts (fixed seeds)."""
        if not self.held_out:
            return None
        samples, _, _, _ = self._rollout(sampler, teacher, self.held_out, "held_out")
        n = sum(len(c.token_ids) for _, c, _ in samples)
        return sum(s - t for _, c, ts in samples for s, t in zip(c.logprobs, ts, strict=True)) / max(n, 1)

    def evaluate_pass_at_k(self, sampler: StudentSampler, step: int) -> dict[str, dict[str, float]]:
        """pass@k of the current student on `eval.bench`, sampled by the running sampler and scored by
        `tracekit eval`'s verifiers and estimator."""
        from tracekit.eval.benchmarks import load_problems
        from tracekit.eval.config import CODE_PROMPT_TEMPLATE
        from tracekit.eval.results import compute_results
        from tracekit.eval.sample import EvalSample
        from tracekit.eval.scorer import score_samples
        from tracekit.teachers.base import render_messages
        from tracekit.teachers.config import R1_PROMPT_TEMPLATE

        ev = self.dcfg.eval
        assert ev is not None
        problems = []
        for bench in ev.bench:
            problems += load_problems(bench, data_dir=ev.data_dir)[: ev.limit]
        prompts = []
        for i, prob in enumerate(problems):
            template = R1_PROMPT_TEMPLATE if prob.domain == "math" else CODE_PROMPT_TEMPLATE
            msgs = render_messages(prob.prompt, system_prompt=None, template=template)
            ids = render_prompt_ids(messages=msgs, tokenizer=self.tokenizer, chat_template=self.chat_template)
            prompts.append(Prompt(messages=msgs, index=i, ids=ids))
        comps = self._sample(
            sampler,
            prompts,
            "eval",
            n=ev.samples,
            temperature=ev.temperature,
            top_p=ev.top_p,
            max_tokens=ev.max_tokens or self.dcfg.rollout.max_tokens,
        )
        samples = [
            EvalSample(
                model=f"{self.dcfg.student}@{step}",
                problem=prob,
                sample_index=j,
                completion=c.text,
                backend="vllm",
                finish_reason=c.finish_reason,
                completion_tokens=len(c.token_ids),
            )
            for prob, cs in zip(problems, comps, strict=True)
            for j, c in enumerate(cs)
        ]
        score_samples(samples, sandbox=ev.sandbox)
        results = compute_results(samples, ks=ev.k, resamples=200, seed=self.cfg.seed)
        return {r.benchmark: {f"pass@{p.k}": p.value for p in r.pass_at} for r in results}

    # ------------------------------------------------------------------ the loop
    def train(self, *, resume: bool = False) -> Path:
        cfg, d = self.cfg, self.dcfg
        self._setup_distributed()
        lead = self.rank == 0  # samples, scores, measures and writes the metrics
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._load_tokenizer()
        except OSError as e:  # a missing folder, a Hub id that does not exist
            raise ValueError(
                f"student: cannot load a tokenizer from {d.student!r} ({type(e).__name__})"
            ) from None
        self._check_teacher_tokenizer()
        self._load_prompts()
        self._plan_memory()
        self._load_model()
        self._make_optimizer(d.max_steps)
        self.model.train()

        state = self._restore(resume=resume)
        start = int(state["step"]) if state else 0
        metrics_path = self._metrics_through(start)  # a line a kill cut short is dropped too

        logs = self.output_dir / "logs"
        with contextlib.ExitStack() as stack:
            teacher: Any = None
            sampler: Any = None
            if lead:
                # a managed teacher server must not take torchrun's rank for its own
                with without_torchrun_env():
                    teacher = stack.enter_context(TeacherScorer(config=d.teacher, log_dir=logs))
                sampler = stack.enter_context(
                    StudentSampler(
                        model=d.student,
                        engine=d.engine_args(),
                        env=d.engine_env,
                        in_process=self.world == 1,
                        weights_dir=self.output_dir / "sampler-weights",
                    )
                )
            weights = self._weights()  # the checkpoint's weights on resume
            if lead:
                sampler.load_weights(weights)
            del weights
            if lead and start == 0 and self.held_out:
                first = {"step": 0, "held_out_teacher_kl": self.held_out_kl(sampler, teacher)}
                self._write(metrics_path, first)
            self._log(
                f"distilling {d.max_steps} steps: {d.rollout.prompts} prompts x {d.rollout.n} samples each"
                + (f", {self.world} ranks" if self.world > 1 else "")
            )
            for step in range(start, d.max_steps):
                t0 = time.perf_counter()
                payload = None
                if lead:
                    samples, rollout_s, scoring_s, tops = self._rollout(
                        sampler, teacher, self._step_prompts(step), step
                    )
                    rewards = self._rewards(samples)
                    payload = (samples, rewards, tops, rollout_s, scoring_s, self._last_reward)
                samples, rewards, tops, rollout_s, scoring_s, self._last_reward = self._share(payload)
                t1 = time.perf_counter()
                rec: dict[str, Any] = {"step": step + 1, **self._update(samples, rewards, tops)}
                weights = self._weights()
                if lead:
                    sampler.load_weights(weights)
                del weights
                t2 = time.perf_counter()
                step_s = t2 - t0
                rec.update(
                    tokens_per_s=rec["tokens"] / step_s,
                    rollout_s=rollout_s,
                    scoring_s=scoring_s,
                    update_s=t2 - t1,
                    step_time_s=step_s,
                )
                if rewards is not None:
                    rec["reward"] = self._last_reward
                last = step + 1 == d.max_steps
                if lead:
                    if (d.eval and ((step + 1) % d.eval.every == 0 or last)) or (last and self.held_out):
                        rec["held_out_teacher_kl"] = self.held_out_kl(sampler, teacher)
                        if d.eval and d.eval.bench:
                            rec["eval"] = self.evaluate_pass_at_k(sampler, step + 1)
                    self._write(metrics_path, rec)
                if (step + 1) % cfg.logging_every == 0 or last:
                    self._log(
                        f"step {step + 1}/{d.max_steps} teacher_kl {rec['teacher_kl']:.4f} loss {rec['loss']:.4f} "
                        f"tokens {rec['tokens']} ({rec['tokens_per_s']:.0f}/s) sample {rollout_s:.2f}s "
                        f"score {scoring_s:.2f}s update {rec['update_s']:.2f}s"
                        + (
                            f" held_out_teacher_kl {rec['held_out_teacher_kl']:.4f}"
                            if "held_out_teacher_kl" in rec
                            else ""
                        )
                    )
                if cfg.save_every and ((step + 1) % cfg.save_every == 0 or last):
                    save_checkpoint(
                        output_dir=self.output_dir,
                        step=step + 1,
                        module=self.module,
                        optimizer=self.optimizer,
                        scheduler=self.scheduler,
                        rank=self.rank,
                        sharded=self.sharded,
                        keep=cfg.save_total_limit,
                        trainer_state={"step": step + 1, "config": d.model_dump(mode="json")},
                    )
        if lead and self.world > 1:  # the sampler's reload copy; the export and checkpoints hold the weights
            shutil.rmtree(self.output_dir / "sampler-weights", ignore_errors=True)
        return self._export()

    def _write(self, path: Path, record: dict[str, Any]) -> None:
        with path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
