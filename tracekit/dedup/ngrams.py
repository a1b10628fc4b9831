"""Vectorised text normalisation and word n-gram hashing (shared by dedup and decontamination).

Normalisation is math-aware and keeps digits: NFKC, lowercase, LaTeX command names removed
(`\\frac{3}{4}` -> `3 4`), punctuation, braces and `$` dropped, and every CJK character is its own
word (Chinese and Japanese are written without spaces). Problems that differ only in their numbers
therefore keep different words.

`normalized_words` / `ngram_hashes` (decontamination) run in polars (Rust) and numpy over a whole
batch; their hashes come from polars' `Series.hash`, stable within one polars version: an index and
the texts checked against it must be hashed in the same run (the stage does so). The byte scanners
of `tracekit.dedup.kernels` (dedup) hash with their own integer functions, identical on every
machine.

Example:
    >>> words = normalized_words(["Find $x^2$ if \\\\frac{3}{4}x = 6."])
    >>> words.to_list()
    [['find', 'x', '2', 'if', '3', '4', 'x', '6']]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from tracekit.dedup.kernels import exact_keys_ascii, exact_keys_plain

_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}"
# One CJK character, or a run of other letters/digits.
WORD_PATTERN = rf"[{_CJK}]|[\p{{L}}\p{{N}}--{_CJK}]+"
_LATEX_COMMAND = r"\\[a-zA-Z]+"
NUMBER_PATTERN = r"\d+(?:\.\d+)?"  # the numbers of a text (kept for the near-duplicate guard)
_WORD_SEED = 0x7F4A7C15
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio) for n-gram mixing


def nfkc(s: pl.Series) -> pl.Series:
    """NFKC-normalise the non-ASCII texts only (ASCII is already normal; NFKC is the slow part)."""
    s = s.fill_null("")
    mask = s.str.contains(r"[^\x00-\x7F]")
    if not mask.any():
        return s
    idx = mask.arg_true()
    return s.scatter(idx, s.gather(idx).str.normalize("NFKC"))


def normalized_words(texts: Sequence[str | None] | pl.Series) -> pl.Series:
    """One list of normalised words per text (nulls become empty lists)."""
    s = texts if isinstance(texts, pl.Series) else pl.Series("t", list(texts), dtype=pl.String)
    return (
        nfkc(s)
        .str.to_lowercase()
        .str.replace_all(_LATEX_COMMAND, " ")
        .str.extract_all(WORD_PATTERN)
        .fill_null([])
    )


@dataclass(frozen=True, slots=True)
class NgramHashes:
    """Word n-gram hashes of a batch of texts.

    `hashes[offsets[i]:offsets[i + 1]]` are the n-gram hashes of text i, in order, and `starts` the
    index of each n-gram's first word inside its text (to recover the n-gram's words).
    """

    hashes: np.ndarray  # uint64
    offsets: np.ndarray  # int64, len = number of texts + 1
    starts: np.ndarray  # int64, word index of each n-gram inside its text

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)


def word_hashes(words: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(flat uint64 word hashes, words per text) for a Series of word lists."""
    lengths = words.list.len().fill_null(0).to_numpy().astype(np.int64)
    flat = words.explode().drop_nulls()
    hashed = flat.hash(seed=_WORD_SEED).to_numpy() if len(flat) else np.zeros(0, np.uint64)
    if len(hashed) != int(lengths.sum()):  # pragma: no cover - guards a polars behaviour change
        raise RuntimeError("word count mismatch while hashing")
    return hashed.astype(np.uint64, copy=False), lengths


def ngram_hashes(words: pl.Series, *, n: int, short_texts: bool) -> NgramHashes:
    """Hashes of the word n-grams of every text.

    A text with fewer than n words has no n-gram; with `short_texts=True` it gets one hash of all its
    words instead (so short prompts still dedup), with False it gets none (decontamination: an
    8-gram match needs 8 words).
    """
    w, lengths = word_hashes(words)
    ends = np.cumsum(lengths)
    begins = ends - lengths
    num = len(w) - n + 1
    with np.errstate(over="ignore"):
        if num > 0:
            h = w[:num].copy()
            for j in range(1, n):
                h = h * _MIX + w[j : j + num]
            # valid n-grams lie inside one text
            end_of_word = np.repeat(ends, lengths)[:num]
            pos = np.arange(num, dtype=np.int64)
            valid = pos + n <= end_of_word
            h, pos = h[valid], pos[valid]
        else:
            h, pos = np.zeros(0, np.uint64), np.zeros(0, np.int64)
        counts = np.maximum(lengths - n + 1, 0)
        starts = pos - np.repeat(begins, counts)
        if short_texts:
            short = np.flatnonzero((lengths > 0) & (lengths < n))
            if len(short):
                extra = np.empty(len(short), np.uint64)
                for k, i in enumerate(short):
                    acc = np.uint64(0)
                    for x in w[begins[i] : ends[i]]:
                        acc = acc * _MIX + x
                    extra[k] = acc ^ np.uint64(lengths[i])
                # splice one hash per short text at its place
                insert_at = np.cumsum(counts)[short]
                h = np.insert(h, insert_at, extra)
                starts = np.insert(starts, insert_at, 0)
                counts = counts.copy()
                counts[short] = 1
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return NgramHashes(hashes=h, offsets=offsets, starts=starts)


# pyarrow imports pandas (about 0.6 s) when it converts Python or numpy values (pa.array, scalars,
# to_numpy); these helpers move data between numpy and arrow through buffers or polars instead.


def arrow_ints(values: np.ndarray, *, null: np.ndarray | None = None) -> pa.Array:
    """A numpy integer array as an arrow array, null where `null` is true."""
    values = np.ascontiguousarray(values)
    validity = None if null is None else pa.py_buffer(np.packbits(~null, bitorder="little"))
    return pa.Array.from_buffers(
        pa.from_numpy_dtype(values.dtype), len(values), [validity, pa.py_buffer(values)]
    )


def to_numpy(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An arrow array without nulls as numpy."""
    return pl.Series(values).to_numpy()


def ascii_mask(texts: pa.Array) -> np.ndarray:
    """True for each text made of ASCII bytes only (texts without nulls, see `as_arrow`)."""
    return to_numpy(pc.string_is_ascii(texts))


def as_arrow(texts: Sequence[str | None] | pl.Series | pa.Array | pa.ChunkedArray) -> pa.Array:
    """The texts as one arrow large_string array with nulls replaced by empty strings."""
    if isinstance(texts, pl.Series):
        arr: pa.Array | pa.ChunkedArray = texts.to_arrow()
    elif isinstance(texts, pa.Array | pa.ChunkedArray):
        arr = texts
    else:
        arr = pl.Series("t", list(texts), dtype=pl.String).to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        arr = pl.Series(arr).fill_null("").to_arrow()
    return arr.cast(pa.large_string())


def utf8_buffers(
    texts: Sequence[str | None] | pl.Series | pa.Array | pa.ChunkedArray,
) -> tuple[np.ndarray, np.ndarray]:
    """(UTF-8 bytes as uint8, int64 offsets with len(texts) + 1 entries); nulls are empty texts."""
    arr = as_arrow(texts)
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], np.int64, count=n + 1, offset=arr.offset * 8)
    buf = arr.buffers()[2]
    data = np.frombuffer(buf, np.uint8) if buf is not None else np.zeros(0, np.uint8)
    return data, offsets


def exact_keys(texts: Sequence[str | None] | pl.Series | pa.Array | pa.ChunkedArray) -> np.ndarray:
    """uint64 key per text, equal for texts equal after NFKC, lowercasing and whitespace collapsing.

    ASCII texts are hashed straight from their bytes; the others are normalised by polars first
    (NFKC, Unicode lowercase, `\\s+` -> one space, stripped) and hashed the same way.

    Example:
        >>> a, b, c = exact_keys(["Two  Apples\\n", "two apples", "two apple"])
        >>> bool(a == b), bool(a == c)
        (True, False)
    """
    texts = as_arrow(texts)
    data, offsets = utf8_buffers(texts)
    out = np.empty(len(offsets) - 1, np.uint64)
    is_ascii = ascii_mask(texts)
    rows = np.flatnonzero(is_ascii)
    vals = np.empty(len(rows), np.uint64)
    exact_keys_ascii(data, offsets, rows, vals)
    out[rows] = vals
    other = np.flatnonzero(~is_ascii)
    if len(other):
        out[other] = unicode_exact_keys(take_texts(texts, other))
    return out


def unicode_exact_keys(texts: pl.Series) -> np.ndarray:
    """`exact_keys` through polars' Unicode normalisation (any text; used for non-ASCII ones)."""
    norm = nfkc(texts).str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()
    data, offsets = utf8_buffers(norm)
    out = np.empty(len(offsets) - 1, np.uint64)
    exact_keys_plain(data, offsets, out)
    return out


def take_texts(
    texts: Sequence[str | None] | pl.Series | pa.Array | pa.ChunkedArray, rows: np.ndarray
) -> pl.Series:
    """The texts at `rows` as a polars Series."""
    if isinstance(texts, pl.Series):
        return texts.gather(rows)
    if isinstance(texts, pa.Array | pa.ChunkedArray):
        s = pl.Series("t", texts)
        return s.gather(rows)
    return pl.Series("t", [texts[int(i)] for i in rows], dtype=pl.String)
