"""Best-fit-decreasing packing and micro-batch collation (pure functions).

A micro-batch is padding-free: the documents of all its units (packed rows, or single documents without
packing) are laid end to end in one flat row whose position ids restart at 0 for each document, with a
`DocumentLayout` that makes attention per document (see attention.py: no dense mask, no work across documents).
Labels were shifted per document before packing, so no token attends to or predicts across a document boundary.
Everything the step loop needs to know about a micro-batch (token counts, which positions are trained, the
document lengths) is computed here on the host, so the loop never reads it back from the device.

Example:
    >>> pack_best_fit_decreasing(lengths=[5, 3, 4, 2], capacity=7)
    [[0, 3], [2, 1]]
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tracekit.train.attention import DocumentLayout
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
    """Tensors for one forward/backward (CPU until `to`) and host-side counts for logging and MFU."""

    input_ids: Any  # [1, T]
    labels: Any  # [1, T], IGNORE_INDEX where nothing is trained
    position_ids: Any  # [1, T], restarting at 0 per document
    trainable_index: Any  # [n] positions of the flat row whose label is set
    targets: Any  # [n] their labels
    layout: DocumentLayout
    num_tokens: int
    num_trainable: int
    sum_sq_lengths: int  # sum over documents of length^2 (attention work)

    def pin_memory(self) -> MicroBatch:
        return self._map(lambda t: t.pin_memory(), self.layout.pin_memory())

    def to(self, device: Any, *, non_blocking: bool = False) -> MicroBatch:
        """Copy to `device`; from pinned memory with `non_blocking` the copy never waits for the device."""
        return self._map(
            lambda t: t.to(device, non_blocking=non_blocking),
            self.layout.to(device, non_blocking=non_blocking),
        )

    def _map(self, fn: Any, layout: DocumentLayout) -> MicroBatch:
        return MicroBatch(
            input_ids=fn(self.input_ids),
            labels=fn(self.labels),
            position_ids=fn(self.position_ids),
            trainable_index=fn(self.trainable_index),
            targets=fn(self.targets),
            layout=layout,
            num_tokens=self.num_tokens,
            num_trainable=self.num_trainable,
            sum_sq_lengths=self.sum_sq_lengths,
        )


def collate_documents(
    docs: Sequence[TokenizedDoc], *, backend: str = "sdpa", window: int | None = None
) -> MicroBatch:
    """Lay documents end to end in one flat row with per-document positions and attention layout."""
    import torch

    ids: list[int] = []
    labels: list[int] = []
    pos: list[int] = []
    for d in docs:
        ids.extend(d.input_ids)
        labels.extend(d.labels)
        pos.extend(range(len(d)))
    index = [t for t, y in enumerate(labels) if y != IGNORE_INDEX]
    return MicroBatch(
        input_ids=torch.tensor([ids], dtype=torch.long),
        labels=torch.tensor([labels], dtype=torch.long),
        position_ids=torch.tensor([pos], dtype=torch.long),
        trainable_index=torch.tensor(index, dtype=torch.long),
        targets=torch.tensor([labels[t] for t in index], dtype=torch.long),
        layout=DocumentLayout.build(lengths=[len(d) for d in docs], backend=backend, window=window),
        num_tokens=len(ids),
        num_trainable=len(index),
        sum_sq_lengths=sum(len(d) ** 2 for d in docs),
    )
