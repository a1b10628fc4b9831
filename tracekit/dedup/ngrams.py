"""Vectorised text normalisation and word n-gram hashing (shared by dedup and decontamination).

Normalisation is math-aware and keeps digits: NFKC, lowercase, LaTeX command names removed
(`\\frac{3}{4}` -> `3 4`), punctuation, braces and `$` dropped, and every CJK character is its own
word (Chinese and Japanese are written without spaces). Problems that differ only in their numbers
therefore keep different words.

`normalized_words` / `ngram_hashes` (decontamination) run in polars (Rust) and numpy over a whole
batch; their hashes come from polars' `Series.hash`, stable within one polars version: an index and
the texts checked against it must be hashed in the same run (the stage does so). The byte scanners
below (dedup) hash with their own integer functions, identical on every machine.

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


# -- byte-level scanning (numba) ---------------------------------------------------------------
# The dedup stage scans UTF-8 bytes directly instead of building word lists: a pure-ASCII text is
# normalised, split into words and hashed in one loop (`scan_ascii_words`); a text with non-ASCII
# characters is first normalised by `normalized_words` (polars), its words joined with single
# spaces, and that string is split on spaces (`scan_split_words`). Both use the same byte hash, so
# an ASCII text gives the same word hashes either way (tests check it). The functions are plain
# Python compiled by numba; without numba they run as Python (same results, slow).

_SEED = np.uint64(0xCBF29CE484222325)
_BLOCK_MUL = np.uint64(0x9E3779B97F4A7C15)
_FMIX_1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_U8 = np.uint64(8)
_U32 = np.uint64(32)
_U33 = np.uint64(33)
_U64 = np.uint64(64)
# byte tables: lowercase (ASCII), word byte (ASCII letter/digit, or any byte of a multi-byte character)
_LOWER = np.arange(256, dtype=np.uint8)
_LOWER[65:91] += 32
_WORD_BYTE = np.zeros(256, np.bool_)
_WORD_BYTE[48:58] = _WORD_BYTE[65:91] = _WORD_BYTE[97:123] = _WORD_BYTE[128:] = True
_LETTER = np.zeros(256, np.bool_)
_LETTER[65:91] = _LETTER[97:123] = True
_DIGIT = np.zeros(256, np.bool_)
_DIGIT[48:58] = True
_SPACE = np.zeros(256, np.bool_)
_SPACE[9:14] = _SPACE[32] = True  # what Unicode White_Space (regex \s) holds in ASCII
_SPACE_U8 = _SPACE.astype(np.uint8)
_WORD_LOWER = np.where(_WORD_BYTE, _LOWER, 0).astype(np.uint8)  # a word byte lowercased, else 0
_EXACT_BYTE = _LOWER.copy()  # the byte written for the exact key: lowercase, whitespace as " "
_EXACT_BYTE[_SPACE] = 32


def compiled(fn):  # type: ignore[no-untyped-def]
    try:
        import numba
    except ImportError:  # pragma: no cover - pure-Python fallback
        return fn
    return numba.njit(cache=True, nogil=True)(fn)


@compiled
def fmix64(h):  # type: ignore[no-untyped-def]
    """MurmurHash3's 64-bit finaliser: a bijection that spreads every input bit over the output."""
    h ^= h >> _U33
    h *= _FMIX_1
    h ^= h >> _U33
    h *= _FMIX_2
    h ^= h >> _U33
    return h


@compiled
def _mix_block(h, block):  # type: ignore[no-untyped-def]
    # one multiply per 8 bytes; the xor-shift folds high bits down so every bit reaches the output
    h = (h ^ block) * _BLOCK_MUL
    return h ^ (h >> _U32)


@compiled
def hash_bytes(data, lo, hi):  # type: ignore[no-untyped-def]
    """64-bit hash of `data[lo:hi]` with ASCII letters lowercased.

    Bytes are packed little-endian into 64-bit blocks, one multiply per block.
    """
    h = _SEED
    acc = np.uint64(0)
    k = 0
    for i in range(lo, hi):
        acc |= np.uint64(_LOWER[data[i]]) << np.uint64(8 * k)
        k += 1
        if k == 8:
            h = _mix_block(h, acc)
            acc = np.uint64(0)
            k = 0
    return fmix64(_mix_block(_mix_block(h, acc), np.uint64(hi - lo)))


@compiled
def scan_ascii_words(data, lo, hi, out):  # type: ignore[no-untyped-def]
    """Hash the words of an ASCII text `data[lo:hi]` into `out`; return the word count.

    Same words as `normalized_words` for ASCII: lowercase, `\\command` names removed, a word is a
    run of letters and digits. Each word is hashed as it is scanned, with `hash_bytes`' result.
    """
    n = 0
    i = lo
    while i < hi:
        v = _WORD_LOWER[data[i]]
        if v != 0:  # a word starts: pack its lowercase bytes 8 to a block, as hash_bytes does
            start = i
            h = _SEED
            acc = np.uint64(0)
            shift = np.uint64(0)
            while True:
                acc |= np.uint64(v) << shift
                shift += _U8
                if shift == _U64:
                    h = _mix_block(h, acc)
                    acc = np.uint64(0)
                    shift = np.uint64(0)
                i += 1
                if i >= hi:
                    break
                v = _WORD_LOWER[data[i]]
                if v == 0:
                    break
            out[n] = fmix64(_mix_block(_mix_block(h, acc), np.uint64(i - start)))
            n += 1
        elif data[i] == 92 and i + 1 < hi and _LETTER[data[i + 1]]:  # backslash + LaTeX command name
            i += 1
            while i < hi and _LETTER[data[i]]:
                i += 1
        else:
            i += 1
    return n


@compiled
def scan_exact_key(data, lo, hi, scratch):  # type: ignore[no-untyped-def]
    """(key, is_ascii): `hash_bytes` of `data[lo:hi]` lowercased, whitespace runs collapsed to one
    space, stripped; and whether every byte is ASCII (below 128), for the caller to check.

    The normalised bytes are written branch-free into `scratch` (uint8, at least hi - lo + 8
    bytes, a multiple of 8) and hashed 8 at a time through a uint64 view; the view reads the
    blocks little-endian, as `hash_bytes` packs them, on the little-endian CPUs tracekit runs on
    (x86-64, aarch64).
    """
    j = 0
    prev_space = np.uint8(1)  # drops leading whitespace
    bits = np.uint8(0)
    for i in range(lo, hi):
        c = data[i]
        bits |= c
        space = _SPACE_U8[c]
        scratch[j] = _EXACT_BYTE[c]
        j += 1 - int(space & prev_space)  # table lookups and arithmetic: no branch per byte
        prev_space = space
    if j > 0 and scratch[j - 1] == 32:  # trailing whitespace
        j -= 1
    blocks = scratch.view(np.uint64)
    h = _SEED
    for q in range(j // 8):
        h = _mix_block(h, blocks[q])
    acc = np.uint64(0)
    for t in range(j - j % 8, j):
        acc |= np.uint64(scratch[t]) << np.uint64(8 * (t % 8))
    return fmix64(_mix_block(_mix_block(h, acc), np.uint64(j))), bits < 128


@compiled
def scan_ascii_numbers(data, lo, hi):  # type: ignore[no-untyped-def]
    """Order-free hash of the multiset of numbers (`\\d+(?:\\.\\d+)?`) in an ASCII text (0: none)."""
    acc = np.uint64(0)
    i = lo
    while i < hi:
        if _DIGIT[data[i]]:
            start = i
            while i < hi and _DIGIT[data[i]]:
                i += 1
            if i + 1 < hi and data[i] == 46 and _DIGIT[data[i + 1]]:
                i += 1
                while i < hi and _DIGIT[data[i]]:
                    i += 1
            acc += fmix64(hash_bytes(data, start, i))
            continue
        i += 1
    return acc


@compiled
def scan_split_words(data, lo, hi, out):  # type: ignore[no-untyped-def]
    """Hash the space-separated tokens of `data[lo:hi]` into `out` (same hash as scan_ascii_words)."""
    n = 0
    i = lo
    while i < hi:
        if data[i] == 32:
            i += 1
            continue
        start = i
        while i < hi and data[i] != 32:
            i += 1
        out[n] = hash_bytes(data, start, i)
        n += 1
    return n


@compiled
def scan_split_numbers(data, lo, hi):  # type: ignore[no-untyped-def]
    """`scan_ascii_numbers` for numbers already extracted and joined with spaces."""
    acc = np.uint64(0)
    i = lo
    while i < hi:
        if data[i] == 32:
            i += 1
            continue
        start = i
        while i < hi and data[i] != 32:
            i += 1
        acc += fmix64(hash_bytes(data, start, i))
    return acc


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


@compiled
def _exact_keys_ascii(data, offsets, rows, out):  # type: ignore[no-untyped-def]
    longest = 0
    for k in range(len(rows)):
        longest = max(longest, offsets[rows[k] + 1] - offsets[rows[k]])
    scratch = np.empty((longest // 8 + 2) * 8, np.uint8)
    for k in range(len(rows)):
        out[k] = scan_exact_key(data, offsets[rows[k]], offsets[rows[k] + 1], scratch)[0]


@compiled
def _exact_keys_plain(data, offsets, out):  # type: ignore[no-untyped-def]
    for k in range(len(offsets) - 1):
        out[k] = hash_bytes(data, offsets[k], offsets[k + 1])


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
    _exact_keys_ascii(data, offsets, rows, vals)
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
    _exact_keys_plain(data, offsets, out)
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
