"""Per-document attention: equal to each document attended alone (every backend, generated layouts), flex's
block lists equal to the ones read off a token mask, and the attention work of a training step equal to the sum
over documents (counted from the kernels that actually ran)."""

from __future__ import annotations

import math
import random

import pytest
import torch
from conftest import build_model, build_tokenizer
from torch.utils._python_dispatch import TorchDispatchMode

from tracekit.train.attention import (
    DocumentLayout,
    document_attention,
    document_kv_blocks,
    use_document_attention,
)
from tracekit.train.data import TokenizedDoc
from tracekit.train.loss import CausalLMLoss
from tracekit.train.packing import collate_documents


def _lengths(rng: random.Random) -> list[int]:
    return [rng.choice([1, 2, rng.randint(3, 40), rng.randint(100, 300)]) for _ in range(rng.randint(1, 7))]


def _oracle(q, k, v, lengths, scale, window):
    """Each document alone, float64, explicit causal (banded) softmax: q [1,H,T,D], k/v [1,Hkv,T,D]."""
    groups = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    out, start = [], 0
    for n in lengths:
        qs, ks, vs = (t[0, :, start : start + n].double() for t in (q, k, v))
        i = torch.arange(n)
        allowed = i[:, None] >= i[None, :]
        if window is not None:
            allowed &= i[:, None] - i[None, :] < window
        s = (qs @ ks.transpose(-1, -2) * scale).masked_fill(~allowed, float("-inf"))
        out.append((s.softmax(-1) @ vs).transpose(0, 1))
        start += n
    return torch.cat(out)[None]


@pytest.mark.parametrize("backend", ["sdpa", "eager", "flex_attention"])
@pytest.mark.parametrize("case", range(6))
def test_document_attention_equals_each_document_alone(backend, case):
    rng = random.Random(case)
    lengths = _lengths(rng)
    heads, kv_heads, dim = rng.choice([(4, 4), (4, 2), (6, 1)]) + (rng.choice([8, 16]),)
    window = rng.choice([None, None, 5]) if backend != "flex_attention" else rng.choice([None, 50])
    g = torch.Generator().manual_seed(case)
    n = sum(lengths)
    grad = backend != "flex_attention"  # PyTorch has no flex backward on CPU
    q = torch.randn(1, heads, n, dim, generator=g).requires_grad_(grad)
    k = torch.randn(1, kv_heads, n, dim, generator=g).requires_grad_(grad)
    v = torch.randn(1, kv_heads, n, dim, generator=g).requires_grad_(grad)
    layout = DocumentLayout.build(lengths=lengths, backend=backend, window=window)
    out, _ = document_attention(None, q, k, v, layout, scaling=dim**-0.5, sliding_window=window)
    ref = _oracle(q.detach(), k.detach(), v.detach(), lengths, dim**-0.5, window)
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-5)
    if grad:
        upstream = torch.randn(out.shape, generator=g)
        got = torch.autograd.grad(out, (q, k, v), upstream)
        qd, kd, vd = (t.detach().double().requires_grad_() for t in (q, k, v))
        want = torch.autograd.grad(
            _oracle(qd, kd, vd, lengths, dim**-0.5, window), (qd, kd, vd), upstream.double()
        )
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", range(40))
def test_flex_block_lists_equal_the_blocks_of_the_token_mask(case):
    rng = random.Random(case)
    block = rng.choice([4, 8, 16])
    lengths = [rng.randint(1, 5 * block) for _ in range(rng.randint(1, 6))]
    window = rng.choice([None, None, rng.randint(1, 3 * block)])
    n = sum(lengths)
    doc = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    i = torch.arange(n)
    mask = (doc[:, None] == doc[None, :]) & (i[:, None] >= i[None, :])
    if window is not None:
        mask &= i[:, None] - i[None, :] < window
    nb = math.ceil(n / block)
    padded = torch.zeros(nb * block, nb * block, dtype=torch.bool)
    padded[:n, :n] = mask
    tiles = padded.reshape(nb, block, nb, block).permute(0, 2, 1, 3)
    valid = torch.zeros(nb * block, dtype=torch.bool)
    valid[:n] = True
    vtiles = (valid[:, None] & valid[None, :]).reshape(nb, block, nb, block).permute(0, 2, 1, 3)
    any_pair = tiles.any(-1).any(-1)
    every_pair = (tiles | ~vtiles).all(-1).all(-1) & vtiles.all(-1).all(-1)

    kv_num, kv_idx, full_num, full_idx = document_kv_blocks(lengths=lengths, block=block, window=window)
    for row in range(nb):
        partial = set(kv_idx[0, 0, row, : kv_num[0, 0, row]].tolist())
        full = set(full_idx[0, 0, row, : full_num[0, 0, row]].tolist())
        assert full == {j for j in range(nb) if every_pair[row, j]}, (row, lengths, window)
        assert partial == {j for j in range(nb) if any_pair[row, j] and not every_pair[row, j]}, (
            row,
            lengths,
        )
    # the work flex does: the blocks it visits; never more than each document's own causal blocks
    visited = int(kv_num.sum() + full_num.sum())
    per_doc = sum((math.ceil(L / block) + 1) * (math.ceil(L / block) + 2) // 2 for L in lengths)
    assert visited <= per_doc


class AttentionWork(TorchDispatchMode):
    """Records every attention kernel that runs: (name, query length, key length, heads)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int, int, int]] = []
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.__name__
        if "attention" in name and isinstance(args[0], torch.Tensor):
            # backward ops take grad_out first; both hold [B, H, L, D] query-like and key-like tensors
            q, k = (args[1], args[2]) if "backward" in name else (args[0], args[1])
            self.calls.append((name, q.shape[-2], k.shape[-2], q.shape[0] * q.shape[1]))
        for t in out if isinstance(out, tuple | list) else [out]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("checkpointing", [False, True])
def test_attention_work_of_a_training_step_is_the_sum_over_documents(checkpointing):
    tok = build_tokenizer("qwen2_5")
    layers, heads = 2, 2
    model = build_model(tok, hidden=32, heads=heads, layers=layers)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    use_document_attention(model)
    rng = random.Random(7)
    lengths = [rng.randint(20, 200) for _ in range(9)]
    docs = [
        TokenizedDoc(input_ids=[rng.randrange(len(tok)) for _ in range(n)], labels=[1] * n, row=i)
        for i, n in enumerate(lengths)
    ]
    mb = collate_documents(docs, backend="sdpa")
    with AttentionWork() as work:
        CausalLMLoss(model)(mb).backward()
    fwd = [c for c in work.calls if "backward" not in c[0]]
    bwd = [c for c in work.calls if "backward" in c[0]]
    passes = 2 if checkpointing else 1  # a checkpointed layer runs its forward again in the backward
    want = sorted([(n, n, heads) for n in lengths] * layers)
    assert sorted(c[1:] for c in fwd) == sorted(want * passes)
    assert sorted(c[1:] for c in bwd) == want
    scores = sum(lq * lk * h for _, lq, lk, h in work.calls)
    assert scores == (passes + 1) * layers * heads * sum(n * n for n in lengths)
    total = sum(lengths)
    assert scores < (passes + 1) * layers * heads * total * total / 4  # the merged row's square: far more
    assert work.largest < total * total  # no (tokens x tokens) tensor anywhere in the step
