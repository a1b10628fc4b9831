"""Sentence embeddings for the rephrase check (`rephrase: {embedding: {model: ...}}`).

A transformers encoder, mean-pooled over the attention mask and L2-normalised, so the dot product
of two embeddings is their cosine similarity. The benchmark items are embedded once; each batch of
prompts is embedded and compared with every item (one matrix product), and the best `candidates`
items per prompt are kept. torch and transformers are imported only when an embedding model is
named.

Example:
    >>> enc = Encoder(config=EmbeddingConfig(model="path/to/encoder"))  # doctest: +SKIP
    >>> enc.embed(["Compute 2+2.", "What is 2 plus 2?"]).shape            # doctest: +SKIP
    (2, 384)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tracekit.decontam.config import EmbeddingConfig


class Encoder:
    """Embeds texts with the configured model (loaded on first use)."""

    def __init__(self, *, config: EmbeddingConfig) -> None:
        self.config = config
        self._model: Any = None
        self._tokenizer: Any = None
        self._device: Any = None

    def _load(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        c = self.config
        self._device = torch.device(c.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._tokenizer = AutoTokenizer.from_pretrained(c.model, revision=c.revision)
        self._model = AutoModel.from_pretrained(c.model, revision=c.revision).to(self._device).eval()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, unit length rows."""
        import torch

        if self._model is None:
            self._load()
        c = self.config
        out = []
        with torch.inference_mode():
            for s in range(0, len(texts), c.batch_size):
                batch = self._tokenizer(
                    list(texts[s : s + c.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=c.max_length,
                    return_tensors="pt",
                ).to(self._device)
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                out.append(torch.nn.functional.normalize(pooled.float(), dim=-1).cpu().numpy())
        dim = int(self._model.config.hidden_size)
        return np.concatenate(out) if out else np.zeros((0, dim), np.float32)


def top_items(
    prompts: np.ndarray, items: np.ndarray, *, k: int, min_score: float
) -> tuple[np.ndarray, np.ndarray]:
    """(item index, cosine) of the best `k` items per prompt at or above `min_score`, best first, -1 padded.

    Example:
        >>> p = np.array([[1.0, 0.0]], np.float32); it = np.array([[0.0, 1.0], [0.8, 0.6]], np.float32)
        >>> idx, sc = top_items(p, it, k=2, min_score=0.5)
        >>> idx.tolist(), [round(float(x), 2) for x in sc[0]]
        ([[1, -1]], [0.8, 0.0])
    """
    sims = prompts @ items.T
    k = min(k, items.shape[0])
    idx = np.argsort(-sims, axis=1, kind="stable")[:, :k].astype(np.int32)
    sc = np.take_along_axis(sims, idx, axis=1).astype(np.float32)
    low = sc < min_score
    return np.where(low, -1, idx), np.where(low, 0.0, sc).astype(np.float32)
