"""`tracekit distill` end to end on CPU with real parts: vLLM's CPU build samples the student (in the trainer's
process, weights reloaded in place after every update) and serves the teacher (a vLLM OpenAI server scoring
with prompt_logprobs); the teacher was made sure of a small task by `tracekit train`; the student shares its
tokenizer and saw the task for only a few SFT steps.

1. The student's teacher KL on held-out prompts (sampled with fixed seeds) falls to at most half of where it
   started, within the run's bounded number of steps.
2. A run killed with SIGKILL mid-way and resumed with `--resume` ends with the very metrics and weights of the
   uninterrupted run of test 1 (same seeds, constant learning rate: its first steps are the same steps). It asks
   the teacher with `echo` + `logprobs` where test 1 used vLLM's `prompt_logprobs`: both protocols at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.distill.helpers import (
    ENGINE,
    ENGINE_ENV,
    HELD_OUT_PAIRS,
    cli_env,
    distill_config,
    make_student,
    make_teacher,
)

pytestmark = pytest.mark.slow

STEPS = 50  # the bounded number of steps (about 1 s each here)
RESUMED_STEPS = 8  # the killed-and-resumed run: the first 8 of them
SETTINGS: dict[str, Any] = {
    "rollout": {"prompts": 8, "n": 8, "max_tokens": 24, "temperature": 1.0},
    "learning_rate": 2e-3,
    "lr_scheduler": "constant",
    "save_every": 2,
    "save_total_limit": None,
    "eval": {"every": 25},
}
DETERMINISTIC = (
    "step",
    "teacher_kl",
    "loss",
    "tokens",
    "sequence_tokens",
    "grad_norm",
    "mean_completion_tokens",
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("distill")
    return {"root": root, "teacher": make_teacher(root), "student": make_student(root)}


@pytest.fixture(scope="module")
def teacher_url(models: dict[str, Path]) -> Iterator[str]:
    from tracekit.teachers.vllm_server import ManagedVllmServer

    engine = {**ENGINE, "served_model_name": "teacher", "enable_prefix_caching": False}
    with ManagedVllmServer(
        model=str(models["teacher"]),
        engine=engine,
        env=ENGINE_ENV,
        log_path=models["root"] / "teacher.log",
        startup_timeout_s=900,
    ) as url:
        yield url


def _teacher(models: dict[str, Path], url: str, protocol: str = "prompt_logprobs") -> dict[str, Any]:
    return {"model": "teacher", "base_url": url, "tokenizer": str(models["teacher"]), "protocol": protocol}


def _eval(root: Path) -> dict[str, Any]:
    """Held-out KL every 25 steps, and pass@k on a 3-problem benchmark file with tracekit eval's code."""
    bench = root / "toy-bench.jsonl"
    bench.write_text(
        "".join(json.dumps({"problem": f"{a}+{b}?", "answer": str(a + b)}) + "\n" for a, b in HELD_OUT_PAIRS)
    )
    return {
        "every": 25,
        "bench": [f"toy={bench}"],
        "k": [1, 2],
        "n": 2,
        "limit": 3,
        "max_tokens": 24,
        "temperature": 1.0,
    }


def _metrics(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def full_run(models: dict[str, Path], teacher_url: str) -> Path:
    out = models["root"] / "full"
    cfg = distill_config(
        models["root"], student=models["student"], teacher=_teacher(models, teacher_url), out=out,
        max_steps=STEPS, **{**SETTINGS, "eval": _eval(models["root"])},
    )  # fmt: skip
    r = subprocess.run(
        [sys.executable, "-m", "tracekit.cli", "distill", str(cfg)],
        env=cli_env(), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-4000:]
    return out


def test_distill_halves_the_held_out_teacher_kl(full_run: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    rows = _metrics(full_run)
    held = {r["step"]: r["held_out_teacher_kl"] for r in rows if "held_out_teacher_kl" in r}
    assert sorted(held) == [0, 25, 50]  # before the first step, every eval.every, at the end
    assert held[STEPS] <= 0.5 * held[0], held
    evals = [r["eval"]["toy"] for r in rows if "eval" in r]
    assert len(evals) == 2
    assert all(0 <= e["pass@1"] <= e["pass@2"] <= 1 for e in evals), evals
    steps = [r for r in rows if r["step"] >= 1]
    assert [r["step"] for r in steps] == list(range(1, STEPS + 1))
    for r in steps:
        for key in ("teacher_kl", "loss", "tokens", "tokens_per_s", "rollout_s", "scoring_s", "update_s"):
            assert key in r, key
        assert 0 < r["tokens"] <= 64 * 24 and r["tokens_per_s"] > 0
        assert r["rollout_s"] > 0 and r["scoring_s"] > 0 and r["update_s"] > 0
        # the sampler and the trainer hold the same weights at every step (the in-place reload works)
        assert r["sampler_logprob_gap"] < 1e-4
    # the training signal itself went down too
    first, last = steps[:5], steps[-5:]
    assert sum(r["teacher_kl"] for r in last) < 0.6 * sum(r["teacher_kl"] for r in first)

    # the export loads in transformers with the weights of the last checkpoint
    final = AutoModelForCausalLM.from_pretrained(full_run / "final", dtype=torch.float32)
    ckpt = torch.load(full_run / f"checkpoint-{STEPS}" / "model.pt", weights_only=False)
    for name, value in final.state_dict().items():
        assert torch.equal(value, ckpt[f"model.{name}"]), name
    assert json.loads((full_run / "final" / "generation_config.json").read_text())["eos_token_id"]


def test_kill_9_and_resume_continue_exactly(
    models: dict[str, Path], teacher_url: str, full_run: Path
) -> None:
    import torch

    out = models["root"] / "resumed"
    # the teacher asked the OpenAI way (echo + logprobs) here: the same numbers as prompt_logprobs, or the
    # comparison below fails
    cfg = distill_config(
        models["root"], student=models["student"], teacher=_teacher(models, teacher_url, "echo"), out=out,
        max_steps=RESUMED_STEPS, **SETTINGS,
    )  # fmt: skip
    cmd = [sys.executable, "-m", "tracekit.cli", "distill", str(cfg)]
    proc = subprocess.Popen(
        cmd, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 600
        while not (out / "checkpoint-4").is_dir():  # killed after its second checkpoint, mid-step
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:] if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (out / "final").exists()
    r = subprocess.run(cmd + ["--resume"], env=cli_env(), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "resumed from" in r.stdout

    full = {r["step"]: r for r in _metrics(full_run)}
    resumed = _metrics(out)
    assert [r["step"] for r in resumed] == list(range(0, RESUMED_STEPS + 1))  # nothing lost, nothing twice
    for r in resumed:
        for key in DETERMINISTIC:
            if key in r:
                assert r[key] == full[r["step"]][key], (r["step"], key)
    mine = torch.load(out / f"checkpoint-{RESUMED_STEPS}" / "model.pt", weights_only=False)
    theirs = torch.load(full_run / f"checkpoint-{RESUMED_STEPS}" / "model.pt", weights_only=False)
    assert mine.keys() == theirs.keys()
    for name in mine:
        assert torch.equal(mine[name], theirs[name]), name
    opt_a = torch.load(out / f"checkpoint-{RESUMED_STEPS}" / "optimizer.pt", weights_only=False)["state"]
    opt_b = torch.load(full_run / f"checkpoint-{RESUMED_STEPS}" / "optimizer.pt", weights_only=False)["state"]
    for k in opt_a:
        assert torch.equal(opt_a[k]["exp_avg"], opt_b[k]["exp_avg"])


def test_teacher_top_k_from_vllm(models: dict[str, Path], teacher_url: str) -> None:
    """The teacher's k most likely tokens at each completion position, most likely first, consistent with the
    sampled token's own log-probability, and the same sampled-token numbers as without top-k."""
    from transformers import AutoTokenizer

    from tracekit.distill.config import TeacherConfig
    from tracekit.distill.data import render_prompt_ids
    from tracekit.distill.teacher import TeacherScorer

    tok = AutoTokenizer.from_pretrained(models["teacher"])
    prompt = render_prompt_ids(
        messages=[{"role": "user", "content": "9+4?"}], tokenizer=tok, chat_template=None
    )
    completion = tok("<think>\n9+4=13\n</think>\n\n\\boxed{13}<|im_end|>", add_special_tokens=False)[
        "input_ids"
    ]
    cfg = TeacherConfig(model="teacher", base_url=teacher_url, protocol="prompt_logprobs", top_k=4)
    with TeacherScorer(config=cfg, log_dir=models["root"]) as scorer:
        [(lps, tops)] = scorer.score_top_k([(prompt, completion)], k=4)
        assert scorer.score([(prompt, completion)]) == [lps]
    assert len(lps) == len(tops) == len(completion)
    for tok_id, lp, top in zip(completion, lps, tops, strict=True):
        assert len(top) == 4 and [x for _, x in top] == sorted((x for _, x in top), reverse=True)
        if tok_id in dict(top):
            assert dict(top)[tok_id] == lp
        else:
            assert lp <= top[-1][1]
    # the teacher was trained on this very format: its first choice is the given token at most positions
    assert sum(top[0][0] == t for t, top in zip(completion, tops, strict=True)) >= len(completion) // 2
