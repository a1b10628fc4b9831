"""Global decontamination stage: word n-gram overlap between traces and benchmark items."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from tracekit.decontam.config import DecontamConfig
from tracekit.decontam.registry import load_benchmark
from tracekit.dedup.ledger_io import iter_ledger_batches
from tracekit.dedup.ngrams import ngram_hashes, normalized_words
from tracekit.ledger.decision import DecisionStage
from tracekit.record import CONTAMINATION_TYPE

DROP_CONTAMINATED = "contaminated"

DECONTAM_OUTPUT_SCHEMA = pa.schema(
    [("trace_id", pa.string()), ("contamination", pa.list_(CONTAMINATION_TYPE)), ("drop_reason", pa.string())]
)

Hit = dict[str, str]  # {"benchmark", "item", "ngram"}


@dataclass(frozen=True)
class BenchmarkIndex:
    """Sorted n-gram hashes of every benchmark item, with the (benchmark, item) of each."""

    hashes: np.ndarray  # uint64, sorted
    benchmark: np.ndarray  # int32 index into names
    item: np.ndarray  # int32 index into items[benchmark]
    names: list[str]
    items: list[list[str]]
    ngram: int

    @classmethod
    def build(cls, config: DecontamConfig) -> BenchmarkIndex:
        hashes, bench, item = [], [], []
        names: list[str] = []
        items: list[list[str]] = []
        for b, src in enumerate(config.sources()):
            texts = load_benchmark(src, data_dir=config.data_dir)
            grams = ngram_hashes(normalized_words(texts.texts), n=config.ngram, short_texts=False)
            hashes.append(grams.hashes)
            bench.append(np.full(len(grams.hashes), b, np.int32))
            item.append(np.repeat(np.arange(len(texts.items), dtype=np.int32), grams.counts))
            names.append(src.name)
            items.append(texts.items)
        h = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
        order = np.argsort(h, kind="stable")
        return cls(
            hashes=h[order],
            benchmark=np.concatenate(bench)[order],
            item=np.concatenate(item)[order],
            names=names,
            items=items,
            ngram=config.ngram,
        )

    def match(self, texts: list[str], *, min_matches: int = 1, max_hits: int = 16) -> list[list[Hit]]:
        """Benchmark hits per text: one entry per (benchmark, item), with its first matching n-gram."""
        out: list[list[Hit]] = [[] for _ in texts]
        if not texts or not len(self.hashes):
            return out
        words = normalized_words(texts)
        grams = ngram_hashes(words, n=self.ngram, short_texts=False)
        pos = np.searchsorted(self.hashes, grams.hashes)
        found = np.flatnonzero(self.hashes[np.minimum(pos, len(self.hashes) - 1)] == grams.hashes)
        if not len(found):
            return out
        docs = np.searchsorted(grams.offsets, found, side="right") - 1
        per_doc: dict[int, dict[tuple[int, int], list[int]]] = {}
        for g, d in zip(found.tolist(), docs.tolist(), strict=True):
            lo = int(pos[g])
            hi = int(np.searchsorted(self.hashes, grams.hashes[g], side="right"))
            hits = per_doc.setdefault(d, {})
            for k in range(lo, hi):
                hits.setdefault((int(self.benchmark[k]), int(self.item[k])), []).append(g)
        for d, hits in per_doc.items():
            doc_words: list[str] | None = None
            for (b, i), gs in hits.items():
                if len(set(gs)) < min_matches or len(out[d]) >= max_hits:
                    continue
                if doc_words is None:
                    doc_words = words[d].to_list()
                start = int(grams.starts[gs[0]])
                ngram = " ".join(doc_words[start : start + self.ngram])
                out[d].append({"benchmark": self.names[b], "item": self.items[b][i], "ngram": ngram})
        return out


class DecontamStage(DecisionStage):
    """Flag traces whose prompt (optionally completion) shares a word n-gram with a benchmark item.

    Text is normalised before n-gramming (NFKC, lowercase, LaTeX command names, punctuation and `$`
    removed, CJK characters as words; digits kept) and n-grams are hashed (64-bit), so a check is a
    sorted-array lookup. The index of every configured benchmark is built in memory first (a few MB
    for the default registry); then every parquet shard in `input_dir` is streamed, and each
    distinct text of a batch is checked once.

    Writes ONE parquet at `output_path` with a row per trace: `trace_id`, `contamination` (list of
    {benchmark, item, ngram}, one per matched benchmark item, with the first matching n-gram) and
    `drop_reason` (`contaminated` for kept traces with a hit, else null). Already-dropped traces are
    checked too (their hits show in stats) but get no drop reason. Runs as a datatrove step with
    tasks=1 on any executor; only rank 0 works.

    Example:
        >>> cfg = DecontamConfig(benchmarks=["aime24", "math500"], data_dir="../shared/data/benchmarks")
        >>> step = DecontamStage(config=cfg, input_dir="out/x/ledger", output_path="out/x/decontam.parquet")
        >>> list(step.run())  # doctest: +SKIP
    """

    type = "🧪 - DECONTAM"
    name = "decontaminate"

    def __init__(self, *, config: DecontamConfig | None = None, input_dir: str, output_path: str) -> None:
        super().__init__(input_dir=input_dir, output_path=output_path)
        self.config = config or DecontamConfig()

    def decide(self) -> pa.Table:
        """Build the benchmark index, scan the ledger, return the decisions (DECONTAM_OUTPUT_SCHEMA)."""
        cfg = self.config
        index = BenchmarkIndex.build(cfg)
        self.stat_update("benchmark_ngrams", value=len(index.hashes))
        tids: list[str] = []
        contamination: list[list[Hit]] = []
        reasons: list[str | None] = []
        columns = ["trace_id", "kept", *cfg.fields]
        for batch in iter_ledger_batches(self.input_dir, columns=columns, batch_size=cfg.batch_size):
            df = pl.from_arrow(batch)
            assert isinstance(df, pl.DataFrame)
            per_row: list[list[Hit]] = [[] for _ in range(df.height)]
            for field in cfg.fields:
                col = df[field].fill_null("")
                uniq = col.unique(maintain_order=True).to_list()
                hits = index.match(uniq, min_matches=cfg.min_matches, max_hits=cfg.max_hits_per_trace)
                by_text = {t: h for t, h in zip(uniq, hits, strict=True) if h}
                for r, text in enumerate(col.to_list()):
                    for hit in by_text.get(text, ()):
                        row = per_row[r]
                        if len(row) < cfg.max_hits_per_trace and all(
                            (x["benchmark"], x["item"]) != (hit["benchmark"], hit["item"]) for x in row
                        ):
                            row.append(hit)
            kept = df["kept"].fill_null(True).to_list()
            for r, tid in enumerate(df["trace_id"].to_list()):
                hits_r = per_row[r]
                tids.append(tid)
                contamination.append(hits_r)
                reasons.append(DROP_CONTAMINATED if hits_r and kept[r] else None)
                if hits_r:
                    self.stat_update("contaminated_traces")
                    for h in hits_r:
                        self.stat_update(f"hits_{h['benchmark']}")
        return pa.table(
            {
                "trace_id": pa.array(tids, pa.string()),
                "contamination": pa.array(contamination, pa.list_(CONTAMINATION_TYPE)),
                "drop_reason": pa.array(reasons, pa.string()),
            },
            schema=DECONTAM_OUTPUT_SCHEMA,
        )
