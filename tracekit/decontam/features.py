"""Benchmark items as tokens: the index of the whole-item and rephrase checks, and the batch scan.

`ItemIndex.build` tokenises every benchmark item once (`tracekit.decontam.kernels.scan_tokens`)
and keeps:
- for whole-item matching, the token sequences of the short items (fewer words than the n-gram
  length), keyed by their first two tokens;
- for rephrase similarity, each item's distinct features with an IDF weight
  (`log(max(N, 1000) / df)` over the N items; 0 for stopwords and for features in more than
  `max(32, 2% of N)` items, which say nothing about a problem), inverted lists (feature -> items),
  each item's total weight, and the sorted set of its distinct numbers.

`ItemIndex.scan(texts)` gives, per text, the short items found whole and the best rephrase
candidates with their score (weighted containment: the share of the item's feature weight that the
text holds, the weight counted at least `NORM_FLOOR`) and how their numbers compare. Scores depend only on the item index, never on the
other texts of a batch.

Example:
    >>> index = ItemIndex.build(
    ...     texts=["Janet's ducks lay 16 eggs per day and she sells them at $2 each.", "Simplify $\\\\sqrt{242}$."],
    ...     short=[False, True],
    ... )
    >>> r = index.scan(["Every day Janet's ducks lay 16 eggs; she sells each for $2.", "Please simplify $\\\\sqrt{242}$ ."])
    >>> r.whole[1].tolist()[:1], int(r.cand_item[0, 0]), int(r.cand_missing[0, 0])
    ([1], 0, 0)
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa

from tracekit.decontam.kernels import (
    KIND_NUMBER,
    REWRITE_COMMAND,
    REWRITE_NUMBER,
    item_pairs_of_rows,
    scan_rows,
    tokens_of_rows,
)
from tracekit.dedup.ngrams import as_arrow, ascii_mask, nfkc, utf8_buffers

# "one" is left out: it is as often a pronoun or an article ("one bag") as a number
NUMBER_WORDS = [
    "zero",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
] + ["thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
NUMBER_WORD_VALUES = [0, *range(2, 21), 30, 40, 50, 60, 70, 80, 90]
COMMAND_ALIASES = {
    "dfrac": "frac", "tfrac": "frac", "dbinom": "binom", "tbinom": "binom", "le": "leq", "ge": "geq",
    "ne": "neq", "lvert": "vert", "rvert": "vert",
}  # fmt: skip
# layout and font commands: dropped (their argument's words stay)
DROPPED_COMMANDS = [
    "left",
    "right",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "displaystyle",
    "textstyle",
    "quad",
    "qquad",
    "mathrm",
    "text",
    "textbf",
    "textit",
    "mathbf",
    "mathit",
    "mathsf",
    "mathcal",
    "mbox",
    "operatorname",
    "hspace",
    "vspace",
    "limits",
    "nolimits",
    "emph",
    "boldsymbol",
    "mathbb",
]
# function words and instruction words: weight 0 (they say nothing about which problem it is)
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "then",
        "else",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "from",
        "with",
        "without",
        "into",
        "onto",
        "over",
        "under",
        "about",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "do",
        "does",
        "did",
        "done",
        "have",
        "has",
        "had",
        "having",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "which",
        "who",
        "whom",
        "whose",
        "what",
        "when",
        "where",
        "why",
        "how",
        "than",
        "such",
        "so",
        "not",
        "no",
        "nor",
        "can",
        "could",
        "will",
        "would",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "each",
        "every",
        "all",
        "any",
        "some",
        "both",
        "either",
        "neither",
        "other",
        "another",
        "same",
        "own",
        "more",
        "most",
        "less",
        "least",
        "many",
        "much",
        "few",
        "several",
        "only",
        "also",
        "just",
        "very",
        "too",
        "up",
        "down",
        "out",
        "off",
        "again",
        "further",
        "once",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "he",
        "him",
        "his",
        "she",
        "her",
        "they",
        "them",
        "their",
        "one",
        "s",
        "t",
        "find",
        "compute",
        "determine",
        "calculate",
        "evaluate",
        "solve",
        "show",
        "prove",
        "answer",
        "express",
        "give",
        "write",
        "let",
        "suppose",
        "given",
        "following",
        "problem",
        "question",
        "value",
        "what's",
        "whats",
        "use",
        "using",
        "note",
    ]
)


@functools.cache
def _rewrite_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted keys, values, kinds) that the token scan looks its words and commands up in."""
    words = tokenize(NUMBER_WORDS, rewrite=False)[0]
    values = tokenize([str(v) for v in NUMBER_WORD_VALUES], rewrite=False)[0]
    cmd_from = tokenize([f"\\{a}" for a in COMMAND_ALIASES], rewrite=False)[0]
    cmd_to = tokenize([f"\\{b}" for b in COMMAND_ALIASES.values()], rewrite=False)[0]
    dropped = tokenize([f"\\{c}" for c in DROPPED_COMMANDS], rewrite=False)[0]
    keys = np.concatenate([words, cmd_from, dropped])
    vals = np.concatenate([values, cmd_to, np.zeros(len(dropped), np.uint64)])
    kinds = np.concatenate(
        [
            np.full(len(words), REWRITE_NUMBER, np.uint8),
            np.full(len(cmd_from) + len(dropped), REWRITE_COMMAND, np.uint8),
        ]
    )
    order = np.argsort(keys)
    return keys[order], vals[order], kinds[order]


# least total weight an item is scored against (about three rare features): an item with fewer
# weighted features (a one-line task) cannot reach a high score from one shared word
NORM_FLOOR = 24.0
_NO_REWRITES = (np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, np.uint8))


def normalised(texts: Sequence[str | None] | pl.Series | pa.Array | pa.ChunkedArray) -> pa.Array:
    """The texts with their non-ASCII ones NFKC-normalised and lowercased (the kernel lowercases ASCII)."""
    arr = as_arrow(texts)
    is_ascii = ascii_mask(arr)
    if is_ascii.all():
        return arr
    s = pl.Series("t", arr)
    idx = pl.Series(np.flatnonzero(~is_ascii))
    return s.scatter(idx, nfkc(s.gather(idx)).str.to_lowercase()).to_arrow().cast(pa.large_string())


def tokenize(
    texts: Sequence[str | None], *, rewrite: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(exact token hashes, feature hashes, kinds, offsets): text i's tokens are offsets[i]:offsets[i+1].

    `rewrite=False` skips the number-word and command rewrites (used to build their own table).
    """
    data, offsets = utf8_buffers(normalised(texts))
    room = int(offsets[-1] - offsets[0]) + len(offsets)
    tok, feat = np.empty(room, np.uint64), np.empty(room, np.uint64)
    kind, counts = np.empty(room, np.uint8), np.empty(len(offsets) - 1, np.int64)
    keys, vals, kinds = _rewrite_tables() if rewrite else _NO_REWRITES
    tokens_of_rows(data, offsets, keys, vals, kinds, tok, feat, kind, counts)
    out = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=out[1:])
    n = int(out[-1])
    return tok[:n], feat[:n], kind[:n], out


def stopword_features() -> np.ndarray:
    """Feature hashes of the stopwords (sorted)."""
    return np.unique(tokenize(sorted(STOPWORDS))[1])


@dataclass(frozen=True)
class ScanResult:
    """Per text: whole-item hits and the best rephrase candidates (see `ItemIndex.scan`)."""

    whole: np.ndarray  # (n, max_whole) int32 item index, -1 padded
    cand_item: np.ndarray  # (n, topk) int32, best first, -1 padded
    cand_score: np.ndarray  # (n, topk) float32 weighted containment of the item in the text
    cand_missing: np.ndarray  # (n, topk) int32: distinct item numbers the text lacks
    cand_extra: np.ndarray  # (n, topk) int32: text numbers beyond the item's count of each value
    cand_math: np.ndarray  # (n, topk) float32: share of the item's math-token pairs in the text


@dataclass(frozen=True)
class ItemIndex:
    """Tokens, weights and numbers of benchmark items (built once per stage run)."""

    wi_keys: np.ndarray
    wi_items: np.ndarray
    wi_off: np.ndarray
    wi_toks: np.ndarray
    wi_kinds: np.ndarray
    vocab: np.ndarray
    weights: np.ndarray
    post_off: np.ndarray
    post_items: np.ndarray
    item_norm: np.ndarray
    num_off: np.ndarray
    item_nums: np.ndarray
    pair_off: np.ndarray
    item_pairs: np.ndarray
    math_pairs: np.ndarray = field(init=False)  # per item: how many distinct math-token pairs
    distinct_numbers: np.ndarray  # per item: how many different numbers it has
    threads: int

    @classmethod
    def build(
        cls,
        *,
        texts: Sequence[str],
        short: Sequence[bool] | np.ndarray,
        rephrase: bool = True,
        threads: int | None = None,
    ) -> ItemIndex:
        """Index the items `texts`; `short[i]` marks the items to match whole; `rephrase=False`
        leaves the similarity index empty (whole-item matching only)."""
        n = len(texts)
        tok, feat, kind, off = tokenize(list(texts))
        counts = np.diff(off)
        item_of = np.repeat(np.arange(n, dtype=np.int64), counts)
        # whole-item index: the exact token sequence of each short item with 2+ tokens
        short_arr = np.asarray(short, dtype=bool) & (counts >= 2)
        wi_items = np.flatnonzero(short_arr)
        wi_counts = np.zeros(n, np.int64)
        wi_counts[wi_items] = counts[wi_items]
        wi_off = np.zeros(n + 1, np.int64)
        np.cumsum(wi_counts, out=wi_off[1:])
        take = short_arr[item_of]
        wi_toks, wi_kinds = tok[take], kind[take]
        with np.errstate(over="ignore"):
            keys = tok[off[wi_items]] * np.uint64(0x9E3779B97F4A7C15) + tok[off[wi_items] + 1]
        order = np.argsort(keys, kind="stable")
        # rephrase index: distinct features per item, df, weights, postings
        is_feat = (feat != 0) & rephrase
        pairs = (
            np.unique(np.stack([feat[is_feat], item_of[is_feat].astype(np.uint64)], axis=1), axis=0)
            if is_feat.any()
            else np.zeros((0, 2), np.uint64)
        )
        vocab, first, df = np.unique(pairs[:, 0], return_index=True, return_counts=True)
        cap = max(32, int(0.02 * n))
        weights = np.log(max(n, 1000) / np.maximum(df, 1)).astype(np.float32)
        weights[df > cap] = 0
        weights[np.isin(vocab, stopword_features())] = 0
        post_off = np.zeros(len(vocab) + 1, np.int64)
        post_off[1:] = np.cumsum(df)
        post_items = pairs[:, 1].astype(np.int32)
        item_norm = np.zeros(n, np.float32)
        np.add.at(item_norm, post_items, np.repeat(weights, df))
        # a score needs evidence: an item with little feature weight is scored against NORM_FLOOR
        item_norm = np.maximum(item_norm, NORM_FLOOR)
        # numbers: the sorted multiset per item, and how many distinct values it holds
        is_num = (kind == KIND_NUMBER) & (feat != 0)
        num_item = item_of[is_num]
        order_n = np.lexsort((feat[is_num], num_item))
        item_nums = feat[is_num][order_n]
        num_off = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(num_item, minlength=n), out=num_off[1:])
        uniq = np.unique(np.stack([num_item.astype(np.uint64), feat[is_num]], axis=1), axis=0)
        distinct = np.bincount(uniq[:, 0].astype(np.int64), minlength=n).astype(np.int32)
        # formulas: each item's distinct math-token pairs
        pair_buf = np.empty(len(tok) + n + 1, np.uint64)
        pair_counts = np.empty(n, np.int64)
        item_pairs_of_rows(tok, kind, off, pair_buf, pair_counts)
        pair_off = np.zeros(n + 1, np.int64)
        np.cumsum(pair_counts, out=pair_off[1:])
        return cls(
            wi_keys=keys[order],
            wi_items=wi_items[order].astype(np.int32),
            wi_off=wi_off,
            wi_toks=wi_toks,
            wi_kinds=wi_kinds,
            vocab=vocab,
            weights=weights,
            post_off=post_off,
            post_items=post_items,
            item_norm=item_norm,
            num_off=num_off,
            item_nums=item_nums,
            pair_off=pair_off,
            item_pairs=pair_buf[: int(pair_off[-1])].copy(),
            distinct_numbers=distinct,
            threads=max(1, threads if threads is not None else len(os.sched_getaffinity(0))),
        )

    def __post_init__(self) -> None:
        object.__setattr__(self, "math_pairs", np.diff(self.pair_off).astype(np.int32))

    def __len__(self) -> int:
        return len(self.item_norm)

    def scan(
        self,
        texts: Sequence[str | None] | pl.Series | pa.Array | pa.ChunkedArray,
        *,
        min_score: float = 0.2,
        topk: int = 3,
        max_whole: int = 4,
        given: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> ScanResult:
        """Whole-item hits and the `topk` best rephrase candidates (score >= min_score) of each text.

        `given=(items, scores)` (n x topk, best first, -1 padded): compare these candidates instead
        of finding them by token similarity (the embedding path).
        """
        data, offsets = utf8_buffers(normalised(texts))
        n = len(offsets) - 1
        if given is not None:
            topk = given[0].shape[1]
        r = ScanResult(
            whole=np.empty((n, max_whole), np.int32),
            cand_item=np.array(given[0], np.int32) if given is not None else np.empty((n, topk), np.int32),
            cand_score=np.array(given[1], np.float32)
            if given is not None
            else np.empty((n, topk), np.float32),
            cand_missing=np.empty((n, topk), np.int32),
            cand_extra=np.empty((n, topk), np.int32),
            cand_math=np.empty((n, topk), np.float32),
        )
        keys, vals, kinds = _rewrite_tables()

        def part(lo: int, hi: int) -> None:
            scan_rows(
                data, offsets[lo : hi + 1], keys, vals, kinds,
                self.wi_keys, self.wi_items, self.wi_off, self.wi_toks, self.wi_kinds,
                self.vocab, self.weights, self.post_off, self.post_items, self.item_norm,
                self.num_off, self.item_nums, self.pair_off, self.item_pairs, float(min_score), given is not None,
                r.whole[lo:hi], r.cand_item[lo:hi], r.cand_score[lo:hi], r.cand_missing[lo:hi],
                r.cand_extra[lo:hi], r.cand_math[lo:hi],
            )  # fmt: skip

        _in_parts(offsets, part, self.threads)
        return r


_POOLS: dict[int, ThreadPoolExecutor] = {}
os.register_at_fork(after_in_child=_POOLS.clear)


def _in_parts(offsets: np.ndarray, part: Callable[[int, int], None], threads: int) -> None:
    """`part(lo, hi)` over row ranges of about equal bytes, on `threads` threads when worth it."""
    n = len(offsets) - 1
    shares = min(threads, n // 256, int(offsets[-1] - offsets[0]) // (1 << 16))
    if shares <= 1:
        part(0, n)
        return
    cuts = np.searchsorted(offsets, np.linspace(offsets[0], offsets[-1], shares + 1)[1:-1])
    bounds = [0, *np.unique(cuts).tolist(), n]
    if threads not in _POOLS:
        _POOLS[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tracekit-decontam")
    list(_POOLS[threads].map(part, bounds[:-1], bounds[1:]))


def idf(n_items: int, df: int) -> float:
    """The weight of a feature found in `df` of `n_items` items (before the stopword and cap rules)."""
    return math.log(max(n_items, 1000) / max(df, 1))
