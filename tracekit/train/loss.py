"""`CausalLMLoss`: the model's decoder + lm-head on trainable positions only, as one module.

The lm-head runs only where a label exists (prompt tokens never get logits) and in chunks under activation
checkpointing, so a 32k-token row with a 150k vocabulary never materialises its full fp32 logits. It returns
the summed token loss; the trainer divides by the trainable tokens of the whole optimizer step. Wrapping this
module (not the bare model) in DDP/FSDP2 keeps their hooks on the forward that actually runs.

Example:
    >>> loss_sum, n = CausalLMLoss(model)(input_ids=ids, labels=labels, position_ids=pos)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from tracekit.train.data import IGNORE_INDEX


def _chunk_loss(
    hidden: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor, softcap: float | None
) -> torch.Tensor:
    logits = F.linear(hidden, weight).float()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return F.cross_entropy(logits, targets, reduction="sum")


class CausalLMLoss(torch.nn.Module):
    """Summed next-token loss over positions whose (pre-shifted) label is not IGNORE_INDEX."""

    def __init__(self, model: Any, *, chunk_size: int = 4096) -> None:
        super().__init__()
        self.model = model
        self.chunk_size = chunk_size

    def forward(
        self,
        *,
        input_ids: torch.Tensor,
        labels: torch.Tensor,
        position_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        decoder = self.model.get_decoder()
        hidden = decoder(
            input_ids=input_ids, position_ids=position_ids, attention_mask=attention_mask, use_cache=False
        ).last_hidden_state
        keep = labels != IGNORE_INDEX
        h = hidden[keep]
        y = labels[keep]
        head = self.model.get_output_embeddings()
        if head.bias is not None:
            raise NotImplementedError("lm heads with a bias are not supported")
        softcap = getattr(self.model.config, "final_logit_softcapping", None)
        total = hidden.new_zeros((), dtype=torch.float32)
        if h.shape[0] == 0:  # keep every parameter in the graph (DDP) with a zero contribution
            return total + 0.0 * head.weight.sum() + 0.0 * hidden.sum(), y.new_zeros(())
        for start in range(0, h.shape[0], self.chunk_size):
            hc, yc = h[start : start + self.chunk_size], y[start : start + self.chunk_size]
            if torch.is_grad_enabled() and h.shape[0] > self.chunk_size:
                part = checkpoint(_chunk_loss, hc, yc, head.weight, softcap, use_reentrant=False)
            else:
                part = _chunk_loss(hc, yc, head.weight, softcap)
            total = total + part
        return total, y.new_tensor(y.numel())
