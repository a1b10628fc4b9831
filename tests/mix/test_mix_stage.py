"""MixStage against ledgers with known supply: exact quotas, shortfall, k per prompt, split, seeds."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datatrove.executor import LocalPipelineExecutor
from pydantic import ValidationError

from tests.mix.ledger import make_rows, trace, write_ledger
from tracekit.mix.config import MixConfig
from tracekit.mix.stage import MixStage, read_shortfall


def mix(tmp: Path, cfg: dict, *, decisions: list[str] | None = None, name: str = "mix") -> pl.DataFrame:
    out = tmp / f"{name}.parquet"
    step = MixStage(
        config=MixConfig.model_validate(cfg),
        input_dir=str(tmp / "traces"),
        decision_paths=decisions or [],
        output_path=str(out),
        shortfall_path=str(tmp / f"{name}.shortfall.json"),
    )
    LocalPipelineExecutor([step], tasks=1, logging_dir=str(tmp / f"logs-{name}")).run()
    return pl.read_parquet(out)


def selected(df: pl.DataFrame) -> pl.DataFrame:
    return df.filter(pl.col("drop_reason").is_null())


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    rows = (
        make_rows(prompts=50, per_prompt=4, source="m", domain="math")  # 200 correct math
        + make_rows(prompts=20, per_prompt=2, source="m2", domain="math", verdict="incorrect")
        + make_rows(
            prompts=30, per_prompt=1, source="g", domain="general", verdict="unverified"
        )  # 30 general
    )
    rows.append(trace("dropped-before", "m question 0?", source="m", kept=False))
    write_ledger(tmp_path / "traces", rows)
    return tmp_path


R1 = {
    "seed": 3,
    "buckets": [
        {"name": "reasoning", "where": "domain <> 'general' AND verdict = 'correct'", "count": 120},
        {"name": "general", "where": "domain = 'general'", "count": 20},
    ],
}


def test_exact_quota_per_bucket_and_first_bucket_wins(ledger: Path) -> None:
    cfg = {
        "buckets": [
            {"name": "correct", "where": "verdict = 'correct'", "count": 150},
            {
                "name": "math",
                "where": "domain = 'math'",
                "count": 500,
            },  # overlaps; gets only the incorrect ones
            {"name": "general", "where": "domain = 'general'", "count": 30},
        ]
    }
    df = mix(ledger, cfg)
    counts = dict(selected(df).group_by("bucket").len().iter_rows())
    assert counts == {"correct": 150, "math": 40, "general": 30}
    math_ids = selected(df).filter(pl.col("bucket") == "math")["trace_id"]
    assert all(t.startswith("m2-") for t in math_ids)
    assert df.filter(pl.col("drop_reason") == "mix_over_quota").height == 50
    assert "dropped-before" not in df["trace_id"].to_list()  # already dropped: not competing
    sf = {r["bucket"]: r for r in read_shortfall(ledger / "mix.shortfall.json") or []}
    assert sf["math"] == {"bucket": "math", "requested": 500, "available": 40, "selected": 40, "short": 460}
    assert sf["correct"]["short"] == 0 and sf["general"]["short"] == 0


def test_no_bucket_traces_are_dropped_with_a_mix_reason(ledger: Path) -> None:
    df = mix(ledger, R1)
    reasons = dict(df.group_by("drop_reason").len().iter_rows())
    assert reasons[None] == 140
    assert reasons["mix_no_bucket"] == 40  # the incorrect math traces
    assert reasons["mix_over_quota"] == (200 - 120) + (30 - 20)


def test_same_seed_same_selection_whatever_the_shard_layout(ledger: Path) -> None:
    a = set(selected(mix(ledger, R1, name="a"))["trace_id"])
    rows = pq.read_table(ledger / "traces").to_pylist()
    write_ledger(ledger / "traces", list(reversed(rows)), shards=5)
    b = set(selected(mix(ledger, R1, name="b"))["trace_id"])
    c = set(selected(mix(ledger, {**R1, "seed": 4}, name="c"))["trace_id"])
    assert a == b
    assert a != c and len(c) == len(a)


def test_prompts_are_spread_before_second_samples_and_capped(ledger: Path) -> None:
    cfg = {"buckets": [{"name": "r", "where": "verdict = 'correct'", "count": 50}]}
    per_prompt = selected(mix(ledger, cfg, name="spread")).join(
        pl.read_parquet(ledger / "traces").select("trace_id", "prompt_id"), on="trace_id"
    )
    assert per_prompt["prompt_id"].n_unique() == 50  # one trace of each of the 50 prompts
    cfg = {"max_per_prompt": 2, "buckets": [{"name": "r", "where": "verdict = 'correct'", "count": 150}]}
    df = mix(ledger, cfg, name="cap")
    assert selected(df).height == 100  # 50 prompts x 2
    assert df.filter(pl.col("drop_reason") == "mix_max_per_prompt").height == 100
    assert read_shortfall(ledger / "cap.shortfall.json") == [
        {"bucket": "r", "requested": 150, "available": 100, "selected": 100, "short": 50}
    ]


def test_earlier_decisions_are_applied_first(ledger: Path) -> None:
    dec = ledger / "dedup.parquet"
    dropped = [f"m-{p}-{i}" for p in range(50) for i in range(4) if p % 2 == 0]  # 100 of the 200
    pq.write_table(
        pa.table(
            {"trace_id": dropped, "drop_reason": ["duplicate_prompt"] * len(dropped), "duplicate_of": dropped}
        ),
        dec,
    )
    cfg = {"buckets": [{"name": "r", "where": "verdict = 'correct'", "count": 150}]}
    df = mix(ledger, cfg, decisions=[str(dec)])
    assert selected(df).height == 100
    assert not set(dropped) & set(df["trace_id"])


def test_split_by_prompt_text_never_straddles(tmp_path: Path) -> None:
    rows = make_rows(prompts=40, per_prompt=3, source="a") + make_rows(prompts=40, per_prompt=3, source="b")
    for r in rows:  # the same question text in both sources (different prompt ids)
        r["prompt"] = (
            r["prompt"].split(" ", 1)[1].upper() if r["source"] == "b" else r["prompt"].split(" ", 1)[1]
        )
    write_ledger(tmp_path / "traces", rows)
    cfg = {"buckets": [{"name": "all", "count": 200}], "split": {"test_prompts": 5, "seed": 1}}
    df = selected(mix(tmp_path, cfg)).join(
        pl.read_parquet(tmp_path / "traces").select("trace_id", "prompt"), on="trace_id"
    )
    df = df.with_columns(key=pl.col("prompt").str.to_lowercase())
    sides = df.group_by("key").agg(pl.col("split").n_unique().alias("n"), pl.col("split").first())
    assert sides["n"].max() == 1
    assert sides.filter(pl.col("split") == "test").height == 5
    assert set(df["split"]) == {"train", "test"}


def test_bad_predicate_names_the_bucket(ledger: Path) -> None:
    step = MixStage(
        config=MixConfig.model_validate(
            {"buckets": [{"name": "oops", "where": "no_such_column = 1", "count": 1}]}
        ),
        input_dir=str(ledger / "traces"),
        decision_paths=[],
        output_path=str(ledger / "x.parquet"),
        shortfall_path=str(ledger / "x.shortfall.json"),
    )
    with pytest.raises(ValueError, match="oops"):
        step.decide()


def test_shares_become_exact_counts_and_bad_configs_are_refused() -> None:
    cfg = MixConfig.model_validate(
        {"total": 800_000, "buckets": [{"name": "r", "share": 0.75}, {"name": "g", "share": 0.25}]}
    )
    assert cfg.quotas() == {"r": 600_000, "g": 200_000}
    thirds = MixConfig.model_validate({"total": 10, "buckets": [{"name": n, "share": 1 / 3} for n in "abc"]})
    assert sum(thirds.quotas().values()) == 10
    for bad in (
        {"buckets": [{"name": "r", "share": 0.5}]},  # share without total
        {"buckets": [{"name": "r", "count": 1, "share": 0.5}], "total": 2},
        {"buckets": [{"name": "r", "count": 1}, {"name": "r", "count": 2}]},
        {"buckets": [{"name": "r", "count": 1}], "split": {"test_size": 0.1, "test_prompts": 3}},
        {"buckets": [{"name": "r", "count": 1}], "fill": "sometimes"},
    ):
        with pytest.raises(ValidationError):
            MixConfig.model_validate(bad)
