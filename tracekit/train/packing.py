"""Best-fit-decreasing packing and micro-batch collation (pure functions).

Packed rows are padding-free: the documents of a micro-batch are concatenated into one row whose position ids
restart at 0 for each document. transformers turns restarting position ids into per-document attention
(a block-diagonal causal mask with SDPA/eager on CPU, varlen flash-attention on GPU), and labels were shifted
per document before packing, so no token attends to or predicts across a document boundary.

Example:
    >>> pack_best_fit_decreasing(lengths=[5, 3, 4, 2], capacity=7)
    [[0, 3], [2, 1]]
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tracekit.train.data import IGNORE_INDEX, TokenizedDoc


def pack_best_fit_decreasing(*, lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Group item indices into bins of total length <= capacity: longest first, each into the fullest bin that
    still fits it. Items longer than capacity raise ValueError.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # sorted (remaining capacity, bin index)
    for i in order:
        n = lengths[i]
        if n > capacity:
            raise ValueError(f"item {i} has length {n} > capacity {capacity}")
        k = bisect.bisect_left(free, (n, -1))
        if k < len(free):
            remaining, b = free.pop(k)
        else:
            remaining, b = capacity, len(bins)
            bins.append([])
        bins[b].append(i)
        if remaining - n > 0:
            bisect.insort(free, (remaining - n, b))
    return bins


@dataclass
class MicroBatch:
    """Tensors for one forward/backward plus counts for logging."""

    input_ids: Any
    labels: Any
    position_ids: Any
    attention_mask: Any | None
    num_tokens: int  # real (non-padding) tokens
    num_padding: int
    num_trainable: int


def collate_packed(docs: Sequence[TokenizedDoc]) -> MicroBatch:
    """Concatenate documents into one padding-free row with per-document position ids."""
    import torch

    ids: list[int] = []
    labels: list[int] = []
    pos: list[int] = []
    for d in docs:
        ids.extend(d.input_ids)
        labels.extend(d.labels)
        pos.extend(range(len(d)))
    return MicroBatch(
        input_ids=torch.tensor([ids], dtype=torch.long),
        labels=torch.tensor([labels], dtype=torch.long),
        position_ids=torch.tensor([pos], dtype=torch.long),
        attention_mask=None,
        num_tokens=len(ids),
        num_padding=0,
        num_trainable=sum(1 for y in labels if y != IGNORE_INDEX),
    )


def collate_padded(docs: Sequence[TokenizedDoc], *, pad_token_id: int = 0) -> MicroBatch:
    """Right-pad documents to the longest one, with an attention mask."""
    import torch

    width = max(len(d) for d in docs)
    ids = [d.input_ids + [pad_token_id] * (width - len(d)) for d in docs]
    labels = [d.labels + [IGNORE_INDEX] * (width - len(d)) for d in docs]
    att = [[1] * len(d) + [0] * (width - len(d)) for d in docs]
    pos = [list(range(len(d))) + [0] * (width - len(d)) for d in docs]
    n_real = sum(len(d) for d in docs)
    return MicroBatch(
        input_ids=torch.tensor(ids, dtype=torch.long),
        labels=torch.tensor(labels, dtype=torch.long),
        position_ids=torch.tensor(pos, dtype=torch.long),
        attention_mask=torch.tensor(att, dtype=torch.long),
        num_tokens=n_real,
        num_padding=width * len(docs) - n_real,
        num_trainable=sum(d.num_trainable for d in docs),
    )
