"""Majority answers without a gold, and gold repair: generated prompts whose samples write a few exact
values in many spellings, checked against votes counted here with exact fractions."""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Any

import pytest
from datatrove.data import Document

from tracekit.record import empty_record
from tracekit.verify.majority import count_votes, group_agreeing
from tracekit.verify.math import MathVerifyConfig
from tracekit.verify.math_step import MathVerifyStep

VALUES = [Fraction(1, 2), Fraction(3), Fraction(-2), Fraction(7, 4), Fraction(10), Fraction(2, 3)]


def spell(v: Fraction, rng: random.Random) -> str:
    """One way of writing v (the verifier must see through all of them)."""
    ways = []
    if v.denominator == 1:
        ways += [str(v.numerator), f"{v.numerator}.0", f"\\frac{{{2 * v.numerator}}}{{2}}"]
    else:
        sign = "-" if v < 0 else ""
        p, q = abs(v.numerator), v.denominator
        ways += [f"{sign}\\frac{{{p}}}{{{q}}}", f"{sign}\\dfrac{{{p}}}{{{q}}}", f"{v.numerator}/{q}"]
        if q in (2, 4):
            ways.append(str(float(v)))
    return rng.choice(ways)


REFUSALS = ["I give up", "No idea", "not sure", "cannot say", "Unknown", "unsure", "I do not know", "unclear"]


def refusal(phrase: str, rng: random.Random) -> str:
    """A sample that answers with a refusal, in one of the ways a model writes it."""
    phrase = rng.choice([phrase, phrase.lower(), phrase.upper(), phrase + "."])
    return rng.choice([phrase, f"$\\boxed{{{phrase}}}$", f"$\\boxed{{\\text{{{phrase}}}}}$"])


def gen_prompt(rng: random.Random, p: int, *, gold: Fraction | None) -> tuple[list[Document], list[Any]]:
    """n samples: an exact value, no answer or a refusal (None) or a failed request ('error')."""
    n = rng.randint(1, 10)
    pool = rng.sample(VALUES, rng.randint(1, 3))
    refuses = rng.choice(REFUSALS)  # a model that refuses repeats itself
    truth: list[Any] = []
    docs = []
    gold_text = None if gold is None else spell(gold, rng)
    for i in range(n):
        kind = rng.random()
        md = empty_record()
        md.update(source="s", source_file="f.jsonl", row_index=p, prompt_id=f"p{p}", domain="math")
        md["gold_answer"] = gold_text
        if kind < 0.08:
            truth.append("error")
            md.update(error="HTTP 500", verdict="error")
            text = ""
        elif kind < 0.16:
            truth.append(None)
            text = "I could not finish."
        elif kind < 0.4:
            truth.append(None)
            text = refusal(refuses, rng)
        else:
            v = rng.choice(pool)
            truth.append(v)
            text = f"So the answer is $\\boxed{{{spell(v, rng)}}}$."
        md["answer_text"] = text
        docs.append(Document(id=f"p{p}-{i}", text=f"<think>..</think>{text}", metadata=md))
    return docs, truth


def oracle_vote(truth: list[Any], need: Fraction) -> Fraction | None:
    voters = [t for t in truth if not (isinstance(t, str) and t == "error")]
    counts: dict[Fraction, int] = {}
    for t in voters:
        if isinstance(t, Fraction):
            counts[t] = counts.get(t, 0) + 1
    if not counts:
        return None
    ranked = sorted(counts.values(), reverse=True)
    best = max(counts, key=lambda k: counts[k])
    if len(ranked) > 1 and ranked[0] == ranked[1]:
        return None
    return best if Fraction(ranked[0], len(voters)) >= need else None


def expected_verdict(t: Any, reference: Fraction) -> str:
    return "correct" if isinstance(t, Fraction) and t == reference else "incorrect"


@pytest.fixture(scope="module")
def majority_step() -> MathVerifyStep:
    return MathVerifyStep(config=MathVerifyConfig(no_gold="majority", min_agreement=0.5))


def test_no_gold_majority_matches_exact_counting(majority_step: MathVerifyStep) -> None:
    rng = random.Random(1)
    prompts = [gen_prompt(rng, p, gold=None) for p in range(80)]
    stream = [d for docs, _ in prompts for d in docs]
    out = {d.id: d.metadata for d in majority_step.run(stream)}
    seen_majority = seen_none = 0
    for docs, truth in prompts:
        ref = oracle_vote(truth, Fraction(1, 2))
        for d, t in zip(docs, truth, strict=True):
            md = out[d.id]
            if ref is None:
                seen_none += 1
                assert (md["verdict"], md["verify_detail"]) == ("unverified", "no_majority"), (truth, md)
                assert md["gold_source"] is None and md["majority_answer"] is None
            else:
                seen_majority += 1
                assert md["verdict"] == expected_verdict(t, ref), (truth, md)
                assert md["gold_source"] == "majority" and md["verify_method"] == "math_majority"
                assert md["majority_answer"] is not None
                assert md["kept"] is (md["verdict"] == "correct")
    assert seen_majority > 100 and seen_none > 20  # both outcomes were exercised


@pytest.mark.parametrize("need", [0.3, 0.5, 0.75, 1.0])
def test_min_agreement_threshold(need: float) -> None:
    step = MathVerifyStep(config=MathVerifyConfig(no_gold="majority", min_agreement=need))
    rng = random.Random(int(need * 100))
    prompts = [gen_prompt(rng, p, gold=None) for p in range(30)]
    out = {d.id: d.metadata for d in step.run([d for docs, _ in prompts for d in docs])}
    for docs, truth in prompts:
        ref = oracle_vote(truth, Fraction(need).limit_denominator(100))
        got = {out[d.id]["gold_source"] for d in docs}
        assert got == ({"majority"} if ref is not None else {None}), (truth, need)


def test_gold_repair_only_when_no_sample_matches_and_a_strong_majority_agrees() -> None:
    step = MathVerifyStep(config=MathVerifyConfig(gold_repair="majority"))  # 0.75 by default
    rng = random.Random(5)
    golds = [rng.choice(VALUES) for _ in range(60)]
    prompts = [gen_prompt(rng, p, gold=g) for p, g in enumerate(golds)]
    texts = {d.id: d.metadata["gold_answer"] for docs, _ in prompts for d in docs}
    out = {d.id: d.metadata for d in step.run([d for docs, _ in prompts for d in docs])}
    repaired = given = 0
    for (docs, truth), gold in zip(prompts, golds, strict=True):
        matched = any(isinstance(t, Fraction) and t == gold for t in truth)
        ref = None if matched else oracle_vote(truth, Fraction(3, 4))
        for d, t in zip(docs, truth, strict=True):
            md = out[d.id]
            assert md["gold_answer"] == texts[d.id]  # the given gold is never overwritten
            if ref is not None:
                repaired += 1
                assert md["gold_source"] == "repaired" and md["verdict"] == expected_verdict(t, ref)
            else:
                given += 1
                assert md["gold_source"] == "given" and md["verdict"] == expected_verdict(t, gold), (truth, gold, md)
    assert repaired > 5 and given > 50


def test_without_votes_a_gold_less_trace_stays_unverified() -> None:
    rng = random.Random(2)
    docs, _ = gen_prompt(rng, 0, gold=None)
    out = list(MathVerifyStep().run(docs))
    assert {d.metadata["verdict"] for d in out} <= {"unverified", "error"}
    assert {d.metadata["gold_source"] for d in out} == {None}


def test_grouping_follows_the_agree_function() -> None:
    rng = random.Random(3)
    for _ in range(200):
        vals = [rng.choice([None, 1, 2, 3, 4]) for _ in range(rng.randint(0, 12))]
        answers = [None if v is None else f"v{v}" if rng.random() < 0.5 else f"w{v}" for v in vals]
        groups = group_agreeing(answers, lambda i, j, vals=vals: vals[i] == vals[j])
        expect: dict[int, list[int]] = {}
        for i, v in enumerate(vals):
            if v is not None:
                expect.setdefault(v, []).append(i)
        assert sorted(map(sorted, groups)) == sorted(expect.values())
        assert [len(g) for g in groups] == sorted((len(g) for g in groups), reverse=True)
        voters = len(vals)
        vote = count_votes(groups, voters=voters, min_agreement=0.5)
        sizes = sorted((len(g) for g in expect.values()), reverse=True)
        win = bool(sizes) and (len(sizes) == 1 or sizes[0] > sizes[1]) and 2 * sizes[0] >= voters
        assert (vote.winner is not None) == win


def test_verify_stage_reads_each_prompt_whole(tmp_path: Any) -> None:
    """The verify stage of a live teacher reads shards back: a prompt's samples rolled over two shards
    by their writer must still reach one task, in order (else its vote would be split)."""
    from tracekit.ledger.reader import TraceShardReader
    from tracekit.ledger.writer import TraceShardWriter

    rng = random.Random(9)
    written: dict[int, list[Document]] = {}
    for rank in range(3):
        docs = [d for p in range(rank * 10, rank * 10 + 10) for d in gen_prompt(rng, p, gold=None)[0]]
        for d in docs:
            d.metadata["source_file"], d.metadata["kept"] = "f.jsonl", True
        written[rank] = docs
        list(TraceShardWriter(folder=str(tmp_path), rows_per_file=3).run(iter(docs), rank=rank, world_size=3))
    assert len(list(tmp_path.glob("*.parquet"))) > 6  # shards rolled mid-prompt
    for world in (1, 2, 3):
        owner: dict[Any, int] = {}
        order: list[str] = []
        for rank in range(world):
            for d in TraceShardReader(folder=str(tmp_path)).run(None, rank, world):
                assert owner.setdefault(d.metadata["prompt_id"], rank) == rank
                order.append(d.id)
        want = [d.id for r in range(3) for d in written[r]]
        assert sorted(order) == sorted(want)
        for rank in range(world):  # each task sees its writers' traces in the order they were written
            mine = [d.id for r in range(3) if r % world == rank for d in written[r]]
            assert [i for i in order if i in set(mine)] == mine


def test_build_without_gold_votes(tmp_path: Any) -> None:
    from tests.conftest import read_ledger, replay_recipe, run_cli

    rows = [
        {"q": "A?", "a": None, "g": ["\\boxed{2}", "\\boxed{2.0}", "\\boxed{3}", "\\boxed{4/2}"]},
        {"q": "B?", "a": None, "g": ["\\boxed{1}", "\\boxed{2}", "\\boxed{3}", "no answer"]},
        {"q": "C?", "a": "5", "g": ["\\boxed{7}", "\\boxed{7}", "\\boxed{7}", "\\boxed{7}"]},
        {"q": "D?", "a": "5", "g": ["\\boxed{5}", "\\boxed{7}", "\\boxed{7}", "\\boxed{7}"]},
    ]
    recipe = replay_recipe(
        tmp_path, rows, verify={"math": {"no_gold": "majority", "min_agreement": 0.5, "gold_repair": "majority"}}
    )
    r = run_cli("build", str(recipe))
    assert r.returncode == 0, r.stderr
    got: dict[str, list[tuple[Any, ...]]] = {}
    for row in read_ledger(tmp_path / "out"):
        got.setdefault(row["prompt"], []).append(
            (row["sample_index"], row["verdict"], row["gold_source"], row["majority_answer"], row["gold_answer"])
        )
    assert sorted(got["A?"]) == [
        (0, "correct", "majority", "2", None),
        (1, "correct", "majority", "2", None),
        (2, "incorrect", "majority", "2", None),
        (3, "correct", "majority", "2", None),
    ]
    assert {v[1:4] for v in got["B?"]} == {("unverified", None, None)}
    assert {v[1:] for v in got["C?"]} == {("correct", "repaired", "7", "5")}  # recorded, gold kept
    assert {v[2] for v in got["D?"]} == {"given"}  # one sample matches the gold: no repair
    card = (tmp_path / "out" / "dataset" / "README.md").read_text()
    assert "repaired" in card
