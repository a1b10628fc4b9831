"""Numpy MinHash signatures and LSH bands over word n-gram hashes.

Each of `num_perm` hash functions is Dietzfelbinger's multiply-shift, `((a * x + b) mod 2**64) >> 32`
with odd random 64-bit `a` (universal for 64-bit keys); the signature of a text is the per-function
minimum over its n-grams. A numba loop computes it when numba is installed (about 5x faster than
the numpy fallback, which evaluates a whole batch at once and reduces with `np.minimum.reduceat`);
both give identical signatures.

Example:
    >>> hasher = MinHasher(num_perm=64, bands=8, ngram=3, seed=1)
    >>> sig = hasher.signatures(["the cat sat on the mat today", "the cat sat on the mat today!"])
    >>> float(MinHasher.similarity(sig[0], sig[1]))
    1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from tracekit.dedup.ngrams import NgramHashes, ngram_hashes, normalized_words

_EMPTY = np.iinfo(np.uint32).max


def _numba_kernel() -> Any:
    """A compiled MinHash loop (numba, cached on disk), or None when numba is not installed."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numpy fallback below
        return None

    @numba.njit(cache=True, nogil=True)
    def kernel(x, offsets, docs, a, b, out):  # type: ignore[no-untyped-def]
        shift = np.uint64(32)
        for k in range(len(docs)):
            d = docs[k]
            lo, hi = offsets[d], offsets[d + 1]
            for p in range(a.shape[0]):
                best = np.uint32(0xFFFFFFFF)
                ap, bp = a[p], b[p]
                for i in range(lo, hi):
                    v = np.uint32((ap * x[i] + bp) >> shift)
                    best = min(best, v)
                out[d, p] = best

    return kernel


_KERNEL: Any = None
_CHUNK_ELEMENTS = 1 << 22  # n-grams x permutations per numpy chunk (32 MiB of uint64)


class MinHasher:
    """MinHash signatures (uint32, one row per text) and their LSH band keys.

    `bands * rows == num_perm`; a pair with Jaccard similarity s becomes a candidate with
    probability `1 - (1 - s**rows)**bands`.
    """

    def __init__(self, *, num_perm: int = 128, bands: int = 16, ngram: int = 5, seed: int = 42) -> None:
        if num_perm % bands:
            raise ValueError(f"num_perm ({num_perm}) must be a multiple of bands ({bands})")
        self.num_perm, self.bands, self.rows, self.ngram = num_perm, bands, num_perm // bands, ngram
        rng = np.random.default_rng(seed)
        self._a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self._b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
        self._band_mix = rng.integers(1, 2**63, size=self.rows, dtype=np.uint64) | np.uint64(1)

    def ngrams(self, texts: Sequence[str | None] | pl.Series) -> NgramHashes:
        return ngram_hashes(normalized_words(texts), n=self.ngram, short_texts=True)

    def signatures(self, texts: Sequence[str | None] | pl.Series) -> np.ndarray:
        """(len(texts), num_perm) uint32; an empty text gets the all-max signature."""
        return self.signatures_from_ngrams(self.ngrams(texts))

    def signatures_from_ngrams(self, grams: NgramHashes) -> np.ndarray:
        counts = grams.counts
        out = np.full((len(counts), self.num_perm), _EMPTY, dtype=np.uint32)
        nonempty = np.flatnonzero(counts > 0)
        if not len(nonempty):
            return out
        global _KERNEL
        if _KERNEL is None:
            _KERNEL = _numba_kernel() or False
        if _KERNEL:
            _KERNEL(grams.hashes, grams.offsets, nonempty, self._a, self._b, out)
            return out
        step = max(1, _CHUNK_ELEMENTS // self.num_perm)
        # process whole texts in chunks of about `step` n-grams
        i = 0
        shift = np.uint64(32)
        while i < len(nonempty):
            lo = grams.offsets[nonempty[i]]
            j = int(np.searchsorted(grams.offsets[nonempty + 1], lo + step, side="right"))
            j = max(j, i + 1)
            docs = nonempty[i:j]
            hi = grams.offsets[docs[-1] + 1]
            x = grams.hashes[lo:hi]
            with np.errstate(over="ignore"):
                vals = ((x[:, None] * self._a[None, :] + self._b[None, :]) >> shift).astype(np.uint32)
            out[docs] = np.minimum.reduceat(vals, grams.offsets[docs] - lo, axis=0)
            i = j
        return out

    def band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """(n, bands) uint64: one key per band; equal keys in a band make a candidate pair."""
        sig = signatures.reshape(len(signatures), self.bands, self.rows).astype(np.uint64)
        with np.errstate(over="ignore"):
            keys = (sig * self._band_mix[None, None, :]).sum(axis=2, dtype=np.uint64)
            keys ^= np.arange(self.bands, dtype=np.uint64)[None, :] * np.uint64(0x9E3779B97F4A7C15)
        return keys

    @staticmethod
    def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Estimated Jaccard similarity: share of equal signature values (along the last axis)."""
        return (a == b).mean(axis=-1)
