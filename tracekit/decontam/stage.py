"""Global decontamination stage: n-grams, short items matched whole, rephrasings (rule or judge)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from tracekit.decontam.benchmarks import benchmark_texts
from tracekit.decontam.config import DecontamConfig
from tracekit.decontam.features import ItemIndex, ScanResult
from tracekit.decontam.registry import BenchmarkTexts
from tracekit.decontam.rephrase import judge_candidates, rule_flags
from tracekit.dedup.ngrams import ngram_hashes, normalized_words
from tracekit.ledger.decision import DecisionStage
from tracekit.ledger.shards import iter_ledger_batches
from tracekit.record import CONTAMINATION_TEXT_CHARS, CONTAMINATION_TYPE

DROP_CONTAMINATED = "contaminated"

DECONTAM_OUTPUT_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("contamination", pa.list_(CONTAMINATION_TYPE)),
        ("contamination_cleared", pa.list_(CONTAMINATION_TYPE)),
        ("drop_reason", pa.string()),
    ]
)

Hit = dict[
    str, Any
]  # the ledger's contamination struct: benchmark, item, ngram, method, score, item_text, judge


@dataclass(frozen=True)
class BenchmarkIndex:
    """Sorted n-gram hashes of every benchmark item, with the (benchmark, item) of each.

    `item_ngrams[b][i]` (when known) is how many distinct n-grams item i of benchmark b has: a hit's
    score is the share of them found.
    """

    hashes: np.ndarray  # uint64, sorted
    benchmark: np.ndarray  # int32 index into names
    item: np.ndarray  # int32 index into items[benchmark]
    names: list[str]
    items: list[list[str]]
    ngram: int
    item_ngrams: list[np.ndarray] | None = None

    @classmethod
    def build(cls, config: DecontamConfig) -> BenchmarkIndex:
        return cls.from_texts(benchmark_texts(config), ngram=config.ngram)

    @classmethod
    def from_texts(cls, benches: list[BenchmarkTexts], *, ngram: int) -> BenchmarkIndex:
        hashes, bench, item, counts = [], [], [], []
        for b, texts in enumerate(benches):
            grams = ngram_hashes(normalized_words(texts.texts), n=ngram, short_texts=False)
            item_of = np.repeat(np.arange(len(texts.items), dtype=np.int32), grams.counts)
            pairs = np.unique(np.stack([item_of.astype(np.uint64), grams.hashes], axis=1), axis=0)
            counts.append(np.bincount(pairs[:, 0].astype(np.int64), minlength=len(texts.items)))
            hashes.append(grams.hashes)
            bench.append(np.full(len(grams.hashes), b, np.int32))
            item.append(item_of)
        h = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
        order = np.argsort(h, kind="stable")
        return cls(
            hashes=h[order],
            benchmark=np.concatenate(bench)[order] if bench else np.zeros(0, np.int32),
            item=np.concatenate(item)[order] if item else np.zeros(0, np.int32),
            names=[t.name for t in benches],
            items=[t.items for t in benches],
            ngram=ngram,
            item_ngrams=counts,
        )

    def match(self, texts: list[str], *, min_matches: int = 1, max_hits: int = 16) -> list[list[Hit]]:
        """Benchmark hits per text: one entry per (benchmark, item), with its first matching n-gram
        and (with `item_ngrams`) the share of the item's n-grams the text holds as `score`; the
        `max_hits` items with the highest share are kept."""
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
            ranked = []
            for (b, i), gs in hits.items():
                distinct = len({int(grams.hashes[g]) for g in gs})
                if distinct < min_matches:
                    continue
                total = int(self.item_ngrams[b][i]) if self.item_ngrams is not None else 0
                ranked.append((-(distinct / max(total, 1)), b, i, gs[0], distinct, total))
            # the items most covered first: boilerplate shared with many items must not crowd out the
            # item that is there whole when more than max_hits items match
            ranked.sort(key=lambda x: x[0])
            for _, b, i, g0, distinct, total in ranked[:max_hits]:
                if doc_words is None:
                    doc_words = words[d].to_list()
                start = int(grams.starts[g0])
                hit: Hit = {
                    "benchmark": self.names[b],
                    "item": self.items[b][i],
                    "ngram": " ".join(doc_words[start : start + self.ngram]),
                    "method": "ngram",
                }
                if self.item_ngrams is not None:
                    hit["score"] = min(1.0, distinct / max(total, 1))
                out[d].append(hit)
        return out


@dataclass
class _Items:
    """Every benchmark item, flat: index k is item `ids[k]` of benchmark `names[k]`."""

    names: list[str]
    ids: list[str]
    texts: list[str]
    short: np.ndarray
    key: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def of(cls, benches: list[BenchmarkTexts], *, ngram: int) -> _Items:
        names = [t.name for t in benches for _ in t.items]
        ids = [i for t in benches for i in t.items]
        texts = [x for t in benches for x in t.texts]
        short = np.array([len(w) < ngram for w in normalized_words(texts).to_list()], dtype=bool)
        key = {(n, i): k for k, (n, i) in enumerate(zip(names, ids, strict=True))}
        return cls(names, ids, texts, short, key)

    def text_of(self, benchmark: str, item: str) -> str | None:
        k = self.key.get((benchmark, item))
        return self.texts[k][:CONTAMINATION_TEXT_CHARS] if k is not None else None

    def hit(
        self, k: int, *, method: str, score: float, ngram: str | None = None, judge: str | None = None
    ) -> Hit:
        return {
            "benchmark": self.names[k],
            "item": self.ids[k],
            "ngram": ngram,
            "method": method,
            "score": float(score),
            "item_text": self.texts[k][:CONTAMINATION_TEXT_CHARS],
            "judge": judge,
        }


@dataclass
class _Pending:
    """Judge questions of the run: pair key -> (prompt, item) and where the answer goes."""

    pairs: dict[str, tuple[str, str]] = field(default_factory=dict)
    asks: list[tuple[list[int], str, int, float, bool]] = field(
        default_factory=list
    )  # rows, key, item, score, rule


class DecontamStage(DecisionStage):
    """Flag traces whose prompt (optionally completion) is a benchmark item, verbatim or reworded.

    Methods, in this order (a text found by one is not checked by the later ones):
    - `ngram`: a word n-gram (8 by default) shared with a benchmark item (normalised: NFKC,
      lowercase, LaTeX command names, punctuation and `$` removed, CJK characters as words, digits
      kept; hashed, so a check is a sorted-array lookup); on every field in `fields`;
    - `whole_item`: a benchmark item shorter than the n-gram, found whole in the prompt
      (`tracekit/decontam/features.py`);
    - `rephrase` (with `rephrase:`): the prompt's most similar items by weighted token containment
      or embeddings, flagged by the calibrated rule; or, with a judge, `judge` for the candidates
      the judge calls the same problem (the others are recorded in `contamination_cleared`).

    Writes ONE parquet at `output_path` with a row per trace: `trace_id`, `contamination` (one
    entry per matched benchmark item: benchmark, item, ngram, method, score, item_text, judge),
    `contamination_cleared` and `drop_reason` (`contaminated` for kept traces with a match, else
    null). Already-dropped traces are checked too (their matches show in stats) but get no drop
    reason. Judge answers are cached in `judge_cache` (resume). Runs as a datatrove step with
    tasks=1 on any executor; only rank 0 works.

    Example:
        >>> cfg = DecontamConfig(benchmarks=["aime24", "math500"], data_dir="../shared/data/benchmarks")
        >>> step = DecontamStage(config=cfg, input_dir="out/x/ledger", output_path="out/x/decontam.parquet")
        >>> list(step.run())  # doctest: +SKIP
    """

    type = "🧪 - DECONTAM"
    name = "decontaminate"

    def __init__(
        self,
        *,
        config: DecontamConfig | None = None,
        input_dir: str,
        output_path: str,
        judge_cache: str | None = None,
        judge_log_dir: str | None = None,
    ) -> None:
        super().__init__(input_dir=input_dir, output_path=output_path)
        self.config = config or DecontamConfig()
        self.judge_cache = judge_cache
        self.judge_log_dir = judge_log_dir

    def decide(self) -> pa.Table:
        """Build the indexes, scan the ledger, ask the judge, return the decisions (DECONTAM_OUTPUT_SCHEMA)."""
        cfg = self.config
        benches = benchmark_texts(cfg)
        index = BenchmarkIndex.from_texts(benches, ngram=cfg.ngram)
        items = _Items.of(benches, ngram=cfg.ngram)
        item_index = ItemIndex.build(texts=items.texts, short=items.short, rephrase=cfg.rephrase is not None)
        embed = self._embedder(items) if cfg.rephrase is not None and cfg.rephrase.embedding else None
        self.stat_update("benchmark_ngrams", value=len(index.hashes))
        self.stat_update("benchmark_items", value=len(items.texts))
        tids: list[str] = []
        kept_all: list[bool] = []
        found: list[dict[tuple[str, str], Hit]] = []
        cleared: list[list[Hit]] = []
        pending = _Pending()
        columns = ["trace_id", "kept", *dict.fromkeys(["prompt", *cfg.fields])]
        for batch in iter_ledger_batches(self.input_dir, columns=columns, batch_size=cfg.batch_size):
            df = pl.from_arrow(batch)
            assert isinstance(df, pl.DataFrame)
            base = len(tids)
            tids += df["trace_id"].to_list()
            kept_all += df["kept"].fill_null(True).to_list()
            found += [{} for _ in range(df.height)]
            cleared += [[] for _ in range(df.height)]
            for fld in cfg.fields:
                col = df[fld].fill_null("")
                uniq = col.unique(maintain_order=True).to_list()
                hits = index.match(uniq, min_matches=cfg.min_matches, max_hits=cfg.max_hits_per_trace)
                by_text = {t: h for t, h in zip(uniq, hits, strict=True) if h}
                for r, text in enumerate(col.to_list()):
                    for h in by_text.get(text, ()):
                        self._add(
                            found[base + r], {**h, "item_text": items.text_of(h["benchmark"], h["item"])}
                        )
            self._prompts(df, base, found, cleared, items, item_index, embed, pending)
        if pending.asks:
            self._ask_judge(pending, found, cleared, items)
        contamination, reasons = [], []
        for r, hits_r in enumerate(found):
            hs = list(hits_r.values())[: cfg.max_hits_per_trace]
            contamination.append(hs)
            reasons.append(DROP_CONTAMINATED if hs and kept_all[r] else None)
            if hs:
                self.stat_update("contaminated_traces")
                for h in hs:
                    self.stat_update(f"hits_{h['benchmark']}_{h['method']}")
        return pa.table(
            {
                "trace_id": pa.array(tids, pa.string()),
                "contamination": pa.array(contamination, pa.list_(CONTAMINATION_TYPE)),
                "contamination_cleared": pa.array(cleared, pa.list_(CONTAMINATION_TYPE)),
                "drop_reason": pa.array(reasons, pa.string()),
            },
            schema=DECONTAM_OUTPUT_SCHEMA,
        )

    # ---- helpers -------------------------------------------------------------------------------

    def _add(self, hits: dict[tuple[str, str], Hit], hit: Hit) -> None:
        key = (hit["benchmark"], hit["item"])
        if key not in hits and len(hits) < self.config.max_hits_per_trace:
            hits[key] = hit

    def _embedder(self, items: _Items) -> Callable[[list[str]], tuple[np.ndarray, np.ndarray]]:
        from tracekit.decontam.embedding import Encoder, top_items

        cfg = self.config.rephrase
        assert cfg is not None and cfg.embedding is not None
        encoder = Encoder(config=cfg.embedding)
        item_vecs = encoder.embed(items.texts)
        floor, k = cfg.scan_floor(), cfg.candidates
        return lambda texts: top_items(encoder.embed(texts), item_vecs, k=k, min_score=floor)

    def _prompts(
        self,
        df: pl.DataFrame,
        base: int,
        found: list[dict[tuple[str, str], Hit]],
        cleared: list[list[Hit]],
        items: _Items,
        item_index: ItemIndex,
        embed: Callable[[list[str]], tuple[np.ndarray, np.ndarray]] | None,
        pending: _Pending,
    ) -> None:
        """Whole-item and rephrase checks of the batch's distinct prompts."""
        cfg = self.config
        rc = cfg.rephrase
        prompts = df["prompt"].fill_null("")
        rows_of: dict[str, list[int]] = {}
        for r, text in enumerate(prompts.to_list()):
            rows_of.setdefault(text, []).append(base + r)
        uniq = list(rows_of)
        floor = rc.scan_floor() if rc is not None else 1.0
        topk = rc.candidates if rc is not None else 1
        scan = item_index.scan(uniq, min_score=floor, topk=topk)
        exact = np.zeros(len(uniq), bool)
        for u, text in enumerate(uniq):
            rows = rows_of[text]
            exact[u] = any(found[r] for r in rows)
            for k in scan.whole[u][scan.whole[u] >= 0].tolist():
                exact[u] = True
                words = " ".join(normalized_words([items.texts[k]]).to_list()[0])
                hit = items.hit(k, method="whole_item", score=1.0, ngram=words)
                for r in rows:
                    self._add(found[r], hit)
        if rc is None:
            return
        todo = np.flatnonzero(~exact)
        if not len(todo):
            return
        texts = [uniq[u] for u in todo.tolist()]
        if embed is not None:
            given = embed(texts)
            sub = item_index.scan(texts, given=given)
        else:
            sub = _take(scan, todo)
        flags = rule_flags(
            rc,
            distinct_numbers=item_index.distinct_numbers,
            formula_pairs=item_index.math_pairs,
            items=sub.cand_item,
            scores=sub.cand_score,
            missing=sub.cand_missing,
            extra=sub.cand_extra,
            formula=sub.cand_math,
        )
        if rc.judge is None:
            for u, j in zip(*np.nonzero(flags), strict=True):
                hit = items.hit(
                    int(sub.cand_item[u, j]), method="rephrase", score=float(sub.cand_score[u, j])
                )
                for r in rows_of[texts[u]]:
                    self._add(found[r], hit)
            return
        from tracekit.decontam.judge import pair_key

        ask = judge_candidates(rc.judge, items=sub.cand_item, scores=sub.cand_score, missing=sub.cand_missing)
        for u, j in zip(*np.nonzero(ask), strict=True):
            k = int(sub.cand_item[u, j])
            key = pair_key(rc.judge.model, texts[u], items.texts[k])
            pending.pairs[key] = (texts[u], items.texts[k])
            pending.asks.append((rows_of[texts[u]], key, k, float(sub.cand_score[u, j]), bool(flags[u, j])))

    def _ask_judge(
        self,
        pending: _Pending,
        found: list[dict[tuple[str, str], Hit]],
        cleared: list[list[Hit]],
        items: _Items,
    ) -> None:
        from tracekit.decontam.judge import Judge

        rc = self.config.rephrase
        assert rc is not None and rc.judge is not None
        if not self.judge_cache:
            raise ValueError("DecontamStage: a judge needs `judge_cache` (where its answers are kept)")
        judge = Judge(
            config=rc.judge,
            cache_path=Path(self.judge_cache),
            log_dir=Path(self.judge_log_dir) if self.judge_log_dir else None,
        )
        verdicts = judge.ask(pending.pairs)
        self.stat_update("judge_questions", value=len(pending.pairs))
        self.stat_update("judge_cached", value=judge.cached)
        self.stat_update("judge_requests", value=judge.sent)
        for rows, key, k, score, rule in pending.asks:
            v = verdicts[key]
            if v.same is True:
                hit = items.hit(k, method="judge", score=score, judge=v.answer)
            elif v.same is None and rule:  # unclear answer: the no-judge rule decides
                hit = items.hit(k, method="rephrase", score=score, judge=v.answer)
            else:
                self.stat_update("judge_cleared" if v.same is False else "judge_unclear")
                note = items.hit(k, method="judge", score=score, judge=v.answer)
                for r in rows:
                    cleared[r].append(note)
                continue
            for r in rows:
                self._add(found[r], hit)


def _take(scan: ScanResult, rows: np.ndarray) -> ScanResult:
    return ScanResult(
        whole=scan.whole[rows],
        cand_item=scan.cand_item[rows],
        cand_score=scan.cand_score[rows],
        cand_missing=scan.cand_missing[rows],
        cand_extra=scan.cand_extra[rows],
        cand_math=scan.cand_math[rows],
    )
