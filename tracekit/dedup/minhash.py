"""MinHash signatures over word n-grams computed straight from UTF-8 bytes, and LSH clustering.

`MinHasher.sketch` runs one compiled loop (numba, `tracekit.dedup.kernels`) per batch: for each
ASCII text it hashes the normalised words and their numbers (`scan_ascii_words`) and the
exact-duplicate key, forms the word n-grams and takes the signature; no list of words or n-grams
is materialised. Texts with non-ASCII
characters go through polars' Unicode normalisation first (NFKC, lowercase, CJK characters as words,
see `tracekit.dedup.ngrams`) and then through the same hashing, so both paths agree on ASCII text.
A batch is split by bytes over `threads` threads (the loops release the GIL).

Signatures are one-permutation MinHash with optimal densification (Li, Owen and Zhang, "One
Permutation Hashing", NIPS 2012; Shrivastava, "Optimal Densification for Fast and Accurate Minwise
Hashing", ICML 2017), each n-gram entering as `_COPIES` (4) copies: copy c of an n-gram is hashed
to 64 bits (`fmix64` of its word hashes, keyed by the seed's c-th key); the top 32 bits pick one of
`num_perm` bins and the low 32 bits are its value; a bin keeps the smallest value it receives. An
empty bin then copies the value of the first non-empty bin on its own pseudo-random probe sequence
(`_probe`, the same for every text). The copies of a set have the same Jaccard similarity as the
set, so two texts agree on a bin with probability exactly their Jaccard similarity, as with
`num_perm` independent permutations, at the cost of four hashes per n-gram instead of `num_perm`;
the copies leave few bins empty in short texts, and filling empty bins costs more than hashing.
The estimate's spread is within a few percent of classic MinHash, lower for short texts
(`tests/dedup/test_dedup_stage.py` checks bias and spread against exact Jaccard). Integer
arithmetic only: signatures are identical on every machine and executor.

`near_duplicate_clusters` buckets the signatures by LSH band (an open-addressing table per band),
checks candidate pairs (similarity, numbers) and joins them with union-find, all in one compiled
loop; with several threads each takes a share of the bands and the forests are merged.

Example:
    >>> hasher = MinHasher(num_perm=64, bands=8, ngram=3, seed=1)
    >>> sig = hasher.signatures(["the cat sat on the mat today", "The cat sat on the mat today!"])
    >>> float(MinHasher.similarity(sig[0], sig[1]))
    1.0
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import numpy as np
import polars as pl
import pyarrow as pa

from tracekit.dedup.kernels import (
    flatten_forest,
    lsh_link,
    merge_forest,
    sketch_ascii_rows,
    sketch_split_rows,
)
from tracekit.dedup.ngrams import (
    NUMBER_PATTERN,
    as_arrow,
    nfkc,
    normalized_words,
    take_texts,
    unicode_exact_keys,
    utf8_buffers,
)

# each n-gram is hashed into this many bins: with ~60 n-grams (a typical prompt) in 128 bins, 17%
# of the bins stay empty instead of 64%, and filling them (densification) was most of the work
_COPIES = 4


@dataclass(frozen=True, slots=True)
class Sketch:
    """Per text: MinHash signature, word presence, numbers hash and exact key (see `exact_keys`)."""

    signatures: np.ndarray  # (n, num_perm) uint32; all max for a text without words
    has_words: np.ndarray  # bool
    numbers: np.ndarray  # uint64, order-free hash of the multiset of numbers (0: none)
    exact: np.ndarray  # uint64

    @classmethod
    def allocate(cls, n: int, num_perm: int) -> Sketch:
        """Uninitialised arrays for n texts, for a kernel to fill every row."""
        return cls(
            signatures=np.empty((n, num_perm), dtype=np.uint32),
            has_words=np.empty(n, np.bool_),
            numbers=np.empty(n, np.uint64),
            exact=np.empty(n, np.uint64),
        )

    def grown(self, capacity: int, *, keep: int) -> Sketch:
        """A copy with room for `capacity` texts, holding this sketch's first `keep` rows."""
        bigger = Sketch.allocate(capacity, self.signatures.shape[1])
        for f in fields(self):
            getattr(bigger, f.name)[:keep] = getattr(self, f.name)[:keep]
        return bigger

    def __getitem__(self, rows: slice) -> Sketch:
        """The rows `rows` (views)."""
        return Sketch(self.signatures[rows], self.has_words[rows], self.numbers[rows], self.exact[rows])

    def put(self, rows: np.ndarray, part: Sketch) -> None:
        """Write `part` (one row per entry of `rows`) into these rows."""
        self.signatures[rows] = part.signatures
        self.has_words[rows] = part.has_words
        self.numbers[rows] = part.numbers
        self.exact[rows] = part.exact


class MinHasher:
    """MinHash signatures (uint32, one row per text) over word n-grams.

    For LSH, `bands * rows == num_perm`; a pair with Jaccard similarity s becomes a candidate with
    probability `1 - (1 - s**rows)**bands`. A batch is sketched on `threads` threads (default: the
    cores this process may use), each taking a contiguous share of its bytes; the compiled loops
    release the GIL, and the result does not depend on the number of threads.
    """

    def __init__(
        self,
        *,
        num_perm: int = 128,
        bands: int = 16,
        ngram: int = 5,
        seed: int = 42,
        threads: int | None = None,
    ) -> None:
        if num_perm % bands:
            raise ValueError(f"num_perm ({num_perm}) must be a multiple of bands ({bands})")
        self.num_perm, self.bands, self.rows, self.ngram = num_perm, bands, num_perm // bands, ngram
        self.threads = max(1, threads if threads is not None else len(os.sched_getaffinity(0)))
        rng = np.random.default_rng(seed)
        self._keys = rng.integers(0, 2**64, size=_COPIES, dtype=np.uint64, endpoint=False)
        # densification: empty bin p copies from bins _probe[p, 0], _probe[p, 1], ... (then p+1, ...)
        self._probe = rng.integers(0, num_perm, size=(num_perm, 32), dtype=np.int64)
        self._band_mix = rng.integers(1, 2**63, size=self.rows, dtype=np.uint64) | np.uint64(1)

    def sketch(
        self,
        texts: Sequence[str | None] | pl.Series | pa.Array | pa.ChunkedArray,
        *,
        out: Sketch | None = None,
    ) -> Sketch:
        """Signatures, word presence, numbers hashes and exact keys of a batch (nulls are empty).

        ASCII texts are sketched straight from their bytes; the kernel flags the others, which then
        go through polars' Unicode normalisation (`sketch_unicode`). With `out` (one row per text,
        e.g. views into larger arrays) the result is written there and returned.
        """
        texts = as_arrow(texts)
        out, is_ascii = self._sketch_bytes(texts, out)
        if not is_ascii.all():
            other = np.flatnonzero(~is_ascii)
            out.put(other, self.sketch_unicode(take_texts(texts, other)))
        return out

    def sketch_ascii(self, texts: pa.Array) -> Sketch:
        """`sketch` of ASCII texts, straight from their bytes (ValueError for a non-ASCII text)."""
        out, is_ascii = self._sketch_bytes(as_arrow(texts), None)
        if not is_ascii.all():
            raise ValueError(f"text {int(np.argmin(is_ascii))} is not ASCII")
        return out

    def _sketch_bytes(self, texts: pa.Array, out: Sketch | None) -> tuple[Sketch, np.ndarray]:
        """(sketch, is_ascii): the rows of non-ASCII texts are left unwritten."""
        data, offsets = utf8_buffers(texts)
        n = len(offsets) - 1
        if out is None:
            out = Sketch.allocate(n, self.num_perm)
        elif out.signatures.shape != (n, self.num_perm):
            raise ValueError(f"out has {out.signatures.shape} signatures for {n} texts of {self.num_perm}")
        is_ascii = np.empty(n, np.bool_)

        def part(lo: int, hi: int) -> None:
            sketch_ascii_rows(
                data, offsets[lo : hi + 1], self.ngram, self._keys, self._probe,
                out.signatures[lo:hi], out.has_words[lo:hi], out.numbers[lo:hi], out.exact[lo:hi],
                is_ascii[lo:hi],
            )  # fmt: skip

        self._in_parts(offsets, part)
        return out, is_ascii

    def _in_parts(self, offsets: np.ndarray, part: Callable[[int, int], None]) -> None:
        """Call `part(lo, hi)` over row ranges of about equal bytes, on the threads when worth it."""
        n = len(offsets) - 1
        shares = min(self.threads, n // 256, int(offsets[-1] - offsets[0]) // (1 << 16))
        if shares <= 1:
            part(0, n)
            return
        cuts = np.searchsorted(offsets, np.linspace(offsets[0], offsets[-1], shares + 1)[1:-1])
        bounds = [0, *np.unique(cuts).tolist(), n]
        list(_pool(self.threads).map(part, bounds[:-1], bounds[1:]))

    def sketch_unicode(self, texts: pl.Series) -> Sketch:
        """`sketch` through polars' Unicode normalisation (any text; used for non-ASCII ones)."""
        wdata, woffsets = utf8_buffers(normalized_words(texts).list.join(" "))
        ndata, noffsets = utf8_buffers(nfkc(texts).str.extract_all(NUMBER_PATTERN).list.join(" "))
        out = Sketch.allocate(len(texts), self.num_perm)

        def part(lo: int, hi: int) -> None:
            sketch_split_rows(
                wdata, woffsets[lo : hi + 1], ndata, noffsets[lo : hi + 1], self.ngram, self._keys, self._probe,
                out.signatures[lo:hi], out.has_words[lo:hi], out.numbers[lo:hi],
            )  # fmt: skip

        self._in_parts(woffsets, part)
        out.exact[:] = unicode_exact_keys(texts)
        return out

    def warm_up(self) -> None:
        """Load (or compile) the compiled kernels now, on a tiny input (about 0.5 s when cached)."""
        sketch = self.sketch(["warm up the kernels", "warm up", "und die Übung"])  # ASCII and not
        near_duplicate_clusters(
            self, signatures=sketch.signatures, has_words=sketch.has_words, numbers=sketch.numbers,
            threshold=0.5, numbers_must_match=True,
        )  # fmt: skip
        merge_forest(np.arange(2, dtype=np.int64), np.arange(2, dtype=np.int64))  # tiny inputs use one forest

    def signatures(self, texts: Sequence[str | None] | pl.Series | pa.Array | pa.ChunkedArray) -> np.ndarray:
        """(len(texts), num_perm) uint32; an empty text gets the all-max signature."""
        return self.sketch(texts).signatures

    @staticmethod
    def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Estimated Jaccard similarity: share of equal signature values (along the last axis)."""
        return (a == b).mean(axis=-1)


_POOLS: dict[int, ThreadPoolExecutor] = {}
os.register_at_fork(after_in_child=_POOLS.clear)  # a forked worker has none of the parent's threads


def _pool(threads: int) -> ThreadPoolExecutor:
    """A process-wide pool per thread count, created on first use."""
    if threads not in _POOLS:
        _POOLS[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tracekit-minhash")
    return _POOLS[threads]


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
    """(cluster label per text, candidate pairs, merges) from LSH buckets of the signatures.

    In each band, texts with equal band keys share a bucket; every text is paired with the first
    text of its bucket and with the `window` texts before it (all pairs for small buckets, a linear
    number for the huge buckets of templated problems). A pair links its texts when their
    estimated Jaccard similarity is at least `threshold` (and, with `numbers_must_match`, their
    numbers agree); pairs already in one cluster are not checked again. The label of a cluster is
    its smallest text index; merges is the number of texts that are not their cluster's label.
    Texts without words are never paired.

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
    # with several threads each takes a share of the bands into a forest of its own; the forests'
    # union has the same clusters (the connected components of the verified candidate pairs)
    shares = max(1, min(hasher.threads, hasher.bands, n // 20_000))
    cuts = np.linspace(0, hasher.bands, shares + 1).astype(int).tolist()
    forests = [parent] + [np.arange(n, dtype=np.int64) for _ in range(shares - 1)]

    def run(k: int) -> int:
        return int(
            lsh_link(
                signatures,
                has_words,
                numbers,
                hasher._band_mix,
                hasher.bands,
                cuts[k],
                cuts[k + 1],
                float(threshold),
                bool(numbers_must_match),
                int(window),
                forests[k],
            )  # fmt: skip
        )

    candidates = run(0) if shares == 1 else sum(_pool(hasher.threads).map(run, range(shares)))
    for other in forests[1:]:
        merge_forest(parent, other)
    return parent, candidates, int(flatten_forest(parent))
