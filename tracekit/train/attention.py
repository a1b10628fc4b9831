"""Per-document attention for packed rows: the work is the sum over documents, on every kernel.

A micro-batch is one flat row of documents (however many packed rows it holds). Each document attends only to
itself, causally, and no kernel ever sees a (tokens x tokens) mask:

- `flash_attention_3` / `flash_attention_2`: the flash-attn packages' varlen kernels over `cu_seqlens`;
- `flex_attention`: PyTorch's flex_attention (compiled) with a document block mask built on the host from the
  document lengths, so blocks that cross documents are skipped, not masked;
- `sdpa`: `scaled_dot_product_attention` called once per document with `is_causal` (PyTorch picks its
  flash/cuDNN/efficient kernel per call); `eager`: the same per document in plain matmuls (a reference).

`auto` takes flash-attn when installed on a GPU, else flex_attention on a GPU, else sdpa.

The model keeps its own modules; `use_document_attention` points its attention at `document_attention`
(registered with transformers' AttentionInterface) and the trainer passes the `DocumentLayout` of each
micro-batch in place of the attention mask, which also skips transformers' mask construction (and the host
synchronisation its packed-sequence detection costs).

Example:
    >>> layout = DocumentLayout.build(lengths=[3, 2], backend="sdpa")
    >>> layout.cu_seqlens.tolist(), layout.max_length
    ([0, 3, 5], 3)
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F

Backend = Literal["flash_attention_3", "flash_attention_2", "flex_attention", "sdpa", "eager"]
BACKENDS: tuple[str, ...] = ("flash_attention_3", "flash_attention_2", "flex_attention", "sdpa", "eager")
ATTENTION_NAME = "tracekit_documents"
FLEX_BLOCK = 128  # flex_attention's default sparse block size


def resolve_backend(*, requested: str, device: torch.device) -> str:
    """The kernel `requested` names on `device`; `auto` = flash-attn if installed on a GPU, else flex, else sdpa.

    >>> resolve_backend(requested="auto", device=torch.device("cpu"))
    'sdpa'
    """
    if requested != "auto":
        return requested
    if device.type != "cuda":
        return "sdpa"
    if importlib.util.find_spec("flash_attn_interface") is not None:
        return "flash_attention_3"
    if importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "flex_attention"


@dataclass
class DocumentLayout:
    """Where each document of a flat packed row starts and ends, in the form its backend needs.

    `lengths` stay on the host (the per-document loops and FLOP counts read them without touching the device);
    `cu_seqlens` (flash) and `block_mask` (flex) are tensors that `to` moves with the micro-batch.
    """

    lengths: tuple[int, ...]
    backend: str
    cu_seqlens: torch.Tensor
    max_length: int
    doc_ids: torch.Tensor | None = None  # flex: document of each position, padded to whole blocks
    kv_blocks: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # flex, see below
    window: int | None = None
    _block_mask: Any = field(default=None, repr=False, compare=False)  # flex: built on first use, then reused

    @classmethod
    def build(cls, *, lengths: Sequence[int], backend: str, window: int | None = None) -> DocumentLayout:
        """Host-side layout (CPU tensors) for documents of `lengths` laid end to end."""
        lengths = tuple(int(n) for n in lengths)
        if not lengths or min(lengths) <= 0:
            raise ValueError(f"document lengths must be positive, got {lengths}")
        cu = torch.zeros(len(lengths) + 1, dtype=torch.int32)
        cu[1:] = torch.tensor(lengths, dtype=torch.int32).cumsum(0)
        layout = cls(lengths=lengths, backend=backend, cu_seqlens=cu, max_length=max(lengths), window=window)
        if backend == "flex_attention":
            n_blocks = math.ceil(sum(lengths) / FLEX_BLOCK)
            doc = torch.repeat_interleave(
                torch.arange(len(lengths), dtype=torch.int32), torch.tensor(lengths)
            )
            pad = torch.full((n_blocks * FLEX_BLOCK - doc.numel(),), -1, dtype=torch.int32)
            layout.doc_ids = torch.cat([doc, pad])
            layout.kv_blocks = document_kv_blocks(lengths=lengths, block=FLEX_BLOCK, window=window)
        return layout

    @property
    def num_tokens(self) -> int:
        return sum(self.lengths)

    def pin_memory(self) -> DocumentLayout:
        return self._map(lambda t: t.pin_memory())

    def to(self, device: torch.device, *, non_blocking: bool = False) -> DocumentLayout:
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def _map(self, fn: Any) -> DocumentLayout:
        return replace(
            self,
            _block_mask=None,
            cu_seqlens=fn(self.cu_seqlens),
            doc_ids=None if self.doc_ids is None else fn(self.doc_ids),
            kv_blocks=None if self.kv_blocks is None else tuple(fn(t) for t in self.kv_blocks),  # type: ignore[arg-type]
        )


def document_kv_blocks(
    *, lengths: Sequence[int], block: int, window: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """flex_attention's block lists for causal per-document attention over documents laid end to end.

    For each query block: the key blocks that hold some allowed (query, key) pair but not only allowed pairs
    (`partial`: the mask function runs on them), and those where every pair is allowed (`full`: no mask
    function). Every other block pair is skipped. Returns (kv_num_blocks, kv_indices, full_kv_num_blocks,
    full_kv_indices) with flex's shapes [1, 1, n] and [1, 1, n, n]; derived from per-block document ranges, not
    from a token mask.
    """
    total = sum(lengths)
    n = math.ceil(total / block)
    starts = [0]
    for length in lengths:
        starts.append(starts[-1] + length)
    doc_at = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(list(lengths)))
    first = torch.arange(n) * block
    last = torch.clamp(first + block, max=total) - 1
    dmin, dmax = doc_at[first], doc_at[last]  # documents spanned by each block (contiguous ranges)
    qi = torch.arange(n)[:, None]
    kj = torch.arange(n)[None, :]
    below = kj < qi
    # Blocks j < i share an allowed pair iff a document has tokens in both: the last document of block j is the
    # first of block i (documents are contiguous). The diagonal always has allowed pairs, never only allowed ones.
    any_ok = (below & (dmax[None, :] == dmin[:, None])) | (kj == qi)
    full_ok = below & (dmin[:, None] == dmax[:, None]) & (dmin[None, :] == dmax[None, :])
    full_ok &= dmin[:, None] == dmin[None, :]
    full_ok &= ~(last - first + 1 < block)[:, None]  # a short last block is never "full"
    if window is not None:
        nearest = torch.clamp(first[:, None] - last[None, :], min=0)  # smallest q - k over the block pair
        farthest = last[:, None] - first[None, :]
        any_ok &= nearest < window
        full_ok &= farthest < window
    partial = any_ok & ~full_ok

    def lists(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        counts = m.sum(-1).to(torch.int32)
        # stable sort puts the chosen block indices first, in order; the tail is ignored by flex
        order = torch.sort((~m).to(torch.int8), dim=-1, stable=True).indices.to(torch.int32)
        return counts[None, None], order[None, None].contiguous()

    kv_num, kv_idx = lists(partial)
    full_num, full_idx = lists(full_ok)
    return kv_num, kv_idx, full_num, full_idx


def use_document_attention(model: Any) -> None:
    """Route `model`'s attention through `document_attention` (registered once with transformers)."""
    from transformers import AttentionInterface

    if not model._can_set_attn_implementation():
        raise ValueError(
            f"attn_implementation: {type(model).__name__} does not route attention through transformers' "
            "AttentionInterface, so packed documents cannot be kept apart; use a model that does (Llama, Qwen2/3, "
            "Mistral, Gemma, ...)"
        )
    if getattr(model.config, "attn_logit_softcapping", None):
        raise ValueError("attn_implementation: attention logit soft-capping (Gemma 2) is not supported")
    AttentionInterface.register(ATTENTION_NAME, document_attention)
    model.set_attn_implementation(ATTENTION_NAME)


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    dev = t.device.type
    return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else t.dtype


def document_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Any,
    scaling: float | None = None,
    dropout: float = 0.0,
    sliding_window: int | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers attention function: q [1, H, T, D], k/v [1, Hkv, T, D] -> [1, T, H, D], per document."""
    layout = attention_mask
    if not isinstance(layout, DocumentLayout):
        raise TypeError(
            "tracekit's document attention needs the micro-batch's DocumentLayout as attention_mask "
            f"(got {type(layout).__name__}); call the model through tracekit.train.loss.CausalLMLoss"
        )
    if query.shape[0] != 1:
        raise ValueError(f"document attention takes one flat row, got a batch of {query.shape[0]}")
    if dropout:
        raise ValueError("attention dropout is not supported by tracekit's document attention")
    dtype = _compute_dtype(query)
    q, k, v = query.to(dtype), key.to(dtype), value.to(dtype)
    scale = scaling if scaling is not None else q.shape[-1] ** -0.5
    window = sliding_window if sliding_window is not None else layout.window
    backend = layout.backend
    if backend in ("flash_attention_2", "flash_attention_3"):
        return _flash_varlen(q, k, v, layout, scale, window, backend), None
    if backend == "flex_attention":
        return _flex(q, k, v, layout, scale, window), None
    if backend in ("sdpa", "eager"):
        return _per_document(q, k, v, layout, scale, window, eager=backend == "eager"), None
    raise ValueError(f"unknown attention backend {backend!r}")


def _repeat_kv(t: torch.Tensor, groups: int) -> torch.Tensor:
    if groups == 1:
        return t
    b, h, n, d = t.shape
    return t[:, :, None].expand(b, h, groups, n, d).reshape(b, h * groups, n, d)


def _band(n: int, window: int | None, device: torch.device) -> torch.Tensor | None:
    if window is None or window >= n:
        return None
    i = torch.arange(n, device=device)
    return (i[:, None] >= i[None, :]) & (i[:, None] - i[None, :] < window)


def _per_document(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    layout: DocumentLayout,
    scale: float,
    window: int | None,
    *,
    eager: bool,
) -> torch.Tensor:
    groups = q.shape[1] // k.shape[1]
    k, v = _repeat_kv(k, groups), _repeat_kv(v, groups)
    outs = []
    # split by host-known lengths: no device read, and its backward is one concatenation (slicing would add a
    # zero-filled full-size gradient per document)
    for qs, ks, vs in zip(*(t.split(layout.lengths, dim=2) for t in (q, k, v)), strict=True):
        n = qs.shape[2]
        band = _band(n, window, q.device)
        if eager:
            scores = torch.matmul(qs, ks.transpose(-1, -2)).float() * scale
            i = torch.arange(n, device=q.device)
            allowed = band if band is not None else i[:, None] >= i[None, :]
            scores = scores.masked_fill(~allowed, float("-inf"))
            out = torch.matmul(torch.softmax(scores, dim=-1).to(vs.dtype), vs)
        elif band is None:
            out = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True, scale=scale)
        else:
            out = F.scaled_dot_product_attention(qs, ks, vs, attn_mask=band, scale=scale)
        outs.append(out.transpose(1, 2))
    return torch.cat(outs, dim=1)


def _flash_varlen(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    layout: DocumentLayout,
    scale: float,
    window: int | None,
    backend: str,
) -> torch.Tensor:
    if backend == "flash_attention_3":
        from flash_attn_interface import flash_attn_varlen_func
    else:
        from flash_attn import flash_attn_varlen_func
    qt, kt, vt = (t[0].transpose(0, 1) for t in (q, k, v))  # [T, H, D]
    kw: dict[str, Any] = {"softmax_scale": scale, "causal": True}
    if window is not None:
        kw["window_size"] = (window - 1, 0)
    cu = layout.cu_seqlens
    out = flash_attn_varlen_func(qt, kt, vt, cu, cu, layout.max_length, layout.max_length, **kw)
    if isinstance(out, tuple):  # flash_attn_interface returns (out, lse) in some versions
        out = out[0]
    return out[None]


_COMPILED_FLEX: dict[str, Any] = {}


def _eager_flex(*args: Any, **kwargs: Any) -> torch.Tensor:
    import warnings

    from torch.nn.attention.flex_attention import flex_attention

    with warnings.catch_warnings():  # "called without torch.compile": known, and the reason it is CPU only
        warnings.simplefilter("ignore", UserWarning)
        out: torch.Tensor = flex_attention(*args, **kwargs)
    return out


def _flex_fn(device_type: str) -> Any:
    """flex_attention, compiled on GPUs (where its block sparsity pays; a second row length makes torch.compile
    recompile once with a dynamic length). On CPU it runs uncompiled: forward only (PyTorch has no CPU backward
    for it) and dense inside, which is what the tests need to check its results."""
    from torch.nn.attention.flex_attention import flex_attention

    if device_type == "cpu":
        return _eager_flex
    if device_type not in _COMPILED_FLEX:
        _COMPILED_FLEX[device_type] = torch.compile(flex_attention)
    return _COMPILED_FLEX[device_type]


def document_block_mask(layout: DocumentLayout) -> Any:
    """The flex BlockMask of `layout` (built from its host-computed block lists; no mask evaluation), made once
    per micro-batch and reused by every layer, recompute and backward."""
    from torch.nn.attention.flex_attention import BlockMask

    if layout._block_mask is not None:
        return layout._block_mask
    assert layout.doc_ids is not None and layout.kv_blocks is not None
    doc = layout.doc_ids
    window = layout.window

    def document_causal(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
        allowed = (doc[q_idx] == doc[kv_idx]) & (q_idx >= kv_idx)
        if window is not None:
            allowed = allowed & (q_idx - kv_idx < window)
        return allowed

    kv_num, kv_idx, full_num, full_idx = layout.kv_blocks
    total = layout.num_tokens
    layout._block_mask = BlockMask.from_kv_blocks(
        kv_num,
        kv_idx,
        full_num,
        full_idx,
        BLOCK_SIZE=FLEX_BLOCK,
        mask_mod=document_causal,
        seq_lengths=(total, total),
    )
    return layout._block_mask


def _flex(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    layout: DocumentLayout,
    scale: float,
    window: int | None,
) -> torch.Tensor:
    if window != layout.window:  # the block lists were built for the layout's window
        raise ValueError(
            f"flex_attention: a layer asks for sliding window {window} but the micro-batch was laid out for "
            f"{layout.window}; models that mix window sizes need attn_implementation sdpa or flash_attention_2"
        )
    mask = document_block_mask(layout)
    out = _flex_fn(q.device.type)(q, k, v, block_mask=mask, scale=scale, enable_gqa=q.shape[1] != k.shape[1])
    return out.transpose(1, 2)
