"""The select stage in the engine: its place in the plan, what a cluster task gets (GPUs, pickled
steps), and resample rounds that select the prompts they add (and record a dropped prompt once)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from tests.conftest import run_cli, write_recipe
from tracekit.engine.config import SlurmExecutorConfig
from tracekit.engine.executors import stage_resources
from tracekit.engine.plan import plan_build
from tracekit.recipe import load_recipe

RATES = [0.0, 0.25, 0.5, 0.75, 1.0, 0.5, 0.25, 1.0, 0.0, 0.5]  # pass rate column of the 10 rows


def source(tmp: Path) -> None:
    rows = [
        {"q": f"Problem {i}?", "a": str(i), "r": RATES[i], "g": [f"<think>t</think>\\boxed{{{i}}}"] * 4}
        for i in range(len(RATES))
    ]
    (tmp / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def recipe(tmp: Path, **extra: Any) -> Path:
    source(tmp)
    return write_recipe(
        tmp,
        sources=[{"name": "m", "path": "m.jsonl", "columns": {"prompt": "q", "answer": "a", "generations": "g"}}],
        verify={"math": {}},
        select={"pass_rate": {"column": "r", "keep": [0.25, 0.75]}},
        **extra,
    )


def test_plan_has_select_before_sample_and_its_steps_pickle(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/v1"
    labels = {"judge": {"kind": "vllm", "model": "j"}, "ask": ["difficulty"]}
    path = recipe(tmp_path, teacher={"kind": "openai", "base_urls": [url], "model": "t"})
    raw = yaml.safe_load(path.read_text())
    raw["select"]["labels"] = labels
    path.write_text(yaml.safe_dump(raw))
    plan = plan_build(load_recipe(path))
    assert [s.name for s in plan.stages] == ["select", "sample", "verify", "finalize"]
    select, sample = plan.stages[0].pipeline, plan.stages[1].pipeline
    assert [type(s).__name__ for s in select] == [
        "SourceReader", "CountRows", "PassRateStep", "LabelStep", "CountRows", "SelectionSplit", "TraceShardWriter"
    ]
    assert type(sample[0]).__name__ == "SelectedPromptReader"
    for stage in plan.stages:  # what a Slurm or Ray task receives
        pickle.loads(pickle.dumps(stage.pipeline))

    # a live student: the build's parse and verify steps (no filters) check its answers
    raw["select"]["pass_rate"] = {"kind": "openai", "base_urls": [url], "model": "s", "n": 2, "keep": [0, 1]}
    path.write_text(yaml.safe_dump(raw))
    steps = plan_build(load_recipe(path)).stages[0].pipeline
    pr = next(s for s in steps if type(s).__name__ == "PassRateStep")
    assert [type(c).__name__ for c in pr.checks] == ["ParseStep", "MathVerifyStep"]
    assert type(pr.student).__name__ == "OpenAITeacher"
    pickle.loads(pickle.dumps(steps))
    assert not next(s for s in steps if type(s).__name__ == "LabelStep").after_upstream

    # a vLLM student and a vLLM judge: the judge starts once the student's engine has stopped
    raw["select"]["pass_rate"] = {"kind": "vllm", "model": "s", "n": 2, "keep": [0, 1]}
    path.write_text(yaml.safe_dump(raw))
    steps = plan_build(load_recipe(path)).stages[0].pipeline
    assert next(s for s in steps if type(s).__name__ == "LabelStep").after_upstream

    # several students: one teacher step each, with its own request cache; a vLLM one among them is
    # enough for the judge to wait
    raw["select"]["pass_rate"] = [
        {"kind": "openai", "base_urls": [url], "model": "s1", "n": 2, "keep": [0, 0.5]},
        {"kind": "vllm", "model": "s2", "n": 1, "keep": [0, 0.5]},
    ]
    path.write_text(yaml.safe_dump(raw))
    steps = plan_build(load_recipe(path)).stages[0].pipeline
    pr = next(s for s in steps if type(s).__name__ == "PassRateStep")
    assert [(name, type(t).__name__) for name, t, _ in pr.students] == [("s1", "OpenAITeacher"), ("s2", "VllmTeacher")]
    assert [Path(t.cache_dir).name for _, t, _ in pr.students] == ["student-1", "student-2"]
    assert next(s for s in steps if type(s).__name__ == "LabelStep").after_upstream
    pickle.loads(pickle.dumps(steps))


def test_cluster_gpus_go_to_select_when_asked() -> None:
    cfg = SlurmExecutorConfig(kind="slurm", gpus_per_task=2, gpu_stages=["select", "sample"])
    assert stage_resources(cfg, "select")["gpus_per_task"] == 2
    assert stage_resources(cfg, "select-r2")["gpus_per_task"] == 2
    assert stage_resources(SlurmExecutorConfig(kind="slurm", gpus_per_task=2), "select")["gpus_per_task"] == 0


@pytest.mark.slow
def test_resample_rounds_select_what_they_add(tmp_path: Path) -> None:
    path = recipe(
        tmp_path,
        teacher={"kind": "dataset", "max_generations": 1},
        mix={"fill": "resample", "max_rounds": 5, "buckets": [{"name": "b", "where": "verdict = 'correct'", "count": 100}]},
    )
    text = path.read_text().replace("path: m.jsonl", "path: m.jsonl\n  limit: 4")
    path.write_text(text)
    r = run_cli("build", str(path))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    rounds = json.loads((out / "work" / "decisions" / "resample.json").read_text())
    assert [(x["limits"]["m"], x["samples"]) for x in rounds] == [(8, 1), (16, 1), (32, 1), (32, 2), (32, 4)]
    led = pl.read_parquet(out / "ledger" / "*.parquet")
    assert led["trace_id"].n_unique() == led.height  # nothing recorded twice across the rounds
    for i, rate in enumerate(RATES):
        rows = led.filter(pl.col("row_index") == i)
        if 0.25 <= rate <= 0.75:
            assert sorted(rows["sample_index"].to_list()) == [0, 1, 2, 3]
        else:
            assert rows["sample_index"].to_list() == [None]
            assert rows["drop_reason"].to_list() == ["too_hard" if rate < 0.25 else "too_easy"]
