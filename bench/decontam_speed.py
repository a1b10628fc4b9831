"""Decontamination accuracy and speed: the n-gram, whole-item and rephrase paths on planted items.

The corpus (default 200K clean prompts plus negatives and plants, all built here):
- clean prompts: real problems and instructions that are not in the benchmark list (MATH test
  problems outside MATH-500, Minerva, OlympiadBench, Codeforces, CodeContests, LeetCode, LIMA and
  AlpacaEval instructions from ../shared/data), each copy with its numbers changed at random and
  an instruction around it;
- template-sharing negatives: benchmark items with one number changed, or all numbers and one or
  two names/objects changed (items without numbers: two content words changed): the same wording,
  a different problem;
- planted contamination: (1) verbatim long items inside an instruction, (2) every short item
  (fewer than 8 words) inside an instruction, (3) the hand-written rephrasings of
  `bench/data/decontam_rephrasings.jsonl` (`split: evaluation`; the `calibration` half chose the
  thresholds and is never scored here), each inside an instruction.

Benchmarks: AIME 2024/2025, AMC 2023, MATH-500, GSM8K, HumanEval, MBPP (local copies).

Each path runs over every text of the corpus; precision = flags on the right item / all flags of
the path, recall = planted items of the path's class flagged with their item. The stage row runs
the real `DecontamStage` (n-gram + whole-item + rephrase, no judge) over a parquet ledger.

    .venv/bin/python bench/decontam_speed.py [--n 200000] [--seed 0]
    .venv/bin/python bench/decontam_speed.py --calibrate     # threshold sweep on the calibration split
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tracekit.decontam import BENCHMARKS, DecontamConfig, DecontamStage, load_benchmark
from tracekit.decontam.config import JudgeFields, RephraseConfig
from tracekit.decontam.features import STOPWORDS, ItemIndex, ScanResult
from tracekit.decontam.rephrase import judge_candidates, rule_flags
from tracekit.decontam.stage import BenchmarkIndex
from tracekit.dedup.ngrams import normalized_words
from tracekit.record import LEDGER_SCHEMA, empty_record

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
BENCH_DIR = DATA / "benchmarks"
REPHRASINGS = ROOT / "bench" / "data" / "decontam_rephrasings.jsonl"
BENCHES = ["aime24", "aime25", "amc23", "math500", "gsm8k", "humaneval", "mbpp"]
NGRAM = 8
WRAPPERS = [
    "Solve the following problem.\n\n{t}",
    "Solve the following. {t}",
    "{t}\nShow your work and put the final answer in a box.",
    "Here is a question from my homework:\n{t}\nCan you help?",
    "Q: {t}\nA:",
    "Please answer the question below.\n\n{t}",
]
NAMES = [
    "Alice",
    "Bob",
    "Carmen",
    "Dmitri",
    "Esther",
    "Farid",
    "Greta",
    "Hiro",
    "Ines",
    "Jonas",
    "Keiko",
    "Lars",
    "Mona",
    "Nadia",
    "Omar",
    "Priya",
]
NUMBER = re.compile(
    r"\d+(?:\.\d+)?|\b(?:two|three|four|five|six|seven|eight|nine|ten|twelve|fifteen|twenty)\b", re.IGNORECASE
)
WORD_VALUES = {
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
}
WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{4,}(?![A-Za-z])")


@dataclass
class Items:
    names: list[str]
    ids: list[str]
    texts: list[str]
    short: np.ndarray
    key: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass
class Corpus:
    texts: list[str]
    kind: list[str]  # clean | template | verbatim | short | rephrase | same_numbers
    target: list[int]  # benchmark item index (plants), else -1


def load_items() -> Items:
    names: list[str] = []
    ids: list[str] = []
    texts: list[str] = []
    for b in BENCHES:
        t = load_benchmark(BENCHMARKS[b], data_dir=str(BENCH_DIR))
        names += [b] * len(t.items)
        ids += t.items
        texts += t.texts
    short = np.array([len(w) < NGRAM for w in normalized_words(texts).to_list()])
    items = Items(names, ids, texts, short)
    items.key = {(b, i): k for k, (b, i) in enumerate(zip(names, ids, strict=True))}
    return items


def clean_pool(items: Items) -> list[str]:
    """Real prompts that are none of the benchmark items (MATH-500 problems removed from MATH)."""

    def jsonl(name: str) -> list[dict]:
        with open(BENCH_DIR / name) as f:
            return [json.loads(line) for line in f if line.strip()]

    known = {" ".join(w) for w in normalized_words(items.texts).to_list()}
    pool = [r["problem"] for r in jsonl("math_test.jsonl")]
    pool += [r["problem"] for r in jsonl("minerva_math.jsonl")] + [
        r["question"] for r in jsonl("olympiadbench.jsonl")
    ]
    for name in ("codeforces.json", "code_contests.json", "leetcode.json"):
        pool += [r["problem"] for r in json.loads((BENCH_DIR / name).read_text())]
    pool += [r["instruction"] for r in json.loads((DATA / "general" / "lima.json").read_text())]
    pool += [
        r["instruction"]
        for r in json.loads(
            (DATA / "general" / "alpaca_eval_gpt4_1106_preview" / "model_outputs.json").read_text()
        )
    ]
    norm = [" ".join(w) for w in normalized_words(pool).to_list()]
    return [p for p, n in zip(pool, norm, strict=True) if n not in known and p.strip()]


def other_number(s: str, rng: np.random.Generator) -> str:
    if s.lower() in WORD_VALUES:
        s = str(WORD_VALUES[s.lower()])
    whole, _, frac = s.partition(".")
    digits = len(whole)
    lo, hi = (2, 10) if digits == 1 else (10 ** (digits - 1), 10**digits)
    v = int(whole)
    new = v
    while new == v:
        new = int(rng.integers(lo, hi))
    return f"{new}.{frac}" if frac else str(new)


def change_numbers(text: str, rng: np.random.Generator, *, every: bool) -> str | None:
    """The text with one (or every) number replaced by another; None when it has no number."""
    found = list(NUMBER.finditer(text))
    if not found:
        return None
    chosen = set(range(len(found))) if every else {int(rng.integers(0, len(found)))}
    out, last = [], 0
    for k, m in enumerate(found):
        out.append(text[last : m.start()])
        out.append(other_number(m.group(), rng) if k in chosen else m.group())
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def change_objects(text: str, rng: np.random.Generator, vocab: list[str], n: int = 2) -> str:
    """The text with `n` content words (and a capitalised name, if any) replaced."""
    words = [m for m in WORD.finditer(text) if m.group().lower() not in STOPWORDS]
    if not words:
        return text
    picks = {int(i) for i in rng.choice(len(words), size=min(n, len(words)), replace=False)}
    out, last = [], 0
    for k, m in enumerate(words):
        out.append(text[last : m.start()])
        w = m.group()
        if k in picks:
            w = str(rng.choice(NAMES)) if w[0].isupper() else str(rng.choice(vocab))
        out.append(w)
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def wrap(text: str, rng: np.random.Generator) -> str:
    return WRAPPERS[int(rng.integers(0, len(WRAPPERS)))].replace("{t}", text)


def template_negatives(
    items: Items, rng: np.random.Generator, vocab: list[str], split: str
) -> list[tuple[str, int]]:
    """Same wording, different problem: (text, item it came from). Items split 50/50 by id hash."""
    out = []
    for k, text in enumerate(items.texts):
        if (hash_split(items.names[k], items.ids[k]) == "calibration") != (split == "calibration"):
            continue
        one = change_numbers(text, rng, every=False)
        if one is not None:
            out.append((one, k))
            every = change_numbers(text, rng, every=True)
            assert every is not None
            out.append((change_objects(every, rng, vocab, n=1), k))
        else:
            out.append((change_objects(text, rng, vocab), k))
    return out


def hash_split(bench: str, item: str) -> str:
    import hashlib

    return "calibration" if hashlib.blake2b(f"{bench}/{item}".encode()).digest()[0] % 2 == 0 else "evaluation"


def rephrasings(split: str) -> list[dict]:
    with open(REPHRASINGS) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if r["split"] == split]


def make_corpus(items: Items, *, n: int, seed: int, split: str, verbatim: int = 1000) -> Corpus:
    rng = np.random.default_rng(seed)
    pool = clean_pool(items)
    vocab = sorted({w.lower() for p in pool[:3000] for w in WORD.findall(p) if w.lower() not in STOPWORDS})
    c = Corpus([], [], [])

    def add(text: str, kind: str, target: int) -> None:
        c.texts.append(text)
        c.kind.append(kind)
        c.target.append(target)

    for i in range(n):
        base = pool[i % len(pool)] if i < len(pool) else pool[int(rng.integers(0, len(pool)))]
        if i >= len(pool):  # copies: numbers changed at random
            base = NUMBER.sub(
                lambda m: other_number(m.group(), rng) if rng.random() < 0.5 else m.group(), base
            )
        add(wrap(base, rng) if rng.random() < 0.5 else base, "clean", -1)
    for text, k in template_negatives(items, rng, vocab, split):
        add(text, "template", k)
    long_items = np.flatnonzero(~items.short)
    for k in rng.choice(long_items, size=min(verbatim, len(long_items)), replace=False).tolist():
        add(wrap(items.texts[k], rng), "verbatim", k)
    for k in np.flatnonzero(items.short).tolist():
        for w in range(3):
            add(WRAPPERS[(k + w) % len(WRAPPERS)].replace("{t}", items.texts[k]), "short", k)
    for r in rephrasings(split):
        kind = "rephrase" if r["kind"] == "rephrase" else "same_numbers"
        add(wrap(r["text"], rng), kind, items.key[(r["benchmark"], r["item"])])
    order = rng.permutation(len(c.texts))
    return Corpus([c.texts[i] for i in order], [c.kind[i] for i in order], [c.target[i] for i in order])


# ---- the three paths -------------------------------------------------------------------------


def quiet_gc() -> None:
    gc.collect()
    gc.freeze()


def run_ngram(items: Items, texts: list[str]) -> tuple[list[set[int]], float]:
    cfg = DecontamConfig(benchmarks=BENCHES, data_dir=str(BENCH_DIR), ngram=NGRAM)
    index = BenchmarkIndex.build(cfg)
    quiet_gc()
    t0 = time.perf_counter()
    hits = index.match(texts)
    dt = time.perf_counter() - t0
    return [{items.key[(h["benchmark"], h["item"])] for h in hs} for hs in hits], dt


def run_scan(index: ItemIndex, texts: list[str], *, floor: float, topk: int) -> tuple[ScanResult, float]:
    quiet_gc()
    t0 = time.perf_counter()
    r = index.scan(texts, min_score=floor, topk=topk)
    return r, time.perf_counter() - t0


def rephrase_flags(index: ItemIndex, r: ScanResult, cfg: RephraseConfig) -> list[set[int]]:
    flags = rule_flags(
        cfg,
        distinct_numbers=index.distinct_numbers,
        formula_pairs=index.math_pairs,
        items=r.cand_item,
        scores=r.cand_score,
        missing=r.cand_missing,
        extra=r.cand_extra,
        formula=r.cand_math,
    )
    out: list[set[int]] = [set() for _ in range(len(flags))]
    for row, j in zip(*np.nonzero(flags), strict=True):
        out[row].add(int(r.cand_item[row, j]))
    return out


def judge_load(r: ScanResult, judge: JudgeFields) -> np.ndarray:
    """Per text: whether the judge would be asked about it (its defaults), and about which items."""
    return judge_candidates(judge, items=r.cand_item, scores=r.cand_score, missing=r.cand_missing).any(axis=1)


def whole_flags(r: ScanResult) -> list[set[int]]:
    whole = r.whole
    return [{int(x) for x in row if x >= 0} for row in whole]


def score(corpus: Corpus, flags: list[set[int]], kinds: tuple[str, ...]) -> dict[str, float]:
    """precision over every flag of the path; recall over the plants of `kinds`."""
    flagged = [i for i, f in enumerate(flags) if f]
    right = sum(
        1
        for i in flagged
        if corpus.target[i] in flags[i] and corpus.kind[i] not in ("template", "clean", "same_numbers")
    )
    planted = [i for i, k in enumerate(corpus.kind) if k in kinds]
    found = sum(1 for i in planted if corpus.target[i] in flags[i])
    fp_template = sum(1 for i in flagged if corpus.kind[i] == "template")
    fp_clean = sum(1 for i in flagged if corpus.kind[i] == "clean")
    fp_same = sum(1 for i in flagged if corpus.kind[i] == "same_numbers")
    return {
        "flags": len(flagged),
        "precision": right / len(flagged) if flagged else 1.0,
        "recall": found / len(planted) if planted else float("nan"),
        "planted": len(planted),
        "fp_clean": fp_clean,
        "fp_template": fp_template,
        "fp_same_numbers": fp_same,
    }


def run_stage(corpus: Corpus, tmp: Path, cfg: DecontamConfig) -> tuple[list[set[int]], list[set[str]], float]:
    ledger = tmp / "ledger"
    ledger.mkdir(exist_ok=True)
    recs = []
    for i, t in enumerate(corpus.texts):
        rec = empty_record()
        rec.update(trace_id=f"t{i}", prompt_id=f"p{i}", prompt=t, completion="")
        recs.append(rec)
    for s in range(0, len(recs), 50_000):
        pq.write_table(
            pa.Table.from_pylist(recs[s : s + 50_000], schema=LEDGER_SCHEMA), ledger / f"{s:08d}.parquet"
        )
    del recs
    out = tmp / "decontam.parquet"
    quiet_gc()
    t0 = time.perf_counter()
    list(DecontamStage(config=cfg, input_dir=str(ledger), output_path=str(out)).run())
    dt = time.perf_counter() - t0
    res = pq.read_table(out).to_pydict()
    keys = load_items().key
    flags: list[set[int]] = [set() for _ in corpus.texts]
    methods: list[set[str]] = [set() for _ in corpus.texts]
    for tid, hits in zip(res["trace_id"], res["contamination"], strict=True):
        i = int(tid[1:])
        for h in hits:
            flags[i].add(keys[(h["benchmark"], h["item"])])
            methods[i].add(h["method"])
    return flags, methods, dt


def calibrate(items: Items, n: int, seed: int) -> None:
    """Sweep the thresholds on the calibration split and print what each setting flags."""
    corpus = make_corpus(items, n=n, seed=seed + 1000, split="calibration")
    index = ItemIndex.build(texts=items.texts, short=items.short)
    r, _ = run_scan(index, corpus.texts, floor=0.2, topk=3)
    kinds = np.array(corpus.kind)
    target = np.array(corpus.target)
    print(
        f"calibration corpus: {len(corpus.texts)} texts; "
        + ", ".join(f"{k} {int((kinds == k).sum())}" for k in sorted(set(corpus.kind)))
    )
    for extra, math in ((0, 0.0), (0, 0.9), (1, 0.9)):
        for bucket, lo, hi in (("3+ numbers", 3, 10**6), ("1-2 numbers", 1, 2), ("no numbers", 0, 0)):
            print(
                f"\nmax_extra_numbers={extra}, min_math_share={math}, items with {bucket}: threshold -> flagged positives / negatives"
            )
            rows = []
            for thr in (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
                flags = rule_flags_sweep(index, r, thr=thr, lo=lo, hi=hi, extra=extra, math=math)
                pos = sum(1 for i in np.flatnonzero(kinds == "rephrase") if target[i] in flags[i])
                total_pos = sum(
                    1
                    for i in np.flatnonzero(kinds == "rephrase")
                    if lo <= index.distinct_numbers[target[i]] <= hi
                )
                neg = {
                    k: sum(1 for i in np.flatnonzero(kinds == k) if flags[i])
                    for k in ("template", "clean", "same_numbers")
                }
                rows.append(
                    f"  {thr:.2f}: {pos}/{total_pos} | template {neg['template']} clean {neg['clean']} same-numbers {neg['same_numbers']}"
                )
            print("\n".join(rows))


def rule_flags_sweep(
    index: ItemIndex,
    r: object,
    *,
    thr: float,
    lo: int,
    hi: int,
    extra: int,
    math: float = 0.0,
    pairs: int = 3,
) -> list[set[int]]:
    items_ = r.cand_item
    dn = index.distinct_numbers[np.where(items_ >= 0, items_, 0)]
    mp = index.math_pairs[np.where(items_ >= 0, items_, 0)]
    ok = (
        ((mp < pairs) | (r.cand_math >= math - 1e-6))
        & (items_ >= 0)
        & (dn >= lo)
        & (dn <= hi)
        & (r.cand_missing == 0)
        & (r.cand_extra <= extra)
        & (r.cand_score >= thr - 1e-6)
    )
    out: list[set[int]] = [set() for _ in range(len(items_))]
    for row, j in zip(*np.nonzero(ok), strict=True):
        out[row].add(int(items_[row, j]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000, help="clean prompts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calibrate", action="store_true", help="sweep thresholds on the calibration split")
    args = ap.parse_args()
    items = load_items()
    if args.calibrate:
        calibrate(items, min(args.n, 50_000), args.seed)
        return
    print(
        f"host: {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}"
    )
    corpus = make_corpus(items, n=args.n, seed=args.seed, split="evaluation")
    counts = {
        k: corpus.kind.count(k)
        for k in ("clean", "template", "verbatim", "short", "rephrase", "same_numbers")
    }
    print(f"corpus: {len(corpus.texts)} texts: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    cfg = RephraseConfig()
    # warm the compiled kernels (loaded from numba's cache; compiled on a first run)
    warm = ItemIndex.build(texts=items.texts[:50], short=items.short[:50])
    warm.scan(corpus.texts[:300])
    rows = []
    ngram_flags, t_ngram = run_ngram(items, corpus.texts)
    rows.append(("n-gram (8 words)", score(corpus, ngram_flags, ("verbatim",)), t_ngram))
    whole_only = ItemIndex.build(texts=items.texts, short=items.short, rephrase=False)
    r, t_whole = run_scan(whole_only, corpus.texts, floor=1.0, topk=1)
    rows.append(("whole item (short items)", score(corpus, whole_flags(r), ("short",)), t_whole))
    index = ItemIndex.build(texts=items.texts, short=items.short)
    r, t_reph = run_scan(index, corpus.texts, floor=cfg.scan_floor(), topk=cfg.candidates)
    rows.append(
        (
            "rephrase, no judge (incl. whole item)",
            score(corpus, rephrase_flags(index, r, cfg), ("rephrase",)),
            t_reph,
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        stage_cfg = DecontamConfig(benchmarks=BENCHES, data_dir=str(BENCH_DIR), rephrase=cfg)
        flags, _, t_stage = run_stage(corpus, Path(tmp), stage_cfg)
    rows.append(
        (
            "DecontamStage, all three (parquet in/out)",
            score(corpus, flags, ("verbatim", "short", "rephrase")),
            t_stage,
        )
    )
    n = len(corpus.texts)
    print(f"host load after: {os.getloadavg()[0]:.2f}")
    print(
        "\n| path | flags | precision | recall (planted) | false flags: clean / template / same numbers | docs/s |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, s, dt in rows:
        print(
            f"| {name} | {s['flags']} | {s['precision']:.4f} | {s['recall']:.4f} ({s['planted']}) | "
            f"{s['fp_clean']} / {s['fp_template']} / {s['fp_same_numbers']} | {n / dt:,.0f} |"
        )
    load = judge_load(r, JudgeFields(model="-"))
    kinds = np.array(corpus.kind)
    print(
        f"\njudge load at its defaults (min_score {JudgeFields(model='-').min_score}, no missing number, best item): "
        + ", ".join(f"{k} {load[kinds == k].mean():.1%}" for k in counts if (kinds == k).any())
        + " of the texts would be asked about (texts with an n-gram or whole-item hit are not asked)"
    )
    negatives = counts["template"]
    fp = rows[2][1]["fp_template"]
    tp = rows[2][1]["flags"] - rows[2][1]["fp_clean"] - fp - rows[2][1]["fp_same_numbers"]
    print(
        f"\nrephrase path on template-sharing negatives: {fp} of {negatives} flagged "
        f"(precision over them and the true flags: {tp / max(tp + fp, 1):.4f})"
    )


if __name__ == "__main__":
    main()
