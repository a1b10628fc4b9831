"""Decontamination in real builds (replay teacher, local executor): every method, stats, card, bad input."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import read_ledger, run_cli, write_recipe
from tests.decontam import oracle
from tracekit.decontam.features import NORM_FLOOR, STOPWORDS
from tracekit.dedup.ngrams import normalized_words

REPO = Path(__file__).resolve().parents[2]
BENCH_DIR = (REPO / ".." / "shared" / "data" / "benchmarks").resolve()
REPHRASINGS = REPO / "bench" / "data" / "decontam_rephrasings.jsonl"
CLEAN = [
    "A farmer plants 3 rows of sunflowers along a fence. Each row holds 14 plants and every plant produces "
    "120 seeds. If a squirrel eats one seed out of every five, how many seeds remain?",
    "Write a haiku about autumn leaves falling on a quiet pond.",
    "Let $z$ be a complex number with $|z - 3i| = 7$. Find the largest possible value of $|z + 4|$.",
]

pytestmark = pytest.mark.slow  # real builds (or a transformers model): seconds each


def jsonl_rows(name: str) -> list[dict]:
    with open(BENCH_DIR / name) as f:
        return [json.loads(line) for line in f if line.strip()]


def replay(tmp: Path, prompts: list[str], **extra: object) -> Path:
    rows = [{"q": p, "a": "1", "g": f"<think>t{i}</think>\\boxed{{1}}"} for i, p in enumerate(prompts)]
    (tmp / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    src = {"name": "m", "path": "m.jsonl", "columns": {"prompt": "q", "answer": "a", "generations": "g"}}
    return write_recipe(tmp, sources=[src], **extra)


def change_one_number(text: str, rng: random.Random) -> str | None:
    found = list(re.finditer(r"\d+", text))
    if not found:
        return None
    m = rng.choice(found)
    new = str(int(m.group()) + rng.randint(1, 9) * 7 + 1)
    return text[: m.start()] + new + text[m.end() :]


def shares_ngram(a: str, b: str, n: int = 8) -> bool:
    wa, wb = normalized_words([a, b]).to_list()
    return bool(
        {tuple(wa[i : i + n]) for i in range(len(wa) - n + 1)}
        & {tuple(wb[i : i + n]) for i in range(len(wb) - n + 1)}
    )


def rule_would_flag(items: list[str], weights: oracle.Weights, k: int, prompt: str) -> bool:
    """The default no-judge rule, recomputed from the oracle (3+ distinct numbers, none missing or
    extra, 90% of the formula, similarity >= 0.65)."""
    distinct = len(oracle.numbers(items[k]))
    missing, extra = oracle.compare_numbers(items[k], prompt)
    pairs = oracle.formula_pairs(items[k])
    formula_ok = len(pairs) < 3 or oracle.formula_share(items[k], prompt) >= 0.9
    return distinct >= 3 and missing == 0 and extra == 0 and formula_ok and weights.score(k, prompt) >= 0.65


def test_short_items_rephrasings_and_template_negatives_in_a_build(tmp_path: Path) -> None:
    rng = random.Random(0)
    math500 = jsonl_rows("math500.jsonl")
    gsm8k = jsonl_rows("gsm8k.jsonl")
    items = [r["problem"] for r in math500] + [r["question"] for r in gsm8k]
    ids = [("math500", r["unique_id"]) for r in math500] + [("gsm8k", str(r["idx"])) for r in gsm8k]
    short = [k for k, w in enumerate(normalized_words(items).to_list()) if len(w) < 8]
    assert len(short) >= 20
    reph = [json.loads(line) for line in REPHRASINGS.read_text().splitlines()]
    reph = [r for r in reph if r["benchmark"] in ("math500", "gsm8k") and r["kind"] == "rephrase"]
    prompts: dict[str, tuple[str, object]] = {}  # prompt -> (kind, expected)
    for k in short:  # the case: a short item pasted after an instruction
        prompts[f"Solve the following. {items[k]}"] = ("short", ids[k])
    weights = oracle.Weights(items, STOPWORDS, NORM_FLOOR)
    key = {v: k for k, v in enumerate(ids)}
    for r in reph:
        k = key[(r["benchmark"], r["item"])]
        if shares_ngram(items[k], r["text"]):  # the rephrasing kept 8 words in a row: an n-gram hit
            prompts[r["text"]] = ("ngram", ids[k])
        else:
            prompts[r["text"]] = ("rephrase", (ids[k], rule_would_flag(items, weights, k, r["text"])))
    for k in rng.sample(range(len(items)), 60):  # same wording, one number changed: another problem
        changed = change_one_number(items[k], rng)
        if changed is not None and len(normalized_words([changed]).to_list()[0]) >= 8:
            prompts[changed] = ("template", ids[k])
    for c in CLEAN:
        prompts[c] = ("clean", None)
    recipe = replay(
        tmp_path,
        list(prompts),
        decontaminate={"benchmarks": ["math500", "gsm8k"], "data_dir": str(BENCH_DIR), "rephrase": {}},
    )
    r = run_cli("build", str(recipe))
    assert r.returncode == 0, r.stderr
    ledger = {row["prompt"]: row for row in read_ledger(tmp_path / "out")}
    assert len(ledger) == len(prompts)
    expected_rephrase = 0
    for prompt, (kind, want) in prompts.items():
        row = ledger[prompt]
        hits = {(h["benchmark"], h["item"]): h for h in row["contamination"]}
        if kind == "short":
            assert hits[want]["method"] == "whole_item" and hits[want]["score"] == 1.0, prompt  # type: ignore[index]
            assert row["drop_reason"] == "contaminated" and not row["kept"]
        elif kind == "ngram":
            assert hits[want]["method"] == "ngram", prompt  # type: ignore[index]
        elif kind == "rephrase":
            item, flag = want  # type: ignore[misc]
            expected_rephrase += flag
            assert (item in hits and hits[item]["method"] == "rephrase") == flag, prompt
            if flag:
                assert hits[item]["item_text"] == items[key[item]][:2000] and hits[item]["score"] >= 0.65
        elif kind == "template":
            assert all(h["method"] == "ngram" for h in row["contamination"]), (prompt, row["contamination"])
        else:
            assert row["contamination"] == [] and row["kept"], prompt
    assert expected_rephrase >= 5  # the rule catches a good share of the rephrasings with 3+ numbers

    stats = run_cli("stats", str(tmp_path / "out"), "--format", "json")
    assert stats.returncode == 0, stats.stderr
    summary = json.loads(stats.stdout)
    by = {(x["benchmark"], x["method"]): x for x in summary["contamination"]}
    assert by[("math500", "whole_item")]["prompts"] == sum(1 for k in short if ids[k][0] == "math500")
    assert sum(x["prompts"] for (_, m), x in by.items() if m == "rephrase") == expected_rephrase
    examples = {(x["benchmark"], x["method"]): x for x in summary["contamination examples"]}
    assert set(examples) == set(by)
    ex = examples[("math500", "whole_item")]
    assert ex["prompt"].startswith("Solve the following.") and ex["item_text"]
    card = (tmp_path / "out" / "dataset" / "README.md").read_text()
    assert "Decontamination matches per benchmark and method" in card
    assert "| math500 | whole_item |" in card and "| gsm8k | rephrase |" in card


def test_benchmarks_from_an_eval_config(tmp_path: Path) -> None:
    evals = tmp_path / "evals"
    evals.mkdir()
    mine = [
        {"id": "m1", "problem": "Find the sum of the first 40 odd numbers greater than 7.", "answer": "1"}
    ]
    (evals / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mine))
    (evals / "student.yaml").write_text(
        yaml.safe_dump(
            {
                "models": ["out/student"],
                "output": "eval-out",
                "benchmarks": ["aime25", "mine=mine.jsonl"],
                "data_dir": str(BENCH_DIR),
                "k": [1],
                "n": 1,
            }
        )
    )
    aime = jsonl_rows("aime25.jsonl")[3]["problem"]
    prompts = [
        f"Please solve: {aime}",
        "Here: find the sum of the first 40 odd numbers greater than 7.",
        CLEAN[0],
    ]
    recipe = replay(
        tmp_path,
        prompts,
        decontaminate={"benchmarks": "eval", "eval_config": "evals/student.yaml"},
    )
    r = run_cli("build", str(recipe))
    assert r.returncode == 0, r.stderr
    ledger = {row["prompt"]: row for row in read_ledger(tmp_path / "out")}
    assert [(h["benchmark"], h["item"], h["method"]) for h in ledger[prompts[0]]["contamination"]] == [
        ("aime25", "3", "ngram")
    ]
    assert [(h["benchmark"], h["item"]) for h in ledger[prompts[1]]["contamination"]] == [("mine", "m1")]
    assert ledger[prompts[2]]["contamination"] == []
    # the same file drives `tracekit eval --config` (parsed here without running a model)
    from tracekit.cli import build_parser
    from tracekit.eval.cli import config_from_args

    args = build_parser().parse_args(
        ["eval", "--config", str(evals / "student.yaml"), "--n", "4", "--k", "1,4"]
    )
    cfg = config_from_args(args)
    assert cfg.benchmarks == ["aime25", f"mine={evals / 'mine.jsonl'}"]
    assert cfg.output == str(evals / "eval-out") and (cfg.n, cfg.k) == (4, [1, 4])


def test_bad_benchmark_input_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "mine.jsonl").write_text(json.dumps({"prompt": "x"}) + "\n")
    recipe = replay(
        tmp_path,
        [CLEAN[0]],
        decontaminate={"benchmarks": [{"name": "mine", "path": "mine.jsonl", "column": "question"}]},
    )
    for cmd in ("validate", "build"):
        r = run_cli(cmd, str(recipe))
        assert r.returncode == 2, r.stderr
        assert "mine.jsonl" in r.stderr and "no column 'question'" in r.stderr and "Traceback" not in r.stderr
        assert "decontaminate.benchmarks[0]" in r.stderr
    assert not (tmp_path / "out" / "ledger").exists()
    recipe = replay(tmp_path, [CLEAN[0]], decontaminate={"benchmarks": "eval", "eval_config": "nope.yaml"})
    r = run_cli("build", str(recipe))
    assert r.returncode == 2 and "nope.yaml not found" in r.stderr and "decontaminate.eval_config" in r.stderr
    recipe = replay(tmp_path, [CLEAN[0]], decontaminate={"benchmarks": "eval"})
    r = run_cli("validate", str(recipe))
    assert r.returncode == 2 and "needs `eval_config:`" in r.stderr
