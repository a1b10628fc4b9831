"""The training loop: accumulation equivalence, exact resume, metrics, config errors, run_train."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from tracekit.train.cli import run_train
from tracekit.train.config import TrainConfig
from tracekit.train.trainer import SFTTrainer, lr_lambda


def _cfg(model: Path, data: Path, out: Path, **kw) -> TrainConfig:
    base = {"max_length": 512, "learning_rate": 5e-3, "warmup_ratio": 0.0, "seed": 3}
    return TrainConfig(model=str(model), data=str(data), output_dir=out, **{**base, **kw})


def _weights(final: Path):
    return load_file(final / "model.safetensors")


@pytest.mark.slow
@pytest.mark.parametrize("packing", [False, True])
def test_accumulation_1x8_equals_8x1(tiny_model_dir, tiny_dataset_dir, tmp_path, packing):
    # adam_epsilon damps Adam's g/sqrt(v) on near-zero gradients, which turns 1e-9 float noise into visible steps.
    kw = {"packing": packing, "max_steps": 2, "max_length": 160 if packing else 512, "adam_epsilon": 1e-4}
    a = SFTTrainer(
        config=_cfg(tiny_model_dir, tiny_dataset_dir, tmp_path / "a", per_device_batch_size=8, **kw)
    ).train()
    b = SFTTrainer(
        config=_cfg(tiny_model_dir, tiny_dataset_dir, tmp_path / "b", gradient_accumulation_steps=8, **kw)
    ).train()
    wa, wb = _weights(a), _weights(b)
    import torch

    start = _weights_from(tiny_model_dir)
    assert any(not torch.equal(wa[k], start[k]) for k in wa)  # it trained
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=2e-5)  # << one update (lr 5e-3)
    la = [json.loads(x)["loss"] for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["loss"] for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert la == pytest.approx(lb, rel=1e-5)


def _weights_from(model_dir: Path):
    return load_file(model_dir / "model.safetensors")


@pytest.mark.slow
def test_resume_continues_exactly(tiny_model_dir, tiny_dataset_dir, tmp_path):
    out = tmp_path / "run"
    cfg = _cfg(
        tiny_model_dir,
        tiny_dataset_dir,
        out,
        max_steps=6,
        save_every=3,
        save_total_limit=None,
        gradient_accumulation_steps=2,
        weight_decay=0.1,
    )
    final = SFTTrainer(config=cfg).train()
    uninterrupted = _weights(final)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [1, 2, 3, 4, 5, 6]
    # Simulate a crash after step 3: only checkpoint-3 survives.
    shutil.rmtree(out / "checkpoint-6")
    shutil.rmtree(final)
    resumed = _weights(SFTTrainer(config=cfg).train(resume=True))
    import torch

    for k in uninterrupted:
        assert torch.equal(uninterrupted[k], resumed[k]), k
    after = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["loss"] for x in after] == [json.loads(x)["loss"] for x in lines]


@pytest.mark.slow
def test_run_train_writes_metrics_eval_and_export(tiny_model_dir, tiny_dataset_dir, tmp_path, capsys):
    cfg_file = tmp_path / "train.yaml"
    cfg_file.write_text(
        yaml.safe_dump(
            {
                "model": str(tiny_model_dir),
                "data": str(tiny_dataset_dir.parent),
                "output_dir": str(tmp_path / "o"),
                "max_length": 512,
                "epochs": 2,
                "eval_split": "test",
                "per_device_batch_size": 2,
            }
        )
    )
    final = run_train(cfg_file, overrides={"learning_rate": 1e-3})
    assert final == tmp_path / "o" / "final"
    recs = [json.loads(x) for x in (tmp_path / "o" / "metrics.jsonl").read_text().splitlines()]
    assert len(recs) >= 2
    for key in (
        "step",
        "loss",
        "lr",
        "grad_norm",
        "tokens_per_s",
        "mfu",
        "trainable_fraction",
        "padding_fraction",
    ):
        assert key in recs[0]
    assert recs[0]["padding_fraction"] == 0.0 and 0 < recs[0]["trainable_fraction"] < 1
    assert recs[-1]["eval_loss"] > 0
    assert recs[0]["lr"] < 1e-3 or recs[0]["lr"] == pytest.approx(1e-3)
    printed = capsys.readouterr().out
    assert "[TRAIN><think>" in printed and "<|im_end|><TRAIN]" in printed
    gen = json.loads((final / "generation_config.json").read_text())
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(final)
    eos = gen["eos_token_id"]
    assert tok.convert_tokens_to_ids("<|im_end|>") in (eos if isinstance(eos, list) else [eos])
    assert tok.chat_template and (final / "model.safetensors").exists()


def test_bad_config_names_the_key(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("model: m\ndata: d\noutput_dir: o\nlearning_rat: 1e-5\nwarmup_ratio: 2\n")
    with pytest.raises(ValueError) as err:
        TrainConfig.from_yaml(f)
    assert "learning_rat: unknown key" in str(err.value)
    assert "warmup_ratio" in str(err.value)


def test_presets_are_valid():
    root = Path(__file__).resolve().parents[2] / "pipelines"
    for name in ("train-r1-distill-7b.yaml", "train-s1.yaml", "train-tiny-cpu.yaml"):
        TrainConfig.from_yaml(root / name)
    r1 = TrainConfig.from_yaml(root / "train-r1-distill-7b.yaml")
    assert (r1.learning_rate, r1.min_lr_ratio, r1.warmup_ratio, r1.epochs, r1.max_length) == (
        4e-5,
        0.1,
        0.03,
        5,
        32768,
    )


def test_cosine_schedule_warms_up_and_ends_at_min_ratio():
    lrs = [lr_lambda(step=s, total=100, warmup=10, kind="cosine", min_ratio=0.1) for s in range(101)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[100] == pytest.approx(0.1) and all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))


def test_gradient_checkpointing_defaults_on_from_8k_tokens_per_micro_batch():
    base = {"model": "m", "data": "d", "output_dir": "o"}
    assert TrainConfig(**base, max_length=8192).checkpointing
    assert not TrainConfig(**base, max_length=4096).checkpointing
    assert TrainConfig(**base, max_length=4096, per_device_batch_size=2).checkpointing
    assert not TrainConfig(**base, max_length=32768, gradient_checkpointing=False).checkpointing
    assert TrainConfig(**base, max_length=512, gradient_checkpointing=True).checkpointing


def _fake_liger(monkeypatch, calls):
    import importlib.machinery
    import sys
    import types

    pkg = types.ModuleType("liger_kernel")
    pkg.__spec__ = importlib.machinery.ModuleSpec("liger_kernel", None)
    sub = types.ModuleType("liger_kernel.transformers")
    sub.__spec__ = importlib.machinery.ModuleSpec("liger_kernel.transformers", None)
    sub._apply_liger_kernel_to_instance = lambda **kw: calls.append(kw)
    monkeypatch.setitem(sys.modules, "liger_kernel", pkg)
    monkeypatch.setitem(sys.modules, "liger_kernel.transformers", sub)


@pytest.mark.slow
def test_liger_kernels_wiring(tiny_model_dir, tiny_dataset_dir, tmp_path, monkeypatch, capsys):
    # Liger's Triton kernels need a GPU; this checks what the trainer asks of the package when it is there.
    with pytest.raises(
        ValueError, match="liger_kernels: true, but the liger-kernel package is not installed"
    ):
        SFTTrainer(
            config=_cfg(tiny_model_dir, tiny_dataset_dir, tmp_path / "a", max_steps=1, liger_kernels=True)
        ).train()
    calls: list[dict] = []
    _fake_liger(monkeypatch, calls)
    trainer = SFTTrainer(
        config=_cfg(tiny_model_dir, tiny_dataset_dir, tmp_path / "b", max_steps=1, liger_kernels=True)
    )
    trainer.train()
    assert len(calls) == 1 and calls[0]["model"] is trainer.hf_model
    assert {k: v for k, v in calls[0].items() if k != "model"} == {
        "rope": True,
        "rms_norm": True,
        "swiglu": True,
        "cross_entropy": False,
        "fused_linear_cross_entropy": False,
    }  # norms/MLP/RoPE only: the loss stays tracekit's chunked lm-head loss
    assert "Liger on" in capsys.readouterr().out
    SFTTrainer(config=_cfg(tiny_model_dir, tiny_dataset_dir, tmp_path / "c", max_steps=1)).train()
    assert len(calls) == 1  # auto: installed but no GPU here -> not applied


@pytest.mark.slow
def test_compiled_blocks_and_loss_train_like_eager(tiny_model_dir, tiny_dataset_dir, tmp_path):
    kw = {"max_steps": 2, "max_length": 160, "per_device_batch_size": 2, "gradient_checkpointing": True}
    SFTTrainer(config=_cfg(tiny_model_dir, tiny_dataset_dir, tmp_path / "e", **kw)).train()
    SFTTrainer(config=_cfg(tiny_model_dir, tiny_dataset_dir, tmp_path / "c", compile=True, **kw)).train()
    eager = [json.loads(x)["loss"] for x in (tmp_path / "e" / "metrics.jsonl").read_text().splitlines()]
    compiled = [json.loads(x)["loss"] for x in (tmp_path / "c" / "metrics.jsonl").read_text().splitlines()]
    assert compiled == pytest.approx(eager, rel=1e-4)
