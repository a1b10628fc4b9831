"""The token scan, whole-item matching and rephrase scores against the plain-Python oracle.

Texts are generated from a palette of the cases the rules name (number words, plurals, thousands
groups, decimals, leading zeros, LaTeX aliases and layout commands, operators, non-ASCII and
full-width characters), and real benchmark items are planted in generated prompts.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from tests.decontam import oracle
from tracekit.decontam.features import NORM_FLOOR, STOPWORDS, ItemIndex, tokenize

BENCH_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "benchmarks"

PALETTE = [
    "three", "Three", "one", "twenty", "eggs", "Eggs", "bass", "is", "as", "has", "this", "cats", "x", "a",
    "A", "I", "n", "Janet's", "1,000", "1,0000", "12,345,678", "007", "0", "000", "2.50", "3.", ".5",
    "0.0", "10.01", "1,2", "\\frac", "\\dfrac", "\\tfrac", "\\left(", "\\right)", "\\sqrt", "\\Delta",
    "\\delta", "\\,", "\\{", "\\\\", "\\", "\\le", "\\text{cm}", "+", "-", "*", "/", "^", "=", "<", ">", "(",
    ")", "[", "]", "|", "!", "%", "$", "{", "}", ".", ",", ";", ":", "?", "'", '"', "_", "&", "#", "é",
    "Übung", "東京", "≤", "１２", "ｘ", "－", " ", "\n", "\t", "x^2", "2x", "f(x)", "a_1",
]  # fmt: skip


def gen_text(rng: random.Random, n: int) -> str:
    parts = []
    for _ in range(n):
        parts.append(rng.choice(PALETTE))
        parts.append(rng.choice(["", " ", " ", "  "]))
    return "".join(parts)


def test_tokens_match_the_oracle_on_generated_texts() -> None:
    rng = random.Random(1)
    texts = [gen_text(rng, rng.randint(0, 40)) for _ in range(400)]
    tok, feat, kind, off = tokenize(texts)
    expected = [oracle.tokens(t) for t in texts]
    assert np.diff(off).tolist() == [len(e) for e in expected]
    flat = [t for e in expected for t in e]
    # equal strings <=> equal hashes, over every token of the batch (numbers: 1,000 = 1000 ...)
    by_exact: dict[str, int] = {}
    by_hash: dict[int, str] = {}
    for t, h in zip(flat, tok.tolist(), strict=True):
        assert by_exact.setdefault(t.exact, h) == h, t
        assert by_hash.setdefault(h, t.exact) == t.exact, t
    by_feat: dict[str | None, int] = {}
    for t, f in zip(flat, feat.tolist(), strict=True):
        assert (f == 0) == (t.feature is None), t
        assert by_feat.setdefault(t.feature, f) == f, t
    kinds = {"word": 0, "number": 1, "command": 2, "operator": 3, "other": 4, "letter": 5}
    assert kind.tolist() == [kinds[t.kind] for t in flat]
    # features merge what the rules say they merge
    f = tokenize(["three 3 eggs egg 1,000 1000 2.50 2.5 \\dfrac \\frac"])[1].tolist()
    assert f[0] == f[1] and f[2] == f[3] and f[4] == f[5] and f[6] == f[7] and f[8] == f[9]


def short_items() -> list[str]:
    out = []
    for name, col in (("math500.jsonl", "problem"), ("mbpp.jsonl", "text")):
        with open(BENCH_DIR / name) as fh:
            out += [json.loads(line)[col] for line in fh]
    return [t for t in out if len(t.split()) <= 8]


def variants(item: str, rng: random.Random) -> list[tuple[str, bool | None]]:
    """(prompt, planted whole?) — None: the oracle decides (edits may or may not break the item)."""
    wrap = rng.choice(["Solve the following. {t}", "{t}", "Q: {t}\nA:", "Problem: {t} Show your work."])
    out: list[tuple[str, bool | None]] = [(wrap.replace("{t}", item), True)]
    # upper case (LaTeX command names are case-sensitive: \\Delta is not \\delta)
    out.append((wrap.replace("{t}", item if "\\" in item else item.upper()), True))
    out.append((wrap.replace("{t}", item.replace("$", "").replace("  ", " ")), True))
    out.append((wrap.replace("{t}", item.replace("\\frac", "\\dfrac")), True))
    out.append((wrap.replace("{t}", item.rstrip(".?$") + " + 1$"), None))  # the formula goes on
    words = item.split()
    if len(words) > 2:
        k = rng.randrange(len(words))
        out.append((wrap.replace("{t}", " ".join(words[:k] + ["zebra"] + words[k + 1 :])), None))
        out.append((wrap.replace("{t}", " ".join(words[1:])), None))
    return out


def test_whole_items_are_found_as_the_oracle_says() -> None:
    rng = random.Random(2)
    items = short_items()
    assert len(items) > 20
    index = ItemIndex.build(texts=items, short=[True] * len(items), rephrase=False)
    cases = [(k, p, planted) for k, item in enumerate(items) for p, planted in variants(item, rng)]
    scan = index.scan([p for _, p, _ in cases], max_whole=8)
    planted_found = 0
    for row, (k, prompt, planted) in enumerate(cases):
        got = set(scan.whole[row][scan.whole[row] >= 0].tolist())
        want = {j for j, item in enumerate(items) if oracle.whole_item_found(item, prompt)}
        assert got == want, (prompt, [items[j] for j in got ^ want])
        if planted:
            assert k in got or any(items[j] == items[k] for j in got), prompt
            planted_found += 1
    assert planted_found == sum(1 for c in cases if c[2])


def test_rephrase_scores_numbers_and_formulas_match_the_oracle() -> None:
    rng = random.Random(3)
    with open(BENCH_DIR / "math500.jsonl") as fh:
        items = [json.loads(line)["problem"] for line in fh][:200]
    index = ItemIndex.build(texts=items, short=[False] * len(items))
    weights = oracle.Weights(items, STOPWORDS, NORM_FLOOR)
    prompts = []
    for _ in range(150):
        a, b = rng.sample(items, 2)
        wa, wb = a.split(), b.split()
        mix = wa[: rng.randint(0, len(wa))] + wb[rng.randint(0, len(wb)) :]
        rng.shuffle(mix) if rng.random() < 0.3 else None
        prompts.append(" ".join(mix))
    topk = 4
    scan = index.scan(prompts, min_score=0.2, topk=topk)
    for row, prompt in enumerate(prompts):
        expect = sorted(((weights.score(k, prompt), k) for k in range(len(items))), reverse=True)
        got = [
            (float(s), int(k))
            for k, s in zip(scan.cand_item[row], scan.cand_score[row], strict=True)
            if k >= 0
        ]
        for s, k in got:
            assert s == pytest.approx(weights.score(k, prompt), abs=1e-4)
            miss, extra = oracle.compare_numbers(items[k], prompt)
            j = [kk for _, kk in got].index(k)
            assert (int(scan.cand_missing[row, j]), int(scan.cand_extra[row, j])) == (miss, extra)
            assert float(scan.cand_math[row, j]) == pytest.approx(
                oracle.formula_share(items[k], prompt), abs=1e-5
            )
        # the best ones, best first (ties may swap)
        above = [s for s, _ in expect if s >= 0.2]
        assert len(got) == min(topk, len(above))
        assert [round(s, 4) for s, _ in got] == [round(s, 4) for s in above[: len(got)]]
