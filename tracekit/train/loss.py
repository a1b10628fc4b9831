"""`CausalLMLoss`: the model's decoder + lm-head on trainable positions only, as one module.

The lm-head runs only where a label exists (prompt tokens never get logits; the positions come from the host, so
picking them forces no device sync) and in token chunks through `chunked_lm_head_loss`, which computes each
chunk's logits, loss and gradients in the forward and keeps only the gradients: a 32k-token row with a 150k
vocabulary never holds more than one chunk of logits, and the backward does no second lm-head pass. It returns
the summed token loss; the trainer divides by the trainable tokens of the whole optimizer step. Wrapping this
module (not the bare model) in DDP/FSDP2 keeps their hooks on the forward that actually runs.

Example:
    >>> loss_sum = CausalLMLoss(model)(batch)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch

from tracekit.train.memory import auto_chunk_size
from tracekit.train.packing import MicroBatch

_FP32_OUT_MM: dict[str, bool] = {}


def _accumulate_mm(acc: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """acc += a @ b; on CUDA with float32 output straight from the low-precision product when torch can."""
    if acc.dtype != a.dtype and acc.device.type == "cuda" and _FP32_OUT_MM.get("ok", True):
        try:
            torch.addmm(acc, a, b, out_dtype=acc.dtype, out=acc)
            _FP32_OUT_MM["ok"] = True
            return
        except (TypeError, RuntimeError):
            _FP32_OUT_MM["ok"] = False
    acc.add_(a @ b)


def compute_dtype(device: torch.device, fallback: torch.dtype) -> torch.dtype:
    """The dtype matmuls run in on `device`: autocast's when it is on, else `fallback`."""
    dev = device.type
    return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else fallback


def logits_loss_and_grad(
    logits: torch.Tensor, targets: torch.Tensor, softcap: float | None, need_grad: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Summed CE of one chunk's logits (float32 softmax) and d(sum CE)/d(logits) in the logits' dtype."""
    z = logits.float()
    if softcap:
        tanh = torch.tanh(z / softcap)
        z = tanh * softcap
    lse = torch.logsumexp(z, dim=-1)
    loss = (lse - z.gather(1, targets[:, None]).squeeze(1)).sum()
    if not need_grad:
        return loss, None
    # in place over the float32 logits: one chunk-sized float32 buffer at a time
    probs = z.sub_(lse[:, None]).exp_()
    probs.scatter_add_(1, targets[:, None], torch.full_like(targets[:, None], -1, dtype=probs.dtype))
    if softcap:
        probs.mul_(1 - tanh * tanh)
    return loss, probs.to(logits.dtype)


_COMPILED: dict[str, Any] = {}


def _compiled_logits_loss_and_grad() -> Any:
    if "fn" not in _COMPILED:
        _COMPILED["fn"] = torch.compile(logits_loss_and_grad, dynamic=True)
    return _COMPILED["fn"]


class _ChunkedLMHeadLoss(torch.autograd.Function):
    """sum_t CE(h_t W^T, y_t) with the gradients of h and W computed chunk by chunk during the forward."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        targets: torch.Tensor,
        chunk: int,
        softcap: float | None,
        dtype: torch.dtype,
        elementwise: Any,
    ) -> torch.Tensor:
        need_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        w = weight.to(dtype)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        # (empty when no gradient is needed: the loop then never writes them)
        grad_h = torch.empty_like(hidden if need_grad else hidden[:0])
        grad_w = torch.zeros(weight.shape if need_grad else (0,), dtype=torch.float32, device=weight.device)
        with torch.autocast(hidden.device.type, enabled=False):
            for start in range(0, hidden.shape[0], chunk):
                h = hidden[start : start + chunk].to(dtype)
                part, g = elementwise(h @ w.t(), targets[start : start + chunk], softcap, need_grad)
                total += part
                if g is not None:
                    grad_h[start : start + chunk] = (g @ w).to(grad_h.dtype)
                    _accumulate_mm(grad_w, g.t(), h)
        if need_grad:
            ctx.save_for_backward(grad_h, grad_w.to(weight.dtype))
        return total

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        grad_h, grad_w = ctx.saved_tensors
        return grad_h * grad_out, grad_w * grad_out, None, None, None, None, None


def chunked_lm_head_loss(
    *,
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    chunk_size: int,
    softcap: float | None = None,
    compile: bool = False,
) -> torch.Tensor:
    """Summed cross-entropy of `hidden` [n, H] through the lm-head `weight` [V, H] against `targets` [n].

    The matmuls run in the autocast dtype when autocast is on (the softmax always in float32), like the model's
    own lm-head under autocast; gradients flow to `hidden` and `weight` when they require them. `compile` fuses
    each chunk's softmax and gradient into fewer passes over the logits.
    """
    dtype = compute_dtype(hidden.device, weight.dtype)
    fn = _compiled_logits_loss_and_grad() if compile else logits_loss_and_grad
    loss: torch.Tensor = _ChunkedLMHeadLoss.apply(hidden, weight, targets, chunk_size, softcap, dtype, fn)
    return loss


def trained_hidden(model: Any, batch: MicroBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The decoder's hidden states at the micro-batch's trainable positions [n, H], the lm-head weight [V, H]
    (whole, also when FSDP2 shards it) and the decoder's whole output (to keep every parameter in the graph
    when a micro-batch trains nothing). Per-document attention: the batch's layout is the attention mask."""
    decoder = model.get_decoder()
    layout = batch.layout
    # A mask mapping skips transformers' own mask building; the layout reaches the attention function.
    hidden = decoder(
        input_ids=batch.input_ids,
        position_ids=batch.position_ids,
        attention_mask={"full_attention": layout, "sliding_attention": layout},
        use_cache=False,
    ).last_hidden_state
    head = model.get_output_embeddings()
    if head.bias is not None:
        raise NotImplementedError("lm heads with a bias are not supported")
    weight = head.weight
    if hasattr(weight, "full_tensor"):  # an FSDP2 DTensor outside its module's forward
        weight = weight.full_tensor()
    h = hidden.reshape(-1, hidden.shape[-1]).index_select(0, batch.trainable_index)
    return h, weight, hidden


class CausalLMLoss(torch.nn.Module):
    """Summed next-token loss over a micro-batch's trainable positions (see the module docstring)."""

    def __init__(self, model: Any, *, chunk_size: int | None = None, compile: bool = False) -> None:
        super().__init__()
        self.model = model
        vocab = model.get_output_embeddings().weight.shape[0]
        self.chunk_size = chunk_size or auto_chunk_size(vocab)
        self.compile_loss = compile

    def forward(self, batch: MicroBatch) -> torch.Tensor:
        h, weight, hidden = trained_hidden(self.model, batch)
        softcap = getattr(self.model.config, "final_logit_softcapping", None)
        loss = chunked_lm_head_loss(
            hidden=h,
            weight=weight,
            targets=batch.targets,
            chunk_size=self.chunk_size,
            softcap=softcap,
            compile=self.compile_loss,
        )
        if batch.num_trainable == 0:  # keep every parameter in the graph (DDP) with a zero contribution
            loss = loss + 0.0 * hidden.sum()
        return loss
