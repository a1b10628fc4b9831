"""MinHash signatures and LSH band keys over word n-grams, computed straight from UTF-8 bytes.

One compiled pass per text (numba; see `tracekit.dedup.ngrams` for the byte scanners) splits the
normalised words, hashes them, forms word n-grams and takes the signature, so no list of words or
n-grams is ever materialised for the batch. Texts with non-ASCII characters are normalised by
polars first (NFKC, Unicode lowercase, CJK characters as words) and then take the same path.

Hash functions: each n-gram is reduced to a 32-bit key `x` (top half of a 64-bit mix of its word
hashes); permutation p is Dietzfelbinger's multiply-add-shift `h_p(x) = ((a_p * x + b_p) mod 2**64)
>> 32` with `a_p`, `b_p` uniform 64-bit. For 32-bit keys and 32-bit outputs this family is strongly
universal (2-independent), since 64 >= 32 + 32 - 1 (Dietzfelbinger 1996; Thorup, "High speed hashing
for integers and strings", 2015). The permutation loop is the inner loop: for each n-gram the 128
values are one vectorised multiply-add-shift-min over the `a`, `b` arrays (SIMD on AVX2/AVX-512).
Integer arithmetic only: signatures are identical on every machine and executor.

Example:
    >>> hasher = MinHasher(num_perm=64, bands=8, ngram=3, seed=1)
    >>> sig = hasher.signatures(["the cat sat on the mat today", "The cat sat on the mat today!"])
    >>> float(MinHasher.similarity(sig[0], sig[1]))
    1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from tracekit.dedup.ngrams import (
    NUMBER_PATTERN,
    as_arrow,
    ascii_mask,
    compiled,
    fmix64,
    nfkc,
    normalized_words,
    scan_ascii_numbers,
    scan_ascii_words,
    scan_split_numbers,
    scan_split_words,
    take_texts,
    utf8_buffers,
)

_EMPTY = np.iinfo(np.uint32).max
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio) for n-gram mixing
_U32 = np.uint64(32)


@compiled
def _signature_row(words, nw, ngram, a, b, cur, out):  # type: ignore[no-untyped-def]
    """MinHash of the word n-grams of `words[:nw]` into `out` (left untouched when nw == 0).

    A text with fewer than `ngram` words (but at least one) has one n-gram: all its words.
    """
    if nw == 0:
        return
    perms = a.shape[0]
    for p in range(perms):
        cur[p] = np.uint64(0xFFFFFFFF)
    count = nw - ngram + 1 if nw >= ngram else 1
    width = ngram if nw >= ngram else nw
    for i in range(count):
        acc = words[i]
        for j in range(1, width):
            acc = acc * _MIX + words[i + j]
        if nw < ngram:
            acc ^= np.uint64(nw)
        x = fmix64(acc) >> _U32
        for p in range(perms):  # the vectorised loop
            v = (a[p] * x + b[p]) >> _U32
            cur[p] = min(cur[p], v)
    for p in range(perms):
        out[p] = np.uint32(cur[p])


@compiled
def _sketch_ascii(data, offsets, rows, ngram, a, b, sig, has_words, numbers):  # type: ignore[no-untyped-def]
    longest = 0
    for k in range(len(rows)):
        longest = max(longest, offsets[rows[k] + 1] - offsets[rows[k]])
    words = np.empty(longest // 2 + 2, np.uint64)
    cur = np.empty(a.shape[0], np.uint64)
    for k in range(len(rows)):
        lo, hi = offsets[rows[k]], offsets[rows[k] + 1]
        nw = scan_ascii_words(data, lo, hi, words)
        has_words[k] = nw > 0
        numbers[k] = scan_ascii_numbers(data, lo, hi)
        _signature_row(words, nw, ngram, a, b, cur, sig[k])


@compiled
def _sketch_split(wdata, woffsets, ndata, noffsets, ngram, a, b, sig, has_words, numbers):  # type: ignore[no-untyped-def]
    longest = 0
    for k in range(len(woffsets) - 1):
        longest = max(longest, woffsets[k + 1] - woffsets[k])
    words = np.empty(longest // 2 + 2, np.uint64)
    cur = np.empty(a.shape[0], np.uint64)
    for k in range(len(woffsets) - 1):
        nw = scan_split_words(wdata, woffsets[k], woffsets[k + 1], words)
        has_words[k] = nw > 0
        numbers[k] = scan_split_numbers(ndata, noffsets[k], noffsets[k + 1])
        _signature_row(words, nw, ngram, a, b, cur, sig[k])


@dataclass(frozen=True, slots=True)
class Sketch:
    """Per text: MinHash signature, whether it has any word, and the hash of its numbers."""

    signatures: np.ndarray  # (n, num_perm) uint32; all max for a text without words
    has_words: np.ndarray  # bool
    numbers: np.ndarray  # uint64, order-free hash of the multiset of numbers (0: none)


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
        self._a = rng.integers(0, 2**64, size=num_perm, dtype=np.uint64, endpoint=False)
        self._b = rng.integers(0, 2**64, size=num_perm, dtype=np.uint64, endpoint=False)
        self._band_mix = rng.integers(1, 2**63, size=self.rows, dtype=np.uint64) | np.uint64(1)

    def sketch(self, texts: Sequence[str | None] | pl.Series | pa.Array | pa.ChunkedArray) -> Sketch:
        """Signatures, word presence and number hashes of a batch of texts (nulls are empty)."""
        texts = as_arrow(texts)
        data, offsets = utf8_buffers(texts)
        n = len(offsets) - 1
        sig = np.full((n, self.num_perm), _EMPTY, dtype=np.uint32)
        has_words = np.zeros(n, np.bool_)
        numbers = np.zeros(n, np.uint64)
        is_ascii = ascii_mask(texts)
        rows = np.flatnonzero(is_ascii)
        if len(rows) == n:
            _sketch_ascii(data, offsets, rows, self.ngram, self._a, self._b, sig, has_words, numbers)
            return Sketch(sig, has_words, numbers)
        part = self._empty(len(rows))
        _sketch_ascii(data, offsets, rows, self.ngram, self._a, self._b, *part)
        self._scatter(rows, part, sig, has_words, numbers)
        other = np.flatnonzero(~is_ascii)
        s = take_texts(texts, other)
        wdata, woffsets = utf8_buffers(normalized_words(s).list.join(" "))
        ndata, noffsets = utf8_buffers(nfkc(s).str.extract_all(NUMBER_PATTERN).list.join(" "))
        part = self._empty(len(other))
        _sketch_split(wdata, woffsets, ndata, noffsets, self.ngram, self._a, self._b, *part)
        self._scatter(other, part, sig, has_words, numbers)
        return Sketch(sig, has_words, numbers)

    def _empty(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.full((n, self.num_perm), _EMPTY, dtype=np.uint32),
            np.zeros(n, np.bool_),
            np.zeros(n, np.uint64),
        )

    @staticmethod
    def _scatter(
        rows: np.ndarray,
        part: tuple[np.ndarray, np.ndarray, np.ndarray],
        sig: np.ndarray,
        has_words: np.ndarray,
        numbers: np.ndarray,
    ) -> None:
        sig[rows], has_words[rows], numbers[rows] = part

    def signatures(self, texts: Sequence[str | None] | pl.Series | pa.Array | pa.ChunkedArray) -> np.ndarray:
        """(len(texts), num_perm) uint32; an empty text gets the all-max signature."""
        return self.sketch(texts).signatures

    @staticmethod
    def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Estimated Jaccard similarity: share of equal signature values (along the last axis)."""
        return (a == b).mean(axis=-1)


@compiled
def _find(parent, x):  # type: ignore[no-untyped-def]
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:  # path compression
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


@compiled
def _lsh_kernel(sig, eligible, numbers, band_mix, bands, threshold, check_numbers, window, parent):  # type: ignore[no-untyped-def]
    n, perms = sig.shape
    rows = perms // bands
    size = 1
    while size < 2 * n:
        size *= 2
    mask = np.uint64(size - 1)
    table_key = np.empty(size, np.uint64)
    table_head = np.empty(size, np.int64)
    table_last = np.empty(size, np.int64)
    prev = np.empty(n, np.int64)
    candidates = 0
    links = 0
    for band in range(bands):
        table_head[:] = -1
        salt = np.uint64(band) * _MIX
        for i in range(n):
            if not eligible[i]:
                continue
            key = salt
            for r in range(rows):
                key += np.uint64(sig[i, band * rows + r]) * band_mix[r]
            slot = (fmix64(key) >> _U32) & mask
            while table_head[slot] >= 0 and table_key[slot] != key:
                slot = (slot + np.uint64(1)) & mask
            if table_head[slot] < 0:  # first row of its bucket
                table_key[slot] = key
                table_head[slot] = i
                table_last[slot] = i
                prev[i] = -1
                continue
            # pair i with the bucket's first row and with the `window` rows before it
            head = table_head[slot]
            j = table_last[slot]
            prev[i] = j
            table_last[slot] = i
            steps = 0
            while True:
                candidates += 1
                ri, rj = _find(parent, i), _find(parent, j)
                if ri != rj:  # not yet in one cluster: verify the pair
                    ok = not check_numbers or numbers[i] == numbers[j]
                    if ok:
                        eq = 0
                        for p in range(perms):
                            eq += sig[i, p] == sig[j, p]
                        ok = eq / perms >= threshold
                    if ok:
                        links += 1
                        if ri < rj:
                            parent[rj] = ri
                        else:
                            parent[ri] = rj
                if j == head:
                    break
                steps += 1
                j = prev[j] if steps < window else head
    for i in range(n):
        parent[i] = _find(parent, i)
    return candidates, links


def near_duplicate_clusters(
    hasher: MinHasher,
    sketch: Sketch,
    *,
    threshold: float,
    numbers_must_match: bool,
    window: int = 8,
) -> tuple[np.ndarray, int, int]:
    """(cluster label per text, candidate pairs, linking pairs) from LSH buckets of the signatures.

    In each band, texts with equal band keys share a bucket; every text is paired with the first
    text of its bucket and with the `window` texts before it (all pairs for small buckets, a linear
    number for the huge buckets of templated problems). A pair links its texts when their
    estimated Jaccard similarity is at least `threshold` (and, with `numbers_must_match`, their
    numbers agree); pairs already in one cluster are not checked again. The label of a cluster is
    its smallest text index. Texts without words are never paired.

    Example:
        >>> h = MinHasher(num_perm=32, bands=8, ngram=2)
        >>> sk = h.sketch(["one two three four five", "one two three four five six", "seven eight"])
        >>> near_duplicate_clusters(h, sk, threshold=0.5, numbers_must_match=True)[0].tolist()
        [0, 0, 2]
    """
    n = len(sketch.signatures)
    parent = np.arange(n, dtype=np.int64)
    if n == 0:
        return parent, 0, 0
    candidates, links = _lsh_kernel(
        sketch.signatures,
        sketch.has_words,
        sketch.numbers,
        hasher._band_mix,
        hasher.bands,
        float(threshold),
        bool(numbers_must_match),
        int(window),
        parent,
    )
    return parent, int(candidates), int(links)
