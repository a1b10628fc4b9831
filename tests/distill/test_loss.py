"""One step's loss and gradient equal a direct computation of the formula on the same tensors (both objectives).

The direct computation is written independently of tracekit's code: a plain Hugging Face forward over each
sequence on its own, float64 log-softmax, and the formula of docs/distill.md spelled out token by token; the
module under test packs the sequences into one padding-free row with per-document attention and chunked
log-probabilities (chunks smaller than a sequence, so chunk boundaries are crossed).
"""

from __future__ import annotations

import math
import random

import pytest
import torch

from tests.teachers.tiny_model import build_tokenizer
from tracekit.distill.loss import DistillLoss, advantages, policy_gradient_loss, token_cost
from tracekit.train.attention import use_document_attention
from tracekit.train.data import IGNORE_INDEX, TokenizedDoc
from tracekit.train.packing import collate_documents


def tiny_model(seed: int = 0):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True, initializer_range=0.2,
    )  # fmt: skip
    return Qwen2ForCausalLM(cfg).to(torch.float64)


def sequences(rng: random.Random, count: int) -> list[tuple[list[int], list[int]]]:
    return [
        (
            [rng.randrange(97) for _ in range(rng.randint(1, 9))],
            [rng.randrange(97) for _ in range(rng.randint(1, 12))],
        )
        for _ in range(count)
    ]


def direct_cost(objective: str, s: float, t: float, beta: float) -> float:
    """The per-token divergence, written out with math on floats."""
    if objective == "reverse_kl":
        return s - t
    m = math.log(beta * math.exp(t) + (1 - beta) * math.exp(s))
    return (1 - beta) * (s - m) + beta * math.exp(t - s) * (t - m)


@pytest.mark.parametrize("objective", ["reverse_kl", "jsd"])
@pytest.mark.parametrize("case", range(3))
def test_step_loss_and_gradient_match_the_formula(objective: str, case: int) -> None:
    rng = random.Random(case)
    beta, kl_coef = rng.choice([0.1, 0.5, 0.9]), rng.choice([0.5, 1.0, 2.0])
    seqs = sequences(rng, rng.randint(2, 5))
    model = tiny_model(case)
    # sampler log-probs: the model's own plus noise (a sampler that differs from the trainer, ratio != 1)
    # teacher log-probs: anything a teacher could say
    with torch.no_grad():
        own = [torch.log_softmax(model(torch.tensor([p + c])).logits[0], -1) for p, c in seqs]
    olds = [
        [float(lp[len(p) - 1 + i, tok]) + rng.gauss(0, 0.3) for i, tok in enumerate(c)]
        for lp, (p, c) in zip(own, seqs, strict=True)
    ]
    teachers = [[-rng.uniform(0.01, 8.0) for _ in c] for _, c in seqs]
    rewards = [rng.choice([-0.5, 0.0, 0.5]) for _ in seqs]

    # --- direct: per sequence, float64, the formula token by token
    direct_model = tiny_model(case)
    total, n = torch.zeros((), dtype=torch.float64), sum(len(c) for _, c in seqs)
    for (p, c), old, tea, r in zip(seqs, olds, teachers, rewards, strict=True):
        lp = torch.log_softmax(direct_model(torch.tensor([p + c])).logits[0], -1)
        for i, tok in enumerate(c):
            new = lp[len(p) - 1 + i, tok]
            adv = -kl_coef * direct_cost(objective, old[i], tea[i], beta) + r
            total = total - torch.exp(new - old[i]) * adv
    direct_loss = total / n
    direct_loss.backward()

    # --- tracekit: packed row, document attention, chunked log-probs
    model = tiny_model(case)
    use_document_attention(model)
    docs = [
        TokenizedDoc(input_ids=p + c, labels=[IGNORE_INDEX] * (len(p) - 1) + c + [IGNORE_INDEX], row=k)
        for k, (p, c) in enumerate(seqs)
    ]
    mb = collate_documents(docs)
    old_t = torch.tensor([x for o in olds for x in o], dtype=torch.float64)
    cost = token_cost(
        objective=objective,
        student_logprobs=old_t,
        teacher_logprobs=torch.tensor([x for t in teachers for x in t], dtype=torch.float64),
        beta=beta,
    )
    reward = torch.tensor(
        [r for (_, c), r in zip(seqs, rewards, strict=True) for _ in c], dtype=torch.float64
    )
    adv = advantages(cost=cost, kl_coef=kl_coef, reward=reward)
    loss_sum, new_lp = DistillLoss(model, chunk_size=5)(mb, old_t, adv)
    (loss_sum / n).backward()

    assert mb.num_trainable == n  # completion tokens only
    assert float(loss_sum.detach() / n) == pytest.approx(float(direct_loss.detach()), rel=1e-9, abs=1e-12)
    grads = dict(direct_model.named_parameters())
    for name, param in model.named_parameters():
        assert torch.allclose(param.grad, grads[name].grad, rtol=1e-7, atol=1e-10), name
    assert new_lp.requires_grad is False and new_lp.shape == (n,)


def test_prompt_tokens_never_enter_the_loss() -> None:
    """Changing what would be a prompt token's 'label' changes nothing: only completion labels are read."""
    model = tiny_model(7)
    use_document_attention(model)
    p, c = [3, 4, 5, 6], [7, 8, 9]
    doc = TokenizedDoc(input_ids=p + c, labels=[IGNORE_INDEX] * 3 + c + [IGNORE_INDEX], row=0)
    mb = collate_documents([doc])
    assert mb.trainable_index.tolist() == [3, 4, 5]  # the positions whose next token is a completion token
    old = torch.tensor([-1.0, -2.0, -3.0], dtype=torch.float64)
    adv = torch.tensor([0.3, -0.2, 1.0], dtype=torch.float64)
    loss, lp = DistillLoss(model, chunk_size=2)(mb, old, adv)
    with torch.no_grad():
        ref = torch.log_softmax(tiny_model(7)(torch.tensor([p + c])).logits[0], -1)
    assert torch.allclose(lp, torch.stack([ref[3, 7], ref[4, 8], ref[5, 9]]))


def test_value_at_ratio_one_is_the_mean_cost() -> None:
    """With the sampler's weights (ratio 1) and no reward, the loss is kl_coef times the summed cost."""
    g = torch.Generator().manual_seed(0)
    s = -torch.rand(50, generator=g, dtype=torch.float64) * 5
    t = -torch.rand(50, generator=g, dtype=torch.float64) * 5
    for objective in ("reverse_kl", "jsd"):
        cost = token_cost(objective=objective, student_logprobs=s, teacher_logprobs=t, beta=0.3)
        loss = policy_gradient_loss(logprobs=s, old_logprobs=s, advantages=advantages(cost=cost, kl_coef=0.7))
        assert float(loss) == pytest.approx(0.7 * float(cost.sum()))


def test_jsd_estimate_is_unbiased_against_the_exact_divergence() -> None:
    """Sampling tokens from the student and averaging the jsd cost approaches the exact generalised JSD."""
    g = torch.Generator().manual_seed(1)
    student = torch.log_softmax(torch.randn(12, generator=g, dtype=torch.float64), -1)
    teacher = torch.log_softmax(torch.randn(12, generator=g, dtype=torch.float64) * 2, -1)
    beta = 0.3
    m = torch.logaddexp(teacher + math.log(beta), student + math.log(1 - beta))
    exact = beta * (teacher.exp() * (teacher - m)).sum() + (1 - beta) * (student.exp() * (student - m)).sum()
    # the expectation over the student's distribution, computed exactly rather than sampled
    cost = token_cost(objective="jsd", student_logprobs=student, teacher_logprobs=teacher, beta=beta)
    assert float((student.exp() * cost).sum()) == pytest.approx(float(exact), rel=1e-12)
    rkl = token_cost(objective="reverse_kl", student_logprobs=student, teacher_logprobs=teacher)
    assert float((student.exp() * rkl).sum()) == pytest.approx(
        float((student.exp() * (student - teacher)).sum())
    )


def test_unknown_objective_is_refused() -> None:
    with pytest.raises(ValueError, match="objective"):
        token_cost(objective="forward_kl", student_logprobs=torch.zeros(1), teacher_logprobs=torch.zeros(1))


def test_tokenizer_builds() -> None:  # the fixture tokenizer the end-to-end tests rely on renders a prompt
    tok = build_tokenizer()
    assert tok.apply_chat_template(
        [{"role": "user", "content": "1+2?"}], tokenize=False, add_generation_prompt=True
    )


@pytest.mark.parametrize("case", range(2))
def test_top_k_jsd_term_matches_the_formula(case: int) -> None:
    """jsd with the teacher's top-k tokens: the divergence over those tokens, differentiated through the student's
    full softmax, plus the reward-only policy gradient; against a direct float64 computation."""
    rng = random.Random(10 + case)
    beta, coef, k = rng.choice([0.2, 0.5, 0.8]), rng.choice([0.5, 1.0]), rng.choice([1, 3, 5])
    seqs = sequences(rng, 3)
    olds = [[-rng.uniform(0.5, 5.0) for _ in c] for _, c in seqs]
    rewards = [rng.choice([-0.5, 0.5]) for _ in seqs]
    tops = [[rng.sample(range(97), k) for _ in c] for _, c in seqs]
    top_lps = [[[-rng.uniform(0.01, 6.0) for _ in range(k)] for _ in c] for _, c in seqs]
    n = sum(len(c) for _, c in seqs)

    direct_model = tiny_model(case)
    total = torch.zeros((), dtype=torch.float64)
    for (p, c), old, r, ids_c, lps_c in zip(seqs, olds, rewards, tops, top_lps, strict=True):
        lp = torch.log_softmax(direct_model(torch.tensor([p + c])).logits[0], -1)
        for i, tok in enumerate(c):
            pos = len(p) - 1 + i
            total = total - torch.exp(lp[pos, tok] - old[i]) * r
            for v, t in zip(ids_c[i], lps_c[i], strict=True):
                s = lp[pos, v]
                m = torch.log(beta * math.exp(t) + (1 - beta) * torch.exp(s))
                total = total + coef * (beta * math.exp(t) * (t - m) + (1 - beta) * torch.exp(s) * (s - m))
    (total / n).backward()

    model = tiny_model(case)
    use_document_attention(model)
    docs = [
        TokenizedDoc(input_ids=p + c, labels=[IGNORE_INDEX] * (len(p) - 1) + c + [IGNORE_INDEX], row=j)
        for j, (p, c) in enumerate(seqs)
    ]
    mb = collate_documents(docs)
    adv = torch.tensor([r for (_, c), r in zip(seqs, rewards, strict=True) for _ in c], dtype=torch.float64)
    loss_sum, _ = DistillLoss(model, chunk_size=4)(
        mb,
        torch.tensor([x for o in olds for x in o], dtype=torch.float64),
        adv,
        top_ids=torch.tensor([row for t in tops for row in t]),
        top_teacher=torch.tensor([row for t in top_lps for row in t], dtype=torch.float64),
        top_coef=coef,
        beta=beta,
    )
    (loss_sum / n).backward()
    assert float(loss_sum.detach() / n) == pytest.approx(float(total.detach() / n), rel=1e-9, abs=1e-12)
    grads = dict(direct_model.named_parameters())
    for name, param in model.named_parameters():
        assert torch.allclose(param.grad, grads[name].grad, rtol=1e-7, atol=1e-10), name


def test_top_k_needs_jsd_and_prompt_logprobs() -> None:
    from pydantic import ValidationError

    from tracekit.distill.config import DistillConfig

    base = {"student": "s", "data": "d", "output_dir": "o", "max_steps": 1}
    DistillConfig(**base, teacher={"model": "t", "top_k": 5}, objective="jsd")
    with pytest.raises(ValidationError, match="objective jsd only"):
        DistillConfig(**base, teacher={"model": "t", "top_k": 5})
    with pytest.raises(ValidationError, match="prompt_logprobs"):
        DistillConfig(**base, teacher={"model": "t", "top_k": 5, "base_url": "http://x/v1"}, objective="jsd")
