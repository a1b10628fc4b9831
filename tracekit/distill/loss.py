"""The on-policy distillation loss: per-token divergences on the student's own samples, in policy-gradient form.

For a completion y sampled from the student's sampler (weights pi_old), with the sampler's log-probabilities
`s_t = log pi_old(y_t | y_<t)` and the teacher's `t_t = log pi_T(y_t | y_<t)`:

* `reverse_kl`: cost `c_t = s_t - t_t`, whose mean over sampled tokens estimates KL(student || teacher);
* `jsd` (generalised Jensen-Shannon with `beta`, M = beta * teacher + (1 - beta) * student):
  `c_t = (1 - beta) (s_t - m_t) + beta * exp(t_t - s_t) (t_t - m_t)`, with `m_t = log M(y_t)`, an unbiased
  one-sample estimate of beta KL(T || M) + (1 - beta) KL(S || M) under the student's sampling.

The per-token advantage is `A_t = -kl_coef * C_t + r`, where `C_t = sum_{u >= t} discount^(u - t) c_u` is the
cost to go of the token's sequence (`discount` 0: the token's own cost only) and r an optional verifier reward,
centred per prompt; the loss is the importance-weighted policy gradient on completion tokens only:

    loss = -(1 / N) * sum_t exp(log pi_theta(y_t) - s_t) * A_t        (A_t and s_t held constant)

whose gradient is `-(1/N) sum_t ratio_t A_t grad log pi_theta(y_t)`: at ratio 1 the REINFORCE gradient of
the divergence, and its value at ratio 1 with discount 0 and no reward is `kl_coef` times the mean cost (for
reverse_kl: the mean per-token reverse KL).
N is the number of completion tokens in the whole step, so micro-batching does not change the update.
With the teacher's top-k tokens (`teacher.top_k`, objective jsd) the divergence is instead differentiated
directly, position by position, over those tokens (`top_k_jsd`), and the policy gradient carries the reward only.

Example:
    >>> import torch
    >>> s, t = torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -1.0])
    >>> token_cost(objective="reverse_kl", student_logprobs=s, teacher_logprobs=t).tolist()
    [0.5, -1.0]
    >>> adv = advantages(cost=token_cost(objective="reverse_kl", student_logprobs=s, teacher_logprobs=t), kl_coef=1.0)
    >>> float(policy_gradient_loss(logprobs=s, old_logprobs=s, advantages=adv))  # = sum of costs at ratio 1
    -0.5
"""

from __future__ import annotations

import math
from typing import Any

import torch

from tracekit.train.loss import compute_dtype, trained_hidden
from tracekit.train.memory import auto_chunk_size
from tracekit.train.packing import MicroBatch


def token_cost(
    *,
    objective: str,
    student_logprobs: torch.Tensor,
    teacher_logprobs: torch.Tensor,
    beta: float = 0.5,
) -> torch.Tensor:
    """Per-token divergence estimate `c_t` of each sampled token (see the module docstring)."""
    s, t = student_logprobs, teacher_logprobs
    if objective == "reverse_kl":
        return s - t
    if objective == "jsd":
        m = torch.logaddexp(t + math.log(beta), s + math.log1p(-beta))
        return (1 - beta) * (s - m) + beta * torch.exp(t - s) * (t - m)
    raise ValueError(f"objective: unknown {objective!r} (reverse_kl or jsd)")


def cost_to_go(cost: torch.Tensor, *, discount: float) -> torch.Tensor:
    """`sum_{u >= t} discount^(u - t) c_u` of one sequence's token costs: with discount 1 each token answers for
    the divergence of everything sampled after it (the exact policy gradient of the sequence-level divergence,
    which is what teaches a student to stop); with 0 only for its own (lower variance, no credit for the future).

    Example:
        >>> cost_to_go(torch.tensor([1.0, 2.0, 3.0]), discount=0.5).tolist()
        [2.75, 3.5, 3.0]
    """
    if discount == 0 or cost.numel() == 0:
        return cost
    out = torch.empty_like(cost)
    acc = torch.zeros((), dtype=cost.dtype)
    for i in range(cost.numel() - 1, -1, -1):
        acc = cost[i] + discount * acc
        out[i] = acc
    return out


def advantages(*, cost: torch.Tensor, kl_coef: float, reward: torch.Tensor | None = None) -> torch.Tensor:
    """`A_t = -kl_coef * c_t (+ reward_t)`: how much more likely the trainer should make each sampled token."""
    adv = -kl_coef * cost
    return adv if reward is None else adv + reward


def policy_gradient_loss(
    *, logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor
) -> torch.Tensor:
    """Summed `-exp(logprobs - old_logprobs) * advantages`; gradients flow through `logprobs` only."""
    ratio = torch.exp(logprobs - old_logprobs.detach())
    return -(ratio * advantages.detach()).sum()


def _chunk_logprobs(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: Any
) -> torch.Tensor:
    z = hidden @ weight.t()
    z = z.to(torch.promote_types(z.dtype, torch.float32))  # the softmax in float32 at least
    if softcap:
        z = torch.tanh(z / softcap) * softcap
    lse = torch.logsumexp(z, dim=-1, keepdim=True)
    if targets.dim() == 1:
        return (z.gather(1, targets[:, None]) - lse).squeeze(1)
    return z.gather(1, targets) - lse


def chunked_token_logprobs(
    *,
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    chunk_size: int,
    softcap: float | None = None,
) -> torch.Tensor:
    """log softmax(hidden @ weight^T)[targets] in float32 (or wider), one chunk of logits alive at a time (each chunk's
    logits are recomputed in the backward instead of kept). `targets` is [n] (one token per row) or [n, m]."""
    from torch.utils.checkpoint import checkpoint

    dtype = compute_dtype(hidden.device, weight.dtype)
    w = weight.to(dtype)
    parts = []
    with torch.autocast(hidden.device.type, enabled=False):
        for start in range(0, hidden.shape[0], chunk_size):
            h = hidden[start : start + chunk_size].to(dtype)
            y = targets[start : start + chunk_size]
            if torch.is_grad_enabled() and (h.requires_grad or w.requires_grad):
                parts.append(checkpoint(_chunk_logprobs, h, w, y, softcap, use_reentrant=False))
            else:
                parts.append(_chunk_logprobs(h, w, y, softcap))
    if not parts:
        return hidden.new_zeros(tuple(targets.shape), dtype=torch.float32)
    return torch.cat(parts)


def top_k_jsd(*, student_logprobs: torch.Tensor, teacher_logprobs: torch.Tensor, beta: float) -> torch.Tensor:
    """Per position, the generalised JSD restricted to the teacher's top-k tokens ([n, k] log-probabilities of the
    same tokens under each model): `sum_v beta p_T (log p_T - log m) + (1 - beta) p_S (log p_S - log m)` with
    `m = beta p_T + (1 - beta) p_S`. The mass outside the k tokens is left out (a truncation, as in GKD with
    top-k teacher logits). Differentiable in `student_logprobs`.

    Example:
        >>> lp = torch.log(torch.tensor([[0.5, 0.25]]))
        >>> float(top_k_jsd(student_logprobs=lp, teacher_logprobs=lp, beta=0.5))  # same distribution: 0
        0.0
    """
    s, t = student_logprobs, teacher_logprobs
    m = torch.logaddexp(t + math.log(beta), s + math.log1p(-beta))
    return (beta * torch.exp(t) * (t - m) + (1 - beta) * torch.exp(s) * (s - m)).sum(dim=-1)


class DistillLoss(torch.nn.Module):
    """The student's log-probabilities of a micro-batch's completion tokens and the policy-gradient loss.

    `forward(batch, old_logprobs, advantages)` returns (summed loss, the new log-probabilities detached); the
    extra tensors are aligned with `batch.trainable_index` (completion positions, in order). Wrapping this module
    (not the bare model) keeps DDP/FSDP2 hooks on the forward that runs, as `CausalLMLoss` does for SFT.
    """

    def __init__(self, model: Any, *, chunk_size: int | None = None) -> None:
        super().__init__()
        self.model = model
        vocab = model.get_output_embeddings().weight.shape[0]
        self.chunk_size = chunk_size or auto_chunk_size(vocab)

    def token_logprobs(self, batch: MicroBatch, extra: torch.Tensor | None = None) -> torch.Tensor:
        """log pi_theta of every labelled token of the micro-batch (per-document attention, as in SFT); with
        `extra` ([n, k] token ids at the same positions) a [n, 1 + k] tensor: the label's, then theirs."""
        h, weight, hidden = trained_hidden(self.model, batch)
        targets = batch.targets if extra is None else torch.cat([batch.targets[:, None], extra], dim=1)
        lp = chunked_token_logprobs(
            hidden=h,
            weight=weight,
            targets=targets,
            chunk_size=self.chunk_size,
            softcap=getattr(self.model.config, "final_logit_softcapping", None),
        )
        if batch.num_trainable == 0:  # keep every parameter in the graph with a zero contribution
            lp = lp + 0.0 * hidden.sum()
        return lp

    def forward(  # type: ignore[override]
        self,
        batch: MicroBatch,
        old_logprobs: torch.Tensor,
        advantages: torch.Tensor,
        top_ids: torch.Tensor | None = None,
        top_teacher: torch.Tensor | None = None,
        top_coef: float = 1.0,
        beta: float = 0.5,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed loss, new log-probabilities of the labels); with the teacher's top-k tokens (`top_ids`, and
        their teacher log-probabilities `top_teacher`, both [n, k]) the loss adds `top_coef * sum_t top_k_jsd`."""
        if top_ids is None or top_teacher is None:
            lp = self.token_logprobs(batch)
            return policy_gradient_loss(
                logprobs=lp, old_logprobs=old_logprobs, advantages=advantages
            ), lp.detach()
        both = self.token_logprobs(batch, extra=top_ids)
        lp = both[:, 0]
        loss = policy_gradient_loss(logprobs=lp, old_logprobs=old_logprobs, advantages=advantages)
        jsd = top_k_jsd(student_logprobs=both[:, 1:], teacher_logprobs=top_teacher.to(both.dtype), beta=beta)
        return loss + top_coef * jsd.sum(), lp.detach()
