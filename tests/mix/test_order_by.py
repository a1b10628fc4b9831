"""`order_by` in a mix bucket: generated ledgers (ties, nulls, several traces per prompt, caps) checked
against an order computed here in Python, and the guard that keeps anything but ledger columns out."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError

from tests.mix.ledger import trace, write_ledger
from tracekit.mix.config import MixConfig, order_by_sql
from tracekit.mix.stage import MixStage


def decide(tmp: Path, cfg: dict[str, Any]) -> dict[str, str | None]:
    step = MixStage(
        config=MixConfig.model_validate(cfg),
        input_dir=str(tmp / "traces"),
        decision_paths=[],
        output_path=str(tmp / "mix.parquet"),
        shortfall_path=str(tmp / "mix.shortfall.json"),
    )
    table, _ = step.decide()
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    return dict(zip(df["trace_id"].to_list(), df["drop_reason"].to_list(), strict=True))


def gen_rows(rng: random.Random) -> list[dict[str, Any]]:
    """Prompts with 1-4 traces; pass rates from a small grid (ties), some null; token counts with ties and nulls."""
    rows = []
    for p in range(rng.randint(5, 40)):
        rate = rng.choice([None, 0.0, 0.125, 0.25, 0.5, 0.5, 0.75, 1.0])
        domain = rng.choice(["algebra", "geometry"])
        for i in range(rng.randint(1, 4)):
            tokens = rng.choice([None, *range(10, 200, 10)])
            r = trace(f"t{p}-{i}", f"question {p}?", sample=i, domain=domain, tokens=0)
            r.update(pass_rate=rate, completion_tokens=tokens)
            rows.append(r)
    return rows


def key(row: dict[str, Any]) -> tuple[Any, ...]:
    """`pass_rate ASC, completion_tokens DESC`, nulls last (the oracle, written from the definition)."""
    rate, tok = row["pass_rate"], row["completion_tokens"]
    return (rate is None, rate or 0.0, tok is None, -(tok or 0))


@pytest.mark.parametrize("seed", range(12))
def test_budget_takes_the_ordered_prefix(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    rows = gen_rows(rng)
    write_ledger(tmp_path / "traces", rows, shards=rng.randint(1, 3))
    cap = rng.choice([None, 1, 2])
    budget = rng.randint(1, len(rows))
    cfg: dict[str, Any] = {
        "seed": seed,
        "buckets": [{"name": "hard", "order_by": "pass_rate ASC, completion_tokens DESC", "count": budget}],
    }
    if cap:
        cfg["max_per_prompt"] = cap
    got = decide(tmp_path, cfg)
    by_id = {r["trace_id"]: r for r in rows}

    # per prompt: the traces left after the cap are the prompt's best `cap` by the order
    eligible = [t for t, reason in got.items() if reason != "mix_max_per_prompt"]
    by_prompt: dict[str, list[str]] = {}
    for r in rows:
        by_prompt.setdefault(r["prompt_id"], []).append(r["trace_id"])
    for tids in by_prompt.values():
        elig = [t for t in tids if t in eligible]
        assert len(elig) == (len(tids) if cap is None else min(cap, len(tids)))
        rest = [t for t in tids if t not in elig]
        if elig and rest:
            assert max(key(by_id[t]) for t in elig) <= min(key(by_id[t]) for t in rest)

    # the bucket: exactly min(budget, eligible) selected, and they are a prefix of the order
    chosen = [t for t, reason in got.items() if reason is None]
    over = [t for t, reason in got.items() if reason == "mix_over_quota"]
    assert len(chosen) == min(budget, len(eligible))
    if chosen and over:
        assert max(key(by_id[t]) for t in chosen) <= min(key(by_id[t]) for t in over)


def test_ties_go_one_trace_per_prompt_at_a_time(tmp_path: Path) -> None:
    rows = []
    for p in range(10):
        for i in range(3):
            r = trace(f"t{p}-{i}", f"q{p}?", sample=i)
            r.update(pass_rate=0.5)
            rows.append(r)
    write_ledger(tmp_path / "traces", rows)
    got = decide(tmp_path, {"buckets": [{"name": "b", "order_by": "pass_rate", "count": 15}]})
    per_prompt: dict[str, int] = {}
    for t, reason in got.items():
        if reason is None:
            per_prompt[t.split("-")[0]] = per_prompt.get(t.split("-")[0], 0) + 1
    assert sorted(per_prompt.values()) == [1] * 5 + [2] * 5  # every prompt once before any twice


def test_equal_shares_per_domain_label(tmp_path: Path) -> None:
    """s1's uniform coverage: one bucket per domain with equal shares, each taking its hardest first."""
    rng = random.Random(7)
    rows = []
    for p in range(60):
        dom = ["algebra", "geometry", "number_theory"][p % 3]
        r = trace(f"t{p}", f"q{p}?")
        r.update(domain_label=dom, pass_rate=rng.choice([0.0, 0.25, 0.5, 0.75]))
        rows.append(r)
    write_ledger(tmp_path / "traces", rows)
    buckets = [
        {"name": d, "where": f"domain_label = '{d}'", "share": 1 / 3, "order_by": "pass_rate ASC"}
        for d in ("algebra", "geometry", "number_theory")
    ]
    got = decide(tmp_path, {"total": 9, "buckets": buckets})
    by_id = {r["trace_id"]: r for r in rows}
    for d in ("algebra", "geometry", "number_theory"):
        chosen = [by_id[t]["pass_rate"] for t, reason in got.items() if reason is None and by_id[t]["domain_label"] == d]
        rates = sorted(r["pass_rate"] for r in rows if r["domain_label"] == d)
        assert sorted(chosen) == rates[:3]


@pytest.mark.parametrize(
    "bad",
    [
        "nope ASC",
        "pass_rate; DROP TABLE traces",
        "pass_rate ASC, (SELECT 1)",
        "random()",
        "pass_rate ASCENDING",
        "pass_rate ASC NULLS",
        "pass_rate -- comment",
        "",
        "pass_rate,",
        "pass_rate' OR '1'='1",
    ],
)
def test_order_by_refuses_anything_but_ledger_columns(bad: str) -> None:
    with pytest.raises(ValidationError) as e:
        MixConfig.model_validate({"buckets": [{"name": "b", "count": 1, "order_by": bad}]})
    assert "order_by" in str(e.value)


def test_order_by_sql_is_rebuilt_from_its_parts() -> None:
    assert order_by_sql(" pass_rate  desc nulls first ,difficulty_rating") == (
        '"pass_rate" DESC NULLS FIRST, "difficulty_rating" ASC NULLS LAST'
    )
