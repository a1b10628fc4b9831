"""Loss of a packed micro-batch == each document alone through the stock model; chunked lm-head loss == full
logits; and == TRL SFTTrainer's loss on the same batch."""

from __future__ import annotations

import copy
import random

import pytest
import torch
import torch.nn.functional as F
from conftest import build_model, build_tokenizer, make_traces

from tracekit.train.attention import use_document_attention
from tracekit.train.data import IGNORE_INDEX, tokenize_rows
from tracekit.train.loss import CausalLMLoss, chunked_lm_head_loss
from tracekit.train.packing import collate_documents, pack_best_fit_decreasing


def _docs(n=6, seed=0):
    tok = build_tokenizer("qwen2_5")
    rows = make_traces(n)
    rng = random.Random(seed)
    for r in rows:  # documents of different lengths
        r["messages"][1]["content"] += " and so on" * rng.randint(0, 12)
    return tok, tokenize_rows(rows=rows, tokenizer=tok, max_length=1024)[0]


def _stock_loss(model, docs):
    """Oracle: the unmodified model (transformers' own sdpa), one document at a time, full logits."""
    total = torch.zeros(())
    for d in docs:
        logits = model(input_ids=torch.tensor([d.input_ids])).logits[0].float()
        total = total + F.cross_entropy(
            logits, torch.tensor(d.labels), ignore_index=IGNORE_INDEX, reduction="sum"
        )
    return total


def _module(tok, backend_model=None, chunk=64):
    model = backend_model or build_model(tok, init=0.3)
    stock = copy.deepcopy(model)
    use_document_attention(model)
    return CausalLMLoss(model, chunk_size=chunk), stock  # chunk 64: several lm-head chunks


def test_best_fit_decreasing_fills_bins_and_keeps_every_item():
    lengths = [9, 7, 6, 5, 4, 3, 2, 2, 1, 1]
    bins = pack_best_fit_decreasing(lengths=lengths, capacity=10)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 10 for b in bins)
    assert len(bins) == 4  # 40 tokens in bins of 10: optimal
    with pytest.raises(ValueError):
        pack_best_fit_decreasing(lengths=[11], capacity=10)


@pytest.mark.parametrize("backend", ["sdpa", "eager"])
@pytest.mark.parametrize("seed", [0, 1])
def test_packed_loss_and_gradients_equal_each_document_alone(backend, seed):
    tok, docs = _docs(seed=seed)
    module, stock = _module(tok)
    loss_p = module(collate_documents(docs, backend=backend))
    loss_p.backward()
    grads_p = {n: p.grad.clone() for n, p in module.model.named_parameters()}

    loss_s = _stock_loss(stock, docs)
    loss_s.backward()
    grads_s = dict(stock.named_parameters())
    torch.testing.assert_close(loss_p, loss_s, rtol=1e-5, atol=1e-5)
    for name, gp in grads_p.items():
        gs = grads_s[name].grad
        torch.testing.assert_close(gp, gs, rtol=1e-3, atol=1e-5 * float(gs.abs().max()), msg=name)


@pytest.mark.parametrize("seed", [0, 1])
def test_flex_attention_packed_loss_equals_each_document_alone(seed):
    # PyTorch runs flex_attention's forward on CPU (uncompiled), not its backward: the loss is checked here.
    tok, docs = _docs(seed=seed)
    module, stock = _module(tok)
    with torch.no_grad():
        torch.testing.assert_close(
            module(collate_documents(docs, backend="flex_attention")),
            _stock_loss(stock, docs),
            rtol=1e-5,
            atol=1e-5,
        )


def test_documents_attending_to_each_other_would_change_the_loss():
    # Guards the tests above: with one layout spanning every document the loss moves far outside their tolerance.
    tok, docs = _docs()
    module, _ = _module(tok)
    packed = collate_documents(docs)
    leaky = collate_documents(docs)
    leaky.layout = collate_documents(
        [type(docs[0])(input_ids=packed.input_ids[0].tolist(), labels=packed.labels[0].tolist(), row=0)]
    ).layout
    with torch.no_grad():
        a, b = module(packed), module(leaky)
    assert (a - b).abs() > 100 * 1e-5 * a.abs()


@pytest.mark.parametrize("case", range(8))
def test_chunked_lm_head_loss_equals_full_logits(case):
    rng = random.Random(case)
    n, vocab, hidden = rng.randint(1, 70), rng.randint(5, 300), rng.randint(2, 24)
    chunk = rng.choice([1, 3, 16, 64, 1000])
    softcap = rng.choice([None, 5.0])
    g = torch.Generator().manual_seed(case)
    h = torch.randn(n, hidden, generator=g, dtype=torch.float64).float().requires_grad_()
    w = (torch.randn(vocab, hidden, generator=g) * 2).requires_grad_()
    y = torch.randint(0, vocab, (n,), generator=g)
    loss = chunked_lm_head_loss(hidden=h, weight=w, targets=y, chunk_size=chunk, softcap=softcap)
    (loss * 0.37).backward()  # an upstream gradient scale must reach both gradients

    h64, w64 = h.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    z = h64 @ w64.t()
    if softcap:
        z = torch.tanh(z / softcap) * softcap
    ref = F.cross_entropy(z, y, reduction="sum")
    (ref * 0.37).backward()
    torch.testing.assert_close(loss.double(), ref, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(h.grad.double(), h64.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(w.grad.double(), w64.grad, rtol=1e-4, atol=1e-5)


def test_chunked_lm_head_loss_under_bf16_autocast_matches_the_autocast_reference():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(50, 32, generator=g).requires_grad_()
    w = torch.randn(200, 32, generator=g).requires_grad_()
    y = torch.randint(0, 200, (50,), generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = chunked_lm_head_loss(hidden=h, weight=w, targets=y, chunk_size=16)
        ref = F.cross_entropy(
            F.linear(h, w).float(), y, reduction="sum"
        )  # what the model's own head computes
    torch.testing.assert_close(loss, ref, rtol=1e-4, atol=1e-3)
    (gh, gw) = torch.autograd.grad(loss, (h, w))
    (rh, rw) = torch.autograd.grad(ref, (h, w))
    assert gh.dtype == h.dtype and gw.dtype == w.dtype == torch.float32
    for a, b in ((gh, rh), (gw, rw)):
        assert float((a - b).norm() / b.norm()) < 1e-2  # bf16 operands


def test_a_micro_batch_without_trainable_tokens_gives_zero_loss_and_zero_gradients():
    tok, docs = _docs(n=2)
    module, _ = _module(tok)
    d = docs[0]
    empty = type(d)(input_ids=d.input_ids, labels=[IGNORE_INDEX] * len(d), row=0)
    loss = module(collate_documents([empty]))
    loss.backward()
    assert loss.detach().item() == 0.0
    grads = [p.grad for p in module.parameters()]
    assert all(gr is not None and not gr.any() for gr in grads)  # every parameter in the graph (DDP), at zero


def test_loss_equals_trl_sft_trainer_loss_on_the_same_batch(tmp_path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    tok, docs = _docs()
    model = build_model(tok)
    trl_model = copy.deepcopy(model)
    use_document_attention(model)
    packed = collate_documents(docs)
    ours = CausalLMLoss(model)(packed) / packed.num_trainable

    # TRL labels are unshifted (the model shifts): label[t] = token t if trained. Ours: label[t] = target after t.
    trl_labels = []
    for d in docs:
        trl_labels += [IGNORE_INDEX] + d.labels[:-1]
    inputs = {
        "input_ids": packed.input_ids,
        "labels": torch.tensor([trl_labels]),
        "position_ids": packed.position_ids,
    }
    args = SFTConfig(
        output_dir=str(tmp_path), report_to=[], packing=True, max_length=1024, use_cpu=True, bf16=False
    )
    trainer = SFTTrainer(
        model=trl_model, args=args, processing_class=tok, train_dataset=Dataset.from_list(make_traces(2))
    )
    trl_model.train()
    theirs = trainer.compute_loss(trl_model, inputs)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
