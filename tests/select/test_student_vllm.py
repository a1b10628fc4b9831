"""A student run by vLLM (the CPU build, a tiny random model made by the test) in the select stage:
kill -9 of the task that holds its engine, then the same command resumes from the student's request
cache, sends only what had no answer, and records every prompt once."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import yaml

from tests.teachers.conftest import ENGINE, ENGINE_ENV, build, ledger_rows
from tests.teachers.test_live_vllm import _reap_group
from tests.teachers.test_offline_vllm import _descendants, _engine_tree, _gone, _start, _wait_lines

pytestmark = pytest.mark.slow


def test_vllm_student_survives_kill_9_and_resumes(tiny_model: Path, tmp_path: Path) -> None:
    # 180 samples, 16 at a time in the engine: the kill after the first 16 answers comes with many
    # waves still to go even on a loaded machine (30 prompts were all answered before the kill in CI)
    n_prompts, n = 90, 2
    total = n_prompts * n
    rows = [
        {"problem": f"What is {i} + {2 * i}?", "answer": str(3 * i), "g": [f"<think>sum</think>\\boxed{{{3 * i}}}"]}
        for i in range(n_prompts)
    ]
    (tmp_path / "math.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    student = {
        "kind": "vllm",
        "model": str(tiny_model),
        "engine": ENGINE,
        "env": ENGINE_ENV,
        "n": n,
        # 200 tokens per answer: sampling takes long enough to be interrupted
        "sampling": {"max_tokens": 200, "ignore_eos": True},
        "keep": [0.0, 0.5],
    }
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "student",
                "output": "out",
                "sources": [
                    {"name": "math", "path": "math.jsonl", "columns": {"prompt": "problem", "answer": "answer", "generations": "g"}}
                ],
                "verify": {"math": {}},
                "select": {"pass_rate": student},
                "executor": {"kind": "local", "tasks": 1, "workers": 1},
            }
        )
    )
    cache = tmp_path / "out" / "work" / "select-requests" / "student" / "00000.jsonl"

    # kill -9 of the process that holds the student's engine: the engine core goes with it
    p = _start(recipe)
    _wait_lines(cache, 16, p)
    engine = _engine_tree(p.pid)
    task = next(pid for pid, c in _descendants(p.pid).items() if "tracekit.engine.process" in c)
    os.kill(task, signal.SIGKILL)
    assert _gone(list(engine)), engine
    p.wait(timeout=120)
    _reap_group(p.pid)
    cached = {json.loads(line)["trace_id"] for line in cache.read_text().splitlines() if line.endswith("}")}
    assert 16 <= len(cached) < total, "the kill came after sampling: the test proves nothing"

    # the same command resumes: cached answers are not sent again, every prompt is decided once
    r = build(recipe)
    assert r.returncode == 0, r.stderr
    u = json.loads((tmp_path / "out" / "logs" / "select-student" / "usage-00000.json").read_text())
    assert u["cached"] == len(cached) and u["requests_sent"] == total - len(cached)
    assert u["traces"] == total
    ledger = ledger_rows(tmp_path / "out")
    assert sorted({x["row_index"] for x in ledger}) == list(range(n_prompts))
    for x in ledger:
        s = json.loads(x["selection"])["student"]
        assert s["samples"] == n and s["model"] == str(tiny_model)
        decided = s["correct"] + s["incorrect"]
        assert x["pass_rate"] == (s["correct"] / decided if decided else None)
        in_window = x["pass_rate"] is None or x["pass_rate"] <= 0.5
        assert (x["sample_index"] is not None) == in_window
        assert x["drop_reason"] in ((None, "incorrect") if in_window else ("too_easy",))
    assert len(ledger) == n_prompts  # one replayed trace per kept prompt, one row per dropped one


def test_vllm_student_then_vllm_judge_in_one_task(tiny_model: Path, tmp_path: Path) -> None:
    """A vLLM student and a vLLM judge in one select task: the student's engine stops before the judge's
    starts (a second engine in the same process), every prompt is asked once, and whatever the random
    judge writes is recorded with its question and either read as a rating or dropped as label_failed."""
    n_prompts, n = 8, 2
    rows = [{"problem": f"What is {i} + {i}?", "answer": str(2 * i), "g": ["<think>t</think>\\boxed{0}"]} for i in range(n_prompts)]
    (tmp_path / "math.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    engine = {"model": str(tiny_model), "engine": ENGINE, "env": ENGINE_ENV}
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "student-judge",
                "output": "out",
                "sources": [
                    {"name": "math", "path": "math.jsonl", "columns": {"prompt": "problem", "answer": "answer", "generations": "g"}}
                ],
                "verify": {"math": {}},
                "select": {
                    "pass_rate": {"kind": "vllm", **engine, "n": n, "sampling": {"max_tokens": 16}, "keep": [0.0, 1.0]},
                    "labels": {"judge": {"kind": "vllm", **engine, "sampling": {"max_tokens": 8}}, "ask": ["difficulty"]},
                },
                "executor": {"kind": "local", "tasks": 1, "workers": 1},
            }
        )
    )
    r = build(recipe)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    usage = {m: json.loads((out / "logs" / f"select-{m}" / "usage-00000.json").read_text()) for m in ("student", "judge")}
    assert usage["student"]["traces"] == n_prompts * n
    assert usage["judge"]["traces"] == n_prompts  # the window [0, 1] keeps every prompt for the judge
    ledger = ledger_rows(out)
    assert sorted(x["row_index"] for x in ledger) == list(range(n_prompts))  # one row each, sampled or not
    for x in ledger:
        sel = json.loads(x["selection"])
        assert sel["student"]["samples"] == n
        (entry,) = sel["labels"]["asked"]
        assert entry["question"].endswith(x["prompt"]) and isinstance(entry["answer"], str)
        assert x["difficulty_rating"] == entry.get("label")
        assert (x["drop_reason"] == "label_failed") == (x["difficulty_rating"] is None)
        assert (x["sample_index"] is None) == (x["difficulty_rating"] is None)
