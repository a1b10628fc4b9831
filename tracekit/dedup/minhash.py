"""MinHash signatures over word n-grams computed straight from UTF-8 bytes, and LSH clustering.

`MinHasher.sketch` runs one compiled loop (numba) per batch: for each ASCII text it hashes the
normalised words (`scan_ascii_words`), the numbers and the exact-duplicate key, forms the word
n-grams and takes the signature; no list of words or n-grams is materialised. Texts with non-ASCII
characters go through polars' Unicode normalisation first (NFKC, lowercase, CJK characters as words,
see `tracekit.dedup.ngrams`) and then through the same hashing, so both paths agree on ASCII text.

Hash functions: each n-gram is reduced to a 32-bit key `x` (top half of a 64-bit mix of its word
hashes); permutation p is Dietzfelbinger's multiply-add-shift `h_p(x) = ((a_p * x + b_p) mod 2**64)
>> 32` with `a_p`, `b_p` uniform 64-bit. For 32-bit keys and 32-bit outputs this family is strongly
universal (2-independent), since 64 >= 32 + 32 - 1 (Dietzfelbinger 1996; Thorup, "High speed hashing
for integers and strings", 2015). It is computed as two 32 x 32 -> 64-bit products
(`permutation_hash`), and the permutations are the inner loop, so for each n-gram the 128 values
are one vectorised multiply-add-shift-min over the `a`, `b` arrays (AVX2 `vpmuludq`). Integer
arithmetic only: signatures are identical on every machine and executor.

`near_duplicate_clusters` buckets the signatures by LSH band (an open-addressing table per band),
checks candidate pairs (similarity, numbers) and joins them with union-find, all in one compiled
loop.

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
    arrow_ints,
    as_arrow,
    ascii_mask,
    compiled,
    fmix64,
    nfkc,
    normalized_words,
    scan_ascii_numbers,
    scan_ascii_words,
    scan_exact_key,
    scan_split_numbers,
    scan_split_words,
    take_texts,
    unicode_exact_keys,
    utf8_buffers,
)

_EMPTY = np.iinfo(np.uint32).max
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio) for n-gram mixing
_U32 = np.uint64(32)
_LOW32 = np.uint64(0xFFFFFFFF)


@compiled
def permutation_hash(a_lo, a_hi, b, x):  # type: ignore[no-untyped-def]
    """`((a * x + b) mod 2**64) >> 32` for a 32-bit key x, with a = a_hi * 2**32 + a_lo.

    Split so that both products are 32 x 32 -> 64-bit multiplies (one SIMD instruction on AVX2,
    `vpmuludq`): a * x = a_lo * x + 2**32 * a_hi * x, and the second term only adds `a_hi * x`
    (mod 2**32) to the shifted result.
    """
    t = np.uint64(a_lo) * x + b
    return np.uint32(((t >> _U32) + np.uint64(a_hi) * x) & _LOW32)


@compiled
def _signature_row(words, nw, ngram, a_lo, a_hi, b, cur, out):  # type: ignore[no-untyped-def]
    """MinHash of the word n-grams of `words[:nw]` into `out` (left untouched when nw == 0).

    A text with fewer than `ngram` words (but at least one) has one n-gram: all its words.
    """
    perms = b.shape[0]
    if nw == 0 or perms == 0:
        return
    for p in range(perms):
        cur[p] = np.uint32(0xFFFFFFFF)
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
            cur[p] = min(cur[p], permutation_hash(a_lo[p], a_hi[p], b[p], x))
    for p in range(perms):
        out[p] = cur[p]


@compiled
def _sketch_ascii(data, offsets, ngram, a_lo, a_hi, b, sig, has_words, numbers, exact):  # type: ignore[no-untyped-def]
    n = len(offsets) - 1
    longest = 0
    for k in range(n):
        longest = max(longest, offsets[k + 1] - offsets[k])
    words = np.empty(longest // 2 + 2, np.uint64)
    scratch = np.empty((longest // 8 + 2) * 8, np.uint8)
    cur = np.empty(b.shape[0], np.uint32)
    for k in range(n):
        lo, hi = offsets[k], offsets[k + 1]
        nw = scan_ascii_words(data, lo, hi, words)
        numbers[k] = scan_ascii_numbers(data, lo, hi)
        exact[k] = scan_exact_key(data, lo, hi, scratch)
        has_words[k] = nw > 0
        _signature_row(words, nw, ngram, a_lo, a_hi, b, cur, sig[k])


@compiled
def _sketch_split(wdata, woffsets, ndata, noffsets, ngram, a_lo, a_hi, b, sig, has_words, numbers):  # type: ignore[no-untyped-def]
    longest = 0
    for k in range(len(woffsets) - 1):
        longest = max(longest, woffsets[k + 1] - woffsets[k])
    words = np.empty(longest // 2 + 2, np.uint64)
    cur = np.empty(b.shape[0], np.uint32)
    for k in range(len(woffsets) - 1):
        nw = scan_split_words(wdata, woffsets[k], woffsets[k + 1], words)
        has_words[k] = nw > 0
        numbers[k] = scan_split_numbers(ndata, noffsets[k], noffsets[k + 1])
        _signature_row(words, nw, ngram, a_lo, a_hi, b, cur, sig[k])


@dataclass(frozen=True, slots=True)
class Sketch:
    """Per text: MinHash signature, word presence, numbers hash and exact key (see `exact_keys`)."""

    signatures: np.ndarray  # (n, num_perm) uint32; all max for a text without words
    has_words: np.ndarray  # bool
    numbers: np.ndarray  # uint64, order-free hash of the multiset of numbers (0: none)
    exact: np.ndarray  # uint64

    @classmethod
    def empty(cls, n: int, num_perm: int) -> Sketch:
        return cls(
            signatures=np.full((n, num_perm), _EMPTY, dtype=np.uint32),
            has_words=np.zeros(n, np.bool_),
            numbers=np.zeros(n, np.uint64),
            exact=np.zeros(n, np.uint64),
        )

    def put(self, rows: np.ndarray, part: Sketch) -> None:
        """Write `part` (one row per entry of `rows`) into these rows."""
        self.signatures[rows] = part.signatures
        self.has_words[rows] = part.has_words
        self.numbers[rows] = part.numbers
        self.exact[rows] = part.exact


class MinHasher:
    """MinHash signatures (uint32, one row per text) over word n-grams.

    For LSH, `bands * rows == num_perm`; a pair with Jaccard similarity s becomes a candidate with
    probability `1 - (1 - s**rows)**bands`.
    """

    def __init__(self, *, num_perm: int = 128, bands: int = 16, ngram: int = 5, seed: int = 42) -> None:
        if num_perm % bands:
            raise ValueError(f"num_perm ({num_perm}) must be a multiple of bands ({bands})")
        self.num_perm, self.bands, self.rows, self.ngram = num_perm, bands, num_perm // bands, ngram
        rng = np.random.default_rng(seed)
        a = rng.integers(0, 2**64, size=num_perm, dtype=np.uint64, endpoint=False)
        self._a_lo = (a & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        self._a_hi = (a >> np.uint64(32)).astype(np.uint32)
        self._b = rng.integers(0, 2**64, size=num_perm, dtype=np.uint64, endpoint=False)
        self._band_mix = rng.integers(1, 2**63, size=self.rows, dtype=np.uint64) | np.uint64(1)

    def sketch(self, texts: Sequence[str | None] | pl.Series | pa.Array | pa.ChunkedArray) -> Sketch:
        """Signatures, word presence, numbers hashes and exact keys of a batch (nulls are empty)."""
        texts = as_arrow(texts)
        is_ascii = ascii_mask(texts)
        if is_ascii.all():
            return self.sketch_ascii(texts)
        out = Sketch.empty(len(texts), self.num_perm)
        rows = np.flatnonzero(is_ascii)
        out.put(rows, self.sketch_ascii(texts.take(arrow_ints(rows))))
        other = np.flatnonzero(~is_ascii)
        out.put(other, self.sketch_unicode(take_texts(texts, other)))
        return out

    def sketch_ascii(self, texts: pa.Array) -> Sketch:
        """`sketch` of ASCII texts, straight from their bytes."""
        data, offsets = utf8_buffers(texts)
        out = Sketch.empty(len(offsets) - 1, self.num_perm)
        _sketch_ascii(
            data, offsets, self.ngram, self._a_lo, self._a_hi, self._b,
            out.signatures, out.has_words, out.numbers, out.exact,
        )  # fmt: skip
        return out

    def sketch_unicode(self, texts: pl.Series) -> Sketch:
        """`sketch` through polars' Unicode normalisation (any text; used for non-ASCII ones)."""
        wdata, woffsets = utf8_buffers(normalized_words(texts).list.join(" "))
        ndata, noffsets = utf8_buffers(nfkc(texts).str.extract_all(NUMBER_PATTERN).list.join(" "))
        out = Sketch.empty(len(texts), self.num_perm)
        _sketch_split(
            wdata, woffsets, ndata, noffsets, self.ngram, self._a_lo, self._a_hi, self._b,
            out.signatures, out.has_words, out.numbers,
        )  # fmt: skip
        out.exact[:] = unicode_exact_keys(texts)
        return out

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
    # band keys, one contiguous row per band
    band_keys = np.empty((bands, n), np.uint64)
    for i in range(n):
        for band in range(bands):
            key = np.uint64(band) * _MIX
            for r in range(rows):
                key += np.uint64(sig[i, band * rows + r]) * band_mix[r]
            band_keys[band, i] = key
    keys = band_keys.view(np.int64)
    table = np.empty((size, 3), np.int64)  # key, first row, last row: one cache line per probe
    prev = np.empty(n, np.int64)
    candidates = 0
    links = 0
    for band in range(bands):
        table[:, 1] = -1
        for i in range(n):
            if not eligible[i]:
                continue
            key = keys[band, i]
            slot = (fmix64(band_keys[band, i]) >> _U32) & mask
            while table[slot, 1] >= 0 and table[slot, 0] != key:
                slot = (slot + np.uint64(1)) & mask
            if table[slot, 1] < 0:  # first row of its bucket
                table[slot, 0] = key
                table[slot, 1] = i
                table[slot, 2] = i
                prev[i] = -1
                continue
            # pair i with the bucket's first row and with the `window` rows before it
            head = table[slot, 1]
            j = table[slot, 2]
            prev[i] = j
            table[slot, 2] = i
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
    *,
    signatures: np.ndarray,
    has_words: np.ndarray,
    numbers: np.ndarray,
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
        >>> near_duplicate_clusters(h, signatures=sk.signatures, has_words=sk.has_words,
        ...     numbers=sk.numbers, threshold=0.5, numbers_must_match=True)[0].tolist()
        [0, 0, 2]
    """
    n = len(signatures)
    parent = np.arange(n, dtype=np.int64)
    if n == 0:
        return parent, 0, 0
    candidates, links = _lsh_kernel(
        signatures,
        has_words,
        numbers,
        hasher._band_mix,
        hasher.bands,
        float(threshold),
        bool(numbers_must_match),
        int(window),
        parent,
    )
    return parent, int(candidates), int(links)
