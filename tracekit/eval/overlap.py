"""Does a benchmark overlap a training set tracekit built? The decontamination index, turned around.

The evaluation's problems become a `BenchmarkIndex` (same normalisation and hashed word n-grams as
`tracekit/decontam`), and the prompts of the kept traces of each training build (`OUT/ledger/`) are
matched against it. A problem with a hit was (very likely) trained on: its pass@k says little.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import polars as pl

from tracekit.decontam.stage import BenchmarkIndex
from tracekit.dedup.ngrams import ngram_hashes, normalized_words
from tracekit.eval.problem import EvalProblem
from tracekit.ledger.shards import iter_ledger_batches

Hit = dict[str, str]  # the ledger's contamination struct: {benchmark, item, ngram}


def problem_index(problems: list[EvalProblem], *, ngram: int) -> BenchmarkIndex:
    """A `BenchmarkIndex` whose "benchmarks" are the evaluation's, items their problem positions."""
    names = sorted({p.benchmark for p in problems})
    hashes, bench, item = [], [], []
    items: list[list[str]] = []
    for b, name in enumerate(names):
        mine = [(i, p) for i, p in enumerate(problems) if p.benchmark == name]
        grams = ngram_hashes(normalized_words([p.prompt for _, p in mine]), n=ngram, short_texts=False)
        hashes.append(grams.hashes)
        bench.append(np.full(len(grams.hashes), b, np.int32))
        item.append(np.repeat(np.arange(len(mine), dtype=np.int32), grams.counts))
        items.append([str(i) for i, _ in mine])
    h = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
    order = np.argsort(h, kind="stable")
    return BenchmarkIndex(
        hashes=h[order],
        benchmark=np.concatenate(bench)[order] if bench else np.zeros(0, np.int32),
        item=np.concatenate(item)[order] if item else np.zeros(0, np.int32),
        names=names,
        items=items,
        ngram=ngram,
    )


def find_overlap(
    problems: list[EvalProblem], train_ledgers: Mapping[str, Path], *, ngram: int = 8
) -> dict[int, list[Hit]]:
    """Problem position -> hits `{benchmark: "train:NAME", item: training prompt_id, ngram}`.

    `train_ledgers`: the ledger folder of each training build, by the name it is reported under.
    Only training traces that were kept (in the dataset) count.

    Example:
        >>> find_overlap(problems, {"out/r1-800k": Path("out/r1-800k/ledger")})  # doctest: +SKIP
        {3: [{'benchmark': 'train:out/r1-800k', 'item': '9f2c...', 'ngram': 'find the sum of all ...'}]}
    """
    index = problem_index(problems, ngram=ngram)
    found: dict[int, list[Hit]] = defaultdict(list)
    for name, ledger in train_ledgers.items():
        if not ledger.is_dir():
            raise FileNotFoundError(f"--train-data {name}: no ledger at {ledger} (not a tracekit build output)")
        tag = f"train:{name}"
        for batch in iter_ledger_batches(str(ledger), columns=["prompt_id", "prompt", "kept"]):
            df = pl.from_arrow(batch)
            assert isinstance(df, pl.DataFrame)
            df = df.filter(pl.col("kept").fill_null(True)).unique(subset=["prompt_id"], maintain_order=True)
            if df.is_empty():
                continue
            texts = df["prompt"].fill_null("").to_list()
            for pid, hits in zip(df["prompt_id"].to_list(), index.match(texts), strict=True):
                for h in hits:
                    pos = int(h["item"])  # items are positions in `problems`
                    seen = found[pos]
                    if len(seen) < 16 and all(x["item"] != pid or x["benchmark"] != tag for x in seen):
                        seen.append({"benchmark": tag, "item": str(pid), "ngram": h["ngram"]})
    return dict(found)
