"""`tracekit distill` under torchrun with 2 CPU ranks (gloo, FSDP2) equals the one-process run on the same batch.

Rank 0 samples the whole step with the student's vLLM (its engine core in a child process under torchrun, in the
trainer's process for one rank) and asks the teacher; both runs start from the same weights and sample with the
same per-request seeds, so their first rollouts are identical, and since the two updates agree to float noise so
do the later ones (checked: the same completion tokens in every step). Each rank then trains on its share of the
packed completions, and the gradient reduce-scatter plus the `* world` factor make the update the one-process
one: teacher_kl, loss and grad norm per step and the exported weights must match within float tolerance. A
torchrun `--resume` from the sharded step-2 checkpoint must then end with the same weights bit for bit.

The teacher is a scripted OpenAI-compatible endpoint (tests/chat_server.py) answering `echo` + `logprobs` with a
fixed function of the tokens, so the two runs see the very same teacher numbers without a second vLLM engine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chat_server import ChatServer
from tests.distill.helpers import cli_env, distill_config
from tests.teachers.tiny_model import save_tiny_model

pytestmark = pytest.mark.slow

SETTINGS: dict[str, Any] = {
    "max_steps": 3,
    "held_out": 0,
    "rollout": {"prompts": 5, "n": 3, "max_tokens": 12, "temperature": 1.0},
    # ~3 samples of ~31 tokens per packed unit: about 5 units a step, so both ranks train on real samples and
    # one of them also runs the empty stand-in (with one unit, rank 1 would only ever run the stand-in)
    "max_length": 100,
    "learning_rate": 5e-3,
    "lr_scheduler": "constant",
    "adam_epsilon": 1e-4,  # keeps Adam from amplifying float noise on near-zero gradients
    "baseline": "none",  # the loss is then kl_coef x the mean cost: a number that could differ
    "save_every": 2,
    "save_total_limit": None,
}


def teacher_logprob(seq: list[int], p: int) -> float:
    """The scripted teacher's log-probability of token p of `seq` (a fixed function of it and the one before)."""
    return -3.0 - 0.5 * ((seq[p] * 7 + seq[p - 1]) % 11)


def _echo(body: dict[str, Any]) -> dict[str, Any]:
    choices = [
        {"index": i, "text": "", "logprobs": {"token_logprobs": [None] + [teacher_logprob(seq, p) for p in range(1, len(seq))]}}
        for i, seq in enumerate(body["prompt"])
    ]  # fmt: skip
    return {"raw": json.dumps({"choices": choices}).encode()}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("distill-dist")
    student = save_tiny_model(root / "student", seed=2)
    with ChatServer(_echo) as url:
        teacher = {"model": "teacher", "base_url": url, "tokenizer": str(student), "protocol": "echo"}
        yield {"root": root, "student": student, "teacher": teacher}


def _run(cmd: list[str], cfg: Path, *extra: str) -> str:
    r = subprocess.run(
        [*cmd, "-m", "tracekit.cli", "distill", str(cfg), *extra],
        env={k: v for k, v in cli_env().items() if k != "CUDA_VISIBLE_DEVICES"},
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
    return r.stdout


def _metrics(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


@pytest.fixture(scope="module")
def runs(setup: dict[str, Any]) -> dict[str, Any]:
    """The one-process run and the 2-rank FSDP2 run of the same config (about 20 s and 50 s here)."""
    root, student = setup["root"], setup["student"]
    single, multi = root / "single", root / "fsdp2"
    cfg_1 = distill_config(root, student=student, teacher=setup["teacher"], out=single, **SETTINGS)
    cfg_2 = distill_config(
        root, student=student, teacher=setup["teacher"], out=multi, distributed="fsdp2", **SETTINGS
    )
    _run([sys.executable], cfg_1)
    assert "2 ranks" in _run(TORCHRUN, cfg_2)
    return {"single": single, "multi": multi, "cfg": cfg_2, "student": student}


def test_two_ranks_equal_one_process(runs: dict[str, Any]) -> None:
    import torch
    from safetensors.torch import load_file

    single, multi = runs["single"], runs["multi"]
    a, b = _metrics(single), _metrics(multi)
    assert [r["step"] for r in b] == [1, 2, 3]
    # at least 3 packed units a step (max_length 100): both ranks trained on samples of their own
    assert all(r["sequence_tokens"] > 2 * SETTINGS["max_length"] for r in a)
    # the same rollouts in every step
    for key in ("tokens", "sequence_tokens", "mean_completion_tokens"):
        assert [r[key] for r in b] == [r[key] for r in a], key
    assert [r["teacher_kl"] for r in b] == pytest.approx([r["teacher_kl"] for r in a], rel=1e-6)
    for key in ("loss", "grad_norm"):
        assert [r[key] for r in b] == pytest.approx([r[key] for r in a], rel=1e-4), key
    # rank 0's sampler got the gathered weights after every update (its log-probs are the trainer's)
    assert all(r["sampler_logprob_gap"] < 1e-4 for r in b)
    assert not (multi / "sampler-weights").exists()

    wa, wb = (
        load_file(single / "final" / "model.safetensors"),
        load_file(multi / "final" / "model.safetensors"),
    )
    start = load_file(runs["student"] / "model.safetensors")
    assert wa.keys() == wb.keys()
    assert any(not torch.equal(wa[k], start[k]) for k in wa)  # it trained
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-4, atol=2e-5, msg=k)  # << one update (lr 5e-3)


def test_two_ranks_resume_from_the_sharded_checkpoint(runs: dict[str, Any]) -> None:
    """Killed after step 2 (only checkpoint-2 left): a torchrun --resume re-shards it and ends bit for bit where
    the uninterrupted run did (about 50 s here)."""
    import torch
    from safetensors.torch import load_file

    multi = runs["multi"]
    before = _metrics(multi)
    done = load_file(multi / "final" / "model.safetensors")
    shutil.rmtree(multi / "checkpoint-3")
    shutil.rmtree(multi / "final")
    assert "resumed from" in _run(TORCHRUN, runs["cfg"], "--resume")
    resumed = load_file(multi / "final" / "model.safetensors")
    for k in done:
        assert torch.equal(resumed[k], done[k]), k
    after = _metrics(multi)
    assert [r["step"] for r in after] == [1, 2, 3]
    assert [(r["loss"], r["teacher_kl"]) for r in after] == [(r["loss"], r["teacher_kl"]) for r in before]
