"""Pass-rate selection arithmetic: generated prompts whose student answers (replayed) have known
correct counts, and pass-rate columns with good and bad values, against a window computed here with
exact fractions; then the same through `tracekit build` (ledger rows, the sample stage, the card)."""

from __future__ import annotations

import json
import random
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from datatrove.data import Document

from tests.conftest import read_ledger, run_cli, write_recipe
from tracekit.engine.layout import BuildLayout
from tracekit.parse.step import ParseStep
from tracekit.record import prompt_id
from tracekit.select.config import ColumnPassRate, ReplayStudent
from tracekit.select.pass_rate import PASS_RATE_KEY, STUDENT_KEY, PassRateStep
from tracekit.sources.config import SourceConfig
from tracekit.stats import queries
from tracekit.stats.db import connect
from tracekit.teachers.replay import ReplayTeacher
from tracekit.verify.math_step import MathVerifyStep

GRID = [Fraction(k, 8) for k in range(9)]  # dyadic bounds: exact in binary, so float order = exact order


def gen_case(rng: random.Random, i: int) -> tuple[dict[str, Any], Fraction | None]:
    """A prompt row with k student answers, c of them right in some spelling; its exact pass rate."""
    gold = None if rng.random() < 0.1 else rng.randint(-20, 40)
    k = rng.choice([0, 1, 2, 3, 4, 5, 6, 8])
    answers, c = [], 0
    for _ in range(k):
        kind = rng.random()
        if gold is not None and kind < 0.45:
            c += 1
            answers.append(rng.choice([f"\\boxed{{{gold}}}", f"so $\\boxed{{\\frac{{{2 * gold}}}{{2}}}}$", f"\\boxed{{{gold}.0}}"]))
        elif kind < 0.85:
            answers.append(f"\\boxed{{{(gold or 0) + rng.randint(1, 9)}}}")
        else:
            answers.append("I give up.")
    row = {"q": f"Problem {i}: what is it?", "a": None if gold is None else str(gold), "s": answers}
    rate = Fraction(c, k) if gold is not None and k else None
    return row, rate


def expected(rate: Fraction | None, lo: Fraction, hi: Fraction) -> str | None:
    if rate is None or lo <= rate <= hi:
        return None
    return "too_hard" if rate < lo else "too_easy"


def prompt_doc(row: dict[str, Any], i: int, **extra: Any) -> Document:
    md = {
        "source": "m",
        "domain": "math",
        "difficulty": None,
        "source_file": "m.jsonl",
        "row_index": i,
        "prompt": row["q"],
        "prompt_id": prompt_id("m", row["q"]),
        "gold_answer": row["a"],
        "reasoning_enabled": True,
        **extra,
    }
    return Document(text=row["q"], id=f"m:m.jsonl:{i}", metadata=md)


@pytest.mark.parametrize("seed", range(4))
def test_student_pass_rate_and_window_match_exact_counts(seed: int) -> None:
    rng = random.Random(seed)
    cases = [gen_case(rng, i) for i in range(120)]
    lo, hi = sorted(rng.sample(GRID, 2))
    src = SourceConfig(name="m", path="m.jsonl")
    step = PassRateStep(
        config=ReplayStudent(kind="dataset", generations="s", keep=[float(lo), float(hi)]),
        student=ReplayTeacher(config_hash="student", model="s", sources=[src]),
        checks=[ParseStep(), MathVerifyStep()],
        student_name="s",
    )
    docs = [prompt_doc(row, i, **{STUDENT_KEY: row["s"], "_generations": ["teacher's"]}) for i, (row, _) in enumerate(cases)]
    out = list(step.run(iter(docs)))
    assert [d.id for d in out] == [d.id for d in docs]  # every prompt, in order
    reasons: dict[Any, int] = {}
    for d, (row, rate) in zip(out, cases, strict=True):
        md = d.metadata
        want = expected(rate, lo, hi)
        reasons[want] = reasons.get(want, 0) + 1
        assert md["pass_rate"] == (None if rate is None else float(rate)), (row, md["pass_rate"])
        assert md.get("drop_reason") == want and md.get("kept", True) is (want is None)
        student = json.loads(md["selection"])["student"]
        assert student["samples"] == len(row["s"]) and student["model"] == "s"
        if rate is not None:
            assert Fraction(student["correct"], student["correct"] + student["incorrect"]) == rate
        assert md["_generations"] == ["teacher's"] and STUDENT_KEY not in md  # the teacher's replay is untouched
    assert len(reasons) >= 2  # the window both kept and dropped prompts


def test_source_pass_rate_column() -> None:
    rng = random.Random(11)
    values: list[Any] = [0.0, 0.125, 0.5, 0.875, 1.0, "0.25", None, "n/a", -0.1, 1.5, float("nan"), True, 3]
    lo, hi = 0.125, 0.5
    docs, want = [], []
    for i in range(200):
        v = rng.choice(values)
        docs.append(prompt_doc({"q": f"q{i}", "a": "1"}, i, **{PASS_RATE_KEY: v}))
        ok = not isinstance(v, bool) and v is not None and v != "n/a"
        rate = float(v) if ok else None
        if rate is not None and not (0 <= rate <= 1):  # nan fails both comparisons too
            rate = None
        want.append((rate, None if rate is None or lo <= rate <= hi else "too_hard" if rate < lo else "too_easy"))
    out = list(PassRateStep(config=ColumnPassRate(column="r", keep=[lo, hi])).run(iter(docs)))
    for d, (rate, reason) in zip(out, want, strict=True):
        assert d.metadata["pass_rate"] == rate and d.metadata.get("drop_reason") == reason
        assert PASS_RATE_KEY not in d.metadata


def test_build_selects_before_sampling(tmp_path: Path) -> None:
    """Replay teacher, replayed student, two tasks, a mix ordered by pass rate: dropped prompts are one
    ledger row each, only the window is sampled, and the card shows the selection funnel."""
    rng = random.Random(3)
    rows, rates = [], []
    for i in range(40):
        row, rate = gen_case(rng, i)
        row["g"] = [f"<think>t</think>\\boxed{{{row['a']}}}", "<think>t</think>\\boxed{1000}"]
        rows.append(row)
        rates.append(rate)
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = write_recipe(
        tmp_path,
        sources=[{"name": "m", "path": "m.jsonl", "columns": {"prompt": "q", "answer": "a", "generations": "g"}}],
        verify={"math": {}},
        select={"pass_rate": {"kind": "dataset", "generations": "s", "model": "student-x", "keep": [0.25, 0.75]}},
        mix={"buckets": [{"name": "hard", "where": "verdict = 'correct'", "count": 5, "order_by": "pass_rate ASC"}]},
        rows_per_shard=7,
    )
    r = run_cli("build", str(recipe))
    assert r.returncode == 0, r.stderr
    ledger = read_ledger(tmp_path / "out")
    by_row: dict[int, list[dict[str, Any]]] = {}
    for x in ledger:
        by_row.setdefault(x["row_index"], []).append(x)
    assert sorted(by_row) == list(range(40))
    lo, hi = Fraction(1, 4), Fraction(3, 4)
    for i, rate in enumerate(rates):
        got = by_row[i]
        reason = expected(rate, lo, hi)
        if reason is not None:  # one row, no sample
            assert [(x["sample_index"], x["drop_reason"], x["kept"], x["completion"]) for x in got] == [
                (None, reason, False, "")
            ]
        else:
            assert sorted(x["sample_index"] for x in got) == [0, 1]
        assert {x["pass_rate"] for x in got} == {None if rate is None else float(rate)}
    chosen = [x for x in ledger if x["kept"]]
    window = sorted(float(r) for r in rates if r is not None and lo <= r <= hi)
    assert sorted(x["pass_rate"] for x in chosen) == window[:5]  # the budget went to the hardest first
    card = (tmp_path / "out" / "dataset" / "README.md").read_text()
    n_read, n_window = 40, sum(1 for r in rates if expected(r, lo, hi) is None)
    assert f"| {n_read} | {n_window} | {n_window} | {n_window} |" in card
    assert "![selection](plots/selection.png)" in card
    assert (tmp_path / "out" / "dataset" / "plots" / "selection.png").stat().st_size > 1000
    con = connect(ledger=BuildLayout(tmp_path / "out").ledger)  # the pass rates the plot shows, by outcome
    outside = sorted(float(r) for r in rates if r is not None and not lo <= r <= hi)
    assert sorted(queries.prompt_pass_rates(con, sampled=True)) == window
    assert sorted(queries.prompt_pass_rates(con, sampled=False)) == outside
    assert not (tmp_path / "out" / "work" / "selected").exists()  # work folders go when the build ends
    dropped: dict[str, int] = {}
    for rate in rates:
        if (reason := expected(rate, lo, hi)) is not None:
            dropped[reason] = dropped.get(reason, 0) + 1
    for reason, n in dropped.items():  # the build's final table
        assert re.search(rf"prompts not sampled \(select\): {reason}\W+{n}\b", r.stderr), r.stderr


def majority_case(rng: random.Random, i: int) -> tuple[dict[str, Any], Fraction | None]:
    """A gold-less prompt whose student answers write a few values (or none); its exact pass rate
    under `no_gold: majority`: the largest group's share when it is alone on top with at least half."""
    k = rng.choice([0, 1, 2, 3, 4, 5, 6, 8])
    pool = rng.sample([2, 3, 5], rng.randint(1, 3))
    answers, values = [], []
    for _ in range(k):
        if rng.random() < 0.15:
            answers.append("I could not finish.")  # no final answer: votes for nothing
            continue
        v = rng.choice(pool)
        values.append(v)
        answers.append(rng.choice([f"\\boxed{{{v}}}", f"so $\\boxed{{\\frac{{{2 * v}}}{{2}}}}$", f"\\boxed{{{v}.0}}"]))
    sizes = sorted((values.count(v) for v in set(values)), reverse=True)
    alone = len(sizes) == 1 or (len(sizes) > 1 and sizes[0] > sizes[1])
    rate = Fraction(sizes[0], k) if sizes and alone and Fraction(sizes[0], k) >= Fraction(1, 2) else None
    return {"q": f"Problem {i}: what is it?", "a": None, "s": answers}, rate


@pytest.mark.parametrize("seed", range(2))
def test_student_pass_rate_without_gold_is_the_majority_share(seed: int) -> None:
    """With `no_gold: majority` the student's own answers vote: a gold-less prompt's pass rate is the
    share that reached its majority answer; with no majority it has none (and is kept)."""
    from tracekit.verify.math import MathVerifyConfig

    rng = random.Random(100 + seed)
    cases = [majority_case(rng, i) for i in range(80)]
    lo, hi = 0.5, 0.75
    step = PassRateStep(
        config=ReplayStudent(kind="dataset", generations="s", keep=[lo, hi]),
        student=ReplayTeacher(config_hash="student", model="s", sources=[SourceConfig(name="m", path="m.jsonl")]),
        checks=[ParseStep(), MathVerifyStep(config=MathVerifyConfig(no_gold="majority", min_agreement=0.5))],
        student_name="s",
    )
    docs = [prompt_doc(row, i, **{STUDENT_KEY: row["s"]}) for i, (row, _) in enumerate(cases)]
    out = list(step.run(iter(docs)))
    assert [d.id for d in out] == [d.id for d in docs]
    for d, (row, rate) in zip(out, cases, strict=True):
        assert d.metadata["pass_rate"] == (None if rate is None else float(rate)), row["s"]
        assert d.metadata.get("drop_reason") == expected(rate, Fraction(lo), Fraction(hi))
    assert {r is None for _, r in cases} == {True, False}
