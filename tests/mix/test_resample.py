"""`fill: resample`: a build goes back to the (replay) teacher until the quotas are met or it runs dry."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import run_cli, write_recipe
from tests.publish.conftest import SOURCES, write_toy_sources
from tracekit.engine.layout import BuildLayout
from tracekit.mix.config import MixConfig
from tracekit.mix.resample import feeding_sources, widen
from tracekit.sources.config import SourceConfig


def build(tmp: Path, *, limit: int, count: int, max_rounds: int = 4, math_rows: int = 30) -> Path:
    write_toy_sources(tmp, math_rows=math_rows)
    sources = [dict(SOURCES[0], limit=limit), SOURCES[1]]
    mix = {
        "seed": 2,
        "fill": "resample",
        "max_rounds": max_rounds,
        "buckets": [
            {"name": "math", "where": "domain = 'math'", "count": count},
            {"name": "general", "where": "domain = 'general'", "count": 4},
        ],
    }
    recipe = write_recipe(
        tmp, sources=sources, name="rs", mix=mix, teacher={"kind": "dataset", "max_generations": 2}
    )
    proc = run_cli("build", str(recipe), cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mix quotas" in proc.stderr + proc.stdout
    return tmp / "out"


def ledger(out: Path) -> pl.DataFrame:
    return pl.read_parquet(BuildLayout(out).ledger / "*.parquet")


@pytest.mark.slow
def test_resample_samples_new_prompts_until_the_quota_is_met(tmp_path: Path) -> None:
    out = build(tmp_path, limit=4, count=25)  # 4 prompts x 2 = 8 traces at first
    rounds = json.loads(BuildLayout(out).resample_log.read_text())
    assert [r["limits"]["toy-math"] for r in rounds] == [8, 16]  # 16 prompts x 2 = 32 >= 25
    led = ledger(out)
    assert led["trace_id"].n_unique() == led.height
    math = led.filter(pl.col("source") == "toy-math")
    assert math.height == 32 and math["row_index"].max() == 15
    ds = pl.read_parquet(BuildLayout(out).dataset_data / "*.parquet")
    assert ds.filter(pl.col("bucket") == "math").height == 25
    sf = json.loads(BuildLayout(out).shortfall.read_text())
    assert [r["short"] for r in sf] == [0, 0]


@pytest.mark.slow
def test_resample_stops_when_the_sources_run_dry(tmp_path: Path) -> None:
    out = build(tmp_path, limit=3, count=100, max_rounds=8, math_rows=6)  # 6 rows x 4 generations exist
    rounds = json.loads(BuildLayout(out).resample_log.read_text())
    assert [(r["limits"]["toy-math"], r["samples"]) for r in rounds] == [(6, 2), (12, 2), (12, 4), (12, 8)]
    led = ledger(out).filter(pl.col("source") == "toy-math")
    assert led.height == 24 and led["trace_id"].n_unique() == led.height  # every generation once
    sf = {r["bucket"]: r for r in json.loads(BuildLayout(out).shortfall.read_text())}
    assert sf["math"] == {"bucket": "math", "requested": 100, "available": 24, "selected": 24, "short": 76}


def test_feeding_sources_and_widening() -> None:
    sources = [
        SourceConfig(name="m", domain="math", path="x", limit=10),
        SourceConfig(name="g", domain="general", path="y"),
    ]
    mix = MixConfig.model_validate(
        {
            "buckets": [
                {"name": "r", "where": "domain = 'math' AND verdict = 'correct'", "count": 5},
                {"name": "g", "where": "domain = 'general'", "count": 5},
            ]
        }
    )
    assert feeding_sources(sources, mix, ["r"]) == ["m"]  # verdict unknown before sampling: may hold
    assert feeding_sources(sources, mix, ["g"]) == ["g"]
    spec = {"limits": {"m": 10, "g": None}, "samples": 4, "sources": []}
    assert widen(spec, feeding=["m"], dry=set(), can_sample_more=True) == {
        "limits": {"m": 20, "g": None},
        "samples": 4,
        "sources": ["m"],
    }
    assert widen(spec, feeding=["m"], dry={"m"}, can_sample_more=True) == {
        "limits": {"m": 10, "g": None},
        "samples": 8,
        "sources": ["m"],
    }
    assert widen(spec, feeding=["g"], dry=set(), can_sample_more=False) is None
