"""Memory plan: parameters counted exactly, the per-layer activation fit against tensors actually saved for
backward, the printed plan, and the refusal (exit 2) of a config that cannot fit, naming a setting that fixes it."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import build_model, build_tokenizer
from transformers import AutoConfig

from tracekit.train.attention import DocumentLayout, use_document_attention
from tracekit.train.memory import GIB, MemoryPlanError, ModelShape, check_fits, plan_memory


def _qwen2_config(rng: random.Random):
    from transformers import Qwen2Config

    heads = rng.choice([2, 4, 8])
    head_dim = rng.choice([32, 64])
    return Qwen2Config(
        vocab_size=rng.randint(500, 3000),
        hidden_size=heads * head_dim * rng.choice([1, 2]),
        intermediate_size=rng.choice([256, 768, 1536]),
        num_hidden_layers=rng.randint(1, 3),
        num_attention_heads=heads,
        num_key_value_heads=rng.choice([1, heads]),
        head_dim=head_dim,
        tie_word_embeddings=rng.random() < 0.5,
    )


def _saved_bytes_per_token(config, tokens: int) -> float:
    """Oracle: bytes of the tensors one decoder layer saves for backward under bf16 autocast, per token
    (two lengths, so the bf16 copies of the weights, which do not grow with tokens, cancel out)."""
    from transformers import Qwen2ForCausalLM

    model = Qwen2ForCausalLM(config)
    use_document_attention(model)  # the attention the trainer runs
    layer = model.model.layers[0]
    sizes = []
    for n in (tokens, 2 * tokens):
        storages: dict[int, int] = {}

        def pack(t, storages=storages):
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        x = torch.randn(1, n, config.hidden_size, requires_grad=True)
        pos = torch.arange(n)[None]
        rope = model.model.rotary_emb(x, pos)
        skip = {x.untyped_storage().data_ptr(), *(r.untyped_storage().data_ptr() for r in rope)}
        skip |= {p.untyped_storage().data_ptr() for p in layer.parameters()}
        with (
            torch.autocast("cpu", dtype=torch.bfloat16),
            torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
        ):
            layout = DocumentLayout.build(lengths=[n // 2, n - n // 2], backend="sdpa")
            layer(x, attention_mask=layout, position_embeddings=rope, position_ids=pos)
        sizes.append(sum(v for k, v in storages.items() if k not in skip))
    return (sizes[1] - sizes[0]) / tokens


@pytest.mark.parametrize("case", range(5))
def test_shape_counts_parameters_and_layer_bytes_match_saved_tensors(case):
    rng = random.Random(case)
    config = _qwen2_config(rng)
    shape = ModelShape.from_config(config)
    from transformers import Qwen2ForCausalLM

    assert shape.params == sum(p.numel() for p in Qwen2ForCausalLM(config).parameters())
    measured = _saved_bytes_per_token(config, 128)
    assert measured * 0.9 <= shape.layer_bytes_per_token(bf16=True) <= measured * 1.25, measured


def _shape(rng: random.Random) -> ModelShape:
    heads = rng.choice([8, 16, 32])
    hidden = heads * 128
    return ModelShape(
        params=rng.randint(1, 70) * 10**9,
        layers=rng.randint(16, 80),
        hidden=hidden,
        intermediate=int(hidden * rng.uniform(2.5, 5.5)),
        q_dim=hidden,
        kv_dim=rng.choice([1, 2, 8]) * 128,
        heads=heads,
        vocab=rng.choice([32000, 128256, 151936]),
        tied=rng.random() < 0.5,
    )


@pytest.mark.parametrize("case", range(60))
def test_every_suggested_fix_makes_the_plan_fit(case):
    rng = random.Random(case)
    shape = _shape(rng)
    kw = {
        "shape": shape,
        "max_length": rng.choice([4096, 16384, 32768]),
        "batch": rng.randint(1, 4),
        "checkpointing": rng.random() < 0.5,
        "bf16": True,
        "chunk": 1024,
        "world": rng.choice([1, 8]),
        "budget": rng.choice([24, 80, 141]) * GIB,
        "where": "a test GPU",
    }
    kw["sharded"] = kw["world"] > 1
    try:
        plan = check_fits(**kw)
    except MemoryPlanError as err:
        msg = str(err)
        assert "expected peak" in msg and "To make it fit" in msg
        fixed = dict(kw)
        if "gradient_checkpointing: true" in msg:
            fixed["checkpointing"] = True
        if "lower per_device_batch_size to " in msg:
            fixed["batch"] = int(msg.split("lower per_device_batch_size to ")[1].split(",")[0])
        if "lower max_length to " in msg:
            fixed["max_length"] = int(msg.split("lower max_length to ")[1].split()[0])
            fixed["batch"] = 1
        if fixed != kw:
            check_fits(**fixed)  # the named change alone makes it fit
        else:
            assert "GPUs" in msg  # nothing on one device helps: more (or sharded) GPUs
    else:
        assert plan.peak <= kw["budget"]


def test_plan_grows_with_tokens_and_checkpointing_bounds_it():
    shape = _shape(random.Random(3))
    plans = [
        plan_memory(shape=shape, tokens=t, checkpointing=c, bf16=True, chunk=1024)
        for t in (4096, 8192)
        for c in (False, True)
    ]
    off4, on4, off8, on8 = plans
    assert off8.peak > off4.peak and on8.peak >= on4.peak
    assert (
        on8.at_loss < off8.at_loss and on8.peak <= off8.peak + on8.recompute
    )  # at most one layer's recompute
    assert off8.at_loss - off4.at_loss == pytest.approx(
        shape.layers * 4096 * shape.layer_bytes_per_token(bf16=True), rel=0.01
    )


def _write_config(tmp_path, model, data, **kw):
    f = tmp_path / "train.yaml"
    f.write_text(
        yaml.safe_dump(
            {"model": str(model), "data": str(data), "output_dir": str(tmp_path / "o"), "max_steps": 1, **kw}
        )
    )
    return f


@pytest.mark.slow
def test_train_refuses_a_config_that_cannot_fit_with_exit_2(tmp_path, tiny_dataset_dir):
    tok = build_tokenizer("qwen2_5")
    model_dir = tmp_path / "m"
    build_model(tok, hidden=64, layers=2).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    shape = ModelShape.from_config(AutoConfig.from_pretrained(model_dir))
    on, off = (
        plan_memory(shape=shape, tokens=4 * 4096, checkpointing=c, bf16=False, chunk=1024)
        for c in (True, False)
    )
    budget = (on.peak + off.peak) / 2 / 0.92 / GIB  # fits with gradient checkpointing only
    cfg = _write_config(
        tmp_path,
        model_dir,
        tiny_dataset_dir,
        max_length=4096,
        per_device_batch_size=4,
        gradient_checkpointing=False,
        memory_budget_gib=budget,
    )
    proc = subprocess.run(
        [sys.executable, "-m", "tracekit.cli", "train", str(cfg)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "does not fit" in proc.stderr and "expected peak" in proc.stderr
    assert "To make it fit: set gradient_checkpointing: true" in proc.stderr
    assert not (tmp_path / "o" / "metrics.jsonl").exists()  # refused before any work

    ok = _write_config(tmp_path, model_dir, tiny_dataset_dir, max_length=256, memory_budget_gib=4)
    proc = subprocess.run(
        [sys.executable, "-m", "tracekit.cli", "train", str(ok)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "memory plan per device" in proc.stdout and "expected peak" in proc.stdout


def _qwen25_config(size: str):
    """Published Qwen2.5 shapes (config only; nothing downloaded)."""
    from transformers import Qwen2Config

    hidden, inter, layers, heads, kv = {"7b": (3584, 18944, 28, 28, 4), "32b": (5120, 27648, 64, 40, 8)}[size]
    return Qwen2Config(
        vocab_size=152064,
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        tie_word_embeddings=False,
    )


def test_presets_fit_the_gpus_their_comments_name():
    from pathlib import Path

    from tracekit.train.config import TrainConfig
    from tracekit.train.memory import plan_for_config

    pipelines = Path(__file__).resolve().parents[2] / "pipelines"
    r1 = TrainConfig.from_yaml(pipelines / "train-r1-distill-7b.yaml")
    kw = {"model_config": _qwen25_config("7b"), "cuda": True, "budget": 80 * GIB, "where": "an 80 GB GPU"}
    plan = plan_for_config(config=r1, world=8, **kw)  # 8 x 80 GB, 32K tokens, global batch 128
    assert plan.peak < 0.92 * 80 * GIB and plan.checkpointing and plan.sharding > 0
    with pytest.raises(MemoryPlanError, match="set gradient_checkpointing: true"):
        plan_for_config(config=r1.model_copy(update={"gradient_checkpointing": False}), world=8, **kw)
    s1 = TrainConfig.from_yaml(pipelines / "train-s1.yaml")
    kw["model_config"] = _qwen25_config("32b")
    plan_for_config(config=s1, world=16, **kw)  # 2 nodes of 8 x 80 GB
    with pytest.raises(MemoryPlanError, match="more GPUs"):
        plan_for_config(config=s1, world=8, **kw)


@pytest.mark.slow
def test_plan_command_prints_the_plan_or_refuses(tmp_path, tiny_dataset_dir):
    tok = build_tokenizer("qwen2_5")
    model_dir = tmp_path / "m"
    build_model(tok, hidden=64, layers=2).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    cfg = _write_config(tmp_path, model_dir, tiny_dataset_dir, max_length=4096, gradient_checkpointing=True)
    cmd = [sys.executable, "-m", "tracekit.cli", "train", str(cfg), "--plan", "--world-size", "2"]
    proc = subprocess.run([*cmd, "--set", "memory_budget_gib=4"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "expected peak" in proc.stdout and "(2 GPUs)" in proc.stdout
    assert not (tmp_path / "o").exists()  # a plan trains nothing
    proc = subprocess.run(
        [*cmd, "--set", "memory_budget_gib=0.001"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2 and "does not fit" in proc.stderr and "Traceback" not in proc.stderr
