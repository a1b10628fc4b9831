"""Fast tests of the live teachers' parts: recipe models, rendering, request cache, backoff, failing endpoints."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from datatrove.data import Document

from tests.teachers.conftest import build, ledger_rows, usage, write_recipe
from tests.teachers.fault_proxy import FaultProxy
from tracekit.engine.layout import BuildLayout
from tracekit.recipe import load_recipe
from tracekit.teachers import build_teacher
from tracekit.teachers.chat_client import ChatClient
from tracekit.teachers.config import R1_PROMPT_TEMPLATE, RetryConfig
from tracekit.teachers.request_cache import RequestCache


def _doc(source: str, prompt: str) -> Document:
    return Document(text=prompt, id="x", metadata={"source": source, "prompt": prompt})


def test_r1_defaults_and_per_source_overrides(tmp_path: Path) -> None:
    teacher = {"kind": "openai", "base_urls": ["http://127.0.0.1:9/v1"], "model": "m"}
    extra = [
        {
            "name": "chat",
            "domain": "general",
            "path": "math.jsonl",
            "reasoning": False,
            "sampling": {"n": 1, "chat_template_kwargs": {"enable_thinking": False}},
        },
        {
            "name": "own",
            "path": "math.jsonl",
            "system_prompt": "Be brief.",
            "prompt_template": "Q: {prompt}",
            "sampling": {"temperature": 1.0},
        },
    ]
    loaded = load_recipe(str(write_recipe(tmp_path, teacher, extra_sources=extra)))
    t = loaded.recipe.teacher
    assert (t.sampling.n, t.sampling.temperature, t.sampling.top_p, t.sampling.max_tokens) == (
        4,
        0.6,
        0.95,
        32768,
    )
    step = build_teacher(loaded.recipe.teacher, sources=loaded.recipe.sources)
    assert step.render_for(_doc("math", "1+1?")) == [
        {
            "role": "user",
            "content": "1+1?\nPlease reason step by step, and put your final answer within \\boxed{}.",
        }
    ]
    assert t.prompt_template == R1_PROMPT_TEMPLATE
    assert step.render_for(_doc("chat", "hi")) == [{"role": "user", "content": "hi"}]
    assert step.render_for(_doc("own", "2+2?")) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q: 2+2?"},
    ]
    chat = step.plans["chat"]
    body = chat.body("m", [], seed=7)
    assert body["chat_template_kwargs"] == {"enable_thinking": False} and body["n"] == 1 and body["seed"] == 7
    assert chat.n == 1 and step.plans["math"].n == 4 and step.plans["own"].sampling["temperature"] == 1.0
    # a source's own settings give its traces their own config hash (so their own ids and seeds)
    assert len({p.config_hash for p in step.plans.values()}) == 3


def test_source_sampling_is_checked(tmp_path: Path) -> None:
    from tracekit.recipe import RecipeError

    teacher = {"kind": "openai", "base_urls": ["http://127.0.0.1:9/v1"], "model": "m"}
    extra = [{"name": "bad", "path": "math.jsonl", "sampling": {"n": 0}}]
    with pytest.raises(RecipeError):
        load_recipe(str(write_recipe(tmp_path, teacher, extra_sources=extra)))


def test_request_cache_survives_a_cut_line(tmp_path: Path) -> None:
    p = tmp_path / "00000.jsonl"
    c = RequestCache(p, fsync_every=2)
    c.put("a", {"completion": "x"})
    c.put("b", {"completion": "y"})
    c.close()
    with open(p, "a") as f:
        f.write('{"trace_id": "c", "answ')  # kill -9 in the middle of a write
    c = RequestCache(p)
    assert set(c.answers) == {"a", "b"}
    c.put("d", {"completion": "z"})
    c.close()
    assert set(RequestCache(p).answers) == {"a", "b", "d"}


def test_backoff_is_exponential_capped_and_jittered() -> None:
    client = ChatClient(
        base_urls=["http://127.0.0.1:9/v1"],
        retries=RetryConfig(backoff_s=1, max_backoff_s=8, jitter=0.5),
        rng=random.Random(0),
    )
    waits = [[client.backoff(r) for _ in range(200)] for r in range(1, 7)]
    for r, ws in enumerate(waits, start=1):
        base = min(8, 2 ** (r - 1))
        assert min(ws) >= 0.5 * base and max(ws) <= 1.5 * base
        assert max(ws) - min(ws) > 0.3 * base  # jittered, not constant


def test_failing_endpoint_gives_error_traces_and_never_leaks_the_key(tmp_path: Path) -> None:
    secret = "sk-test-" + "9" * 24
    with FaultProxy("http://127.0.0.1:9", plan=lambda k: "500") as proxy:
        teacher = {
            "kind": "openai",
            "base_urls": [proxy.base_url],
            "model": "m",
            "api_key_env": "TK_TEST_KEY",
            "sampling": {"n": 2, "max_tokens": 4},
            "retries": {"attempts": 3, "backoff_s": 0.01, "max_backoff_s": 0.02},
        }
        recipe = write_recipe(tmp_path, teacher, n_prompts=3)
        r = build(recipe, env={"TK_TEST_KEY": secret})
    assert r.returncode == 0, r.stderr
    rows = ledger_rows(tmp_path / "out")
    assert len(rows) == 6 and proxy.actions["500"] == 18  # 3 attempts per request, then it gives up
    for row in rows:
        assert row["verdict"] == "error" and row["drop_reason"] == "teacher_error" and not row["kept"]
        assert row["finish_reason"] == "error" and "HTTP 500" in row["error"] and "3 attempts" in row["error"]
    assert usage(tmp_path / "out")["errors"] == 6
    for f in (tmp_path / "out").rglob("*"):
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f


def test_missing_key_env_fails_clearly(tmp_path: Path) -> None:
    teacher = {
        "kind": "openai",
        "base_urls": ["http://127.0.0.1:9/v1"],
        "model": "m",
        "api_key_env": "TK_UNSET_KEY_VAR",
    }
    r = build(write_recipe(tmp_path, teacher, n_prompts=1))
    assert r.returncode != 0
    assert "TK_UNSET_KEY_VAR" in r.stderr + json.dumps(
        [p.read_text() for p in BuildLayout(tmp_path / "out").logs.rglob("*.log")]
    )


def test_process_reaper_stops_watched_processes_when_its_parent_is_killed(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    # a parent starts a long-lived child (stands for vLLM's engine core) and a reaper watching it
    script = (
        "import subprocess, sys, time\n"
        "from tracekit.teachers.process_reaper import ProcessReaper\n"
        "reaper = ProcessReaper()\n"
        "a = subprocess.Popen(['sleep', '300'])\n"
        "b = subprocess.Popen(['sleep', '300'])\n"
        "reaper.add_children()\n"
        "print(a.pid, b.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=root, stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pids = [int(x) for x in parent.stdout.readline().split()]
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    from tracekit.teachers.process_reaper import ProcessReaper, _running

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_running(p) for p in pids):
        time.sleep(0.1)
    assert not any(_running(p) for p in pids)

    # close(): the processes were stopped normally, the reaper leaves alone what remains
    reaper = ProcessReaper()
    sleeper = subprocess.Popen(["sleep", "300"])
    reaper.add(sleeper.pid)
    reaper.close()
    time.sleep(1)
    assert sleeper.poll() is None
    sleeper.kill()
    sleeper.wait()


def test_r1_completion_with_only_a_closing_think_tag_is_split() -> None:
    """R1's template ends the prompt with `<think>\\n`: offline completions carry only `</think>`."""
    from tracekit.parse.split import split_reasoning

    sp = split_reasoning("first 1, then 2.\n</think>\n\nSo \\boxed{3}.")
    assert (sp.reasoning, sp.answer_text, sp.think_format) == ("first 1, then 2.", "So \\boxed{3}.", "think")
