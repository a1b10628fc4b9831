"""Loss of packed rows == loss of the same rows one by one; and == TRL SFTTrainer's loss on the same batch."""

from __future__ import annotations

import pytest
import torch
from conftest import build_model, build_tokenizer, make_traces

from tracekit.train.data import IGNORE_INDEX, tokenize_rows
from tracekit.train.loss import CausalLMLoss
from tracekit.train.packing import collate_packed, collate_padded, pack_best_fit_decreasing


def _docs(n=6):
    tok = build_tokenizer("qwen2_5")
    rows = make_traces(n)
    rows[1]["messages"][1]["content"] += " A longer answer so that rows differ in length."
    return tok, tokenize_rows(rows=rows, tokenizer=tok, max_length=1024)[0]


def _run(module, mb):
    loss, n = module(
        input_ids=mb.input_ids,
        labels=mb.labels,
        position_ids=mb.position_ids,
        attention_mask=mb.attention_mask,
    )
    return loss, int(n)


def test_best_fit_decreasing_fills_bins_and_keeps_every_item():
    lengths = [9, 7, 6, 5, 4, 3, 2, 2, 1, 1]
    bins = pack_best_fit_decreasing(lengths=lengths, capacity=10)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 10 for b in bins)
    assert len(bins) == 4  # 40 tokens in bins of 10: optimal
    with pytest.raises(ValueError):
        pack_best_fit_decreasing(lengths=[11], capacity=10)


def test_packed_loss_and_gradients_equal_unpacked():
    tok, docs = _docs()
    module = CausalLMLoss(build_model(tok, init=0.3), chunk_size=64)  # several lm-head chunks
    packed = collate_packed(docs)
    loss_p, n_p = _run(module, packed)
    loss_p.backward()
    grads_p = [p.grad.clone() for p in module.parameters()]
    module.zero_grad()

    loss_u = torch.zeros(())
    n_u = 0
    for d in docs:
        part, n = _run(module, collate_packed([d]))
        loss_u, n_u = loss_u + part, n_u + n
    loss_u.backward()
    grads_u = [p.grad.clone() for p in module.parameters()]
    module.zero_grad()

    padded, n_pad = _run(module, collate_padded(docs))
    assert n_p == n_u == n_pad == sum(d.num_trainable for d in docs)
    torch.testing.assert_close(loss_p, loss_u, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loss_p, padded, rtol=1e-5, atol=1e-5)
    for gp, gu in zip(grads_p, grads_u, strict=True):
        torch.testing.assert_close(gp, gu, rtol=1e-3, atol=1e-5 * float(gu.abs().max()))


def test_packing_without_position_restart_would_change_the_loss():
    # Guards the test above: if documents attended to each other the loss would differ.
    tok, docs = _docs()
    module = CausalLMLoss(build_model(tok, init=0.3))
    packed = collate_packed(docs)
    leaky = collate_packed(docs)
    leaky.position_ids = torch.arange(packed.input_ids.shape[1])[None]
    diff = (_run(module, packed)[0] - _run(module, leaky)[0]).abs()
    assert diff > 100 * 1e-5 * _run(module, packed)[0].abs()  # far outside the tolerance used above


def test_loss_equals_trl_sft_trainer_loss_on_the_same_batch(tmp_path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    tok, docs = _docs()
    model = build_model(tok)
    packed = collate_packed(docs)
    loss_sum, n = _run(CausalLMLoss(model), packed)
    ours = loss_sum / n

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
        model=model, args=args, processing_class=tok, train_dataset=Dataset.from_list(make_traces(2))
    )
    model.train()
    theirs = trainer.compute_loss(model, inputs)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
