"""GPU-only checks (skipped without CUDA): what the CPU tests can only approximate.

- the step loop makes no synchronising CUDA call: `torch.cuda.set_sync_debug_mode("error")` around each step
  (the CPU test counts the same ops with a dispatch mode);
- every per-document kernel (sdpa, flex_attention compiled, flash-attn when installed) gives each document's
  own attention, with gradients, in bf16.
"""

from __future__ import annotations

import importlib.util
import random

import pytest
import torch

from tracekit.train.attention import DocumentLayout, document_attention
from tracekit.train.config import TrainConfig
from tracekit.train.trainer import SFTTrainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

BACKENDS = ["sdpa", "flex_attention"] + [
    name
    for name, module in (("flash_attention_2", "flash_attn"), ("flash_attention_3", "flash_attn_interface"))
    if importlib.util.find_spec(module) is not None
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_loop_makes_no_synchronising_cuda_call(
    backend, tiny_model_dir, tiny_dataset_dir, tmp_path, monkeypatch
):
    step_fn = SFTTrainer._train_step

    def strict_step(self, step, batches):
        torch.cuda.set_sync_debug_mode("error")
        try:
            return step_fn(self, step, batches)
        finally:
            torch.cuda.set_sync_debug_mode("default")

    monkeypatch.setattr(SFTTrainer, "_train_step", strict_step)
    cfg = TrainConfig(
        model=str(tiny_model_dir),
        data=str(tiny_dataset_dir),
        output_dir=tmp_path / "o",
        max_length=160,
        per_device_batch_size=2,
        gradient_accumulation_steps=2,
        max_steps=4,
        logging_every=2,
        bf16=True,
        gradient_checkpointing=True,
        attn_implementation=backend,
    )
    SFTTrainer(config=cfg).train()


@pytest.mark.parametrize("backend", BACKENDS)
def test_document_attention_kernels_on_cuda(backend):
    rng = random.Random(0)
    lengths = [rng.randint(1, 700) for _ in range(6)]
    n, heads, kv_heads, dim = sum(lengths), 8, 2, 64
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (
        torch.randn(1, h, n, dim, device="cuda", generator=g, dtype=torch.bfloat16).requires_grad_()
        for h in (heads, kv_heads, kv_heads)
    )
    layout = DocumentLayout.build(lengths=lengths, backend=backend).to(torch.device("cuda"))
    out, _ = document_attention(None, q, k, v, layout, scaling=dim**-0.5)
    ref_layout = DocumentLayout.build(lengths=lengths, backend="eager").to(torch.device("cuda"))
    q32, k32, v32 = (t.detach().float().requires_grad_() for t in (q, k, v))
    ref, _ = document_attention(None, q32, k32, v32, ref_layout, scaling=dim**-0.5)
    assert float((out.float() - ref).norm() / ref.norm()) < 1e-2
    up = torch.randn(out.shape, device="cuda", generator=g, dtype=torch.bfloat16)
    got = torch.autograd.grad(out, (q, k, v), up)
    want = torch.autograd.grad(ref, (q32, k32, v32), up.float())
    for a, b in zip(got, want, strict=True):
        assert float((a.float() - b).norm() / b.norm()) < 2e-2
