"""`teacher: {kind: vllm, mode: offline}`: vLLM's engine in the task (vLLM CPU build, a tiny random model)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.teachers.conftest import (
    ENGINE,
    ENGINE_ENV,
    ROOT,
    TRACEKIT,
    build,
    ledger_rows,
    usage,
    write_recipe,
)
from tests.teachers.test_live_vllm import _alive, _reap_group
from tracekit.engine.layout import BuildLayout
from tracekit.record import seed_from_trace_id

pytestmark = pytest.mark.slow


def _vllm(model: Path, mode: str, **kw: object) -> dict[str, object]:
    return {"kind": "vllm", "mode": mode, "model": str(model), "engine": ENGINE, "env": ENGINE_ENV, **kw}


def test_offline_and_server_modes_give_the_same_ledger(tiny_model: Path, tmp_path: Path) -> None:
    chat = {
        "name": "chat",
        "domain": "general",
        "path": "math.jsonl",
        "reasoning": False,
        "sampling": {"n": 1, "chat_template_kwargs": {"enable_thinking": False}},
        "columns": {"prompt": "problem"},
    }
    runs = {}
    for mode in ("offline", "server"):
        teacher = _vllm(
            tiny_model,
            mode,
            sampling={"n": 2, "max_tokens": 6, "ignore_eos": True},
            retry_truncated={"max_tokens": 9},
        )
        recipe = write_recipe(tmp_path / mode, teacher, n_prompts=4, extra_sources=[chat])
        r = build(recipe)
        assert r.returncode == 0, r.stderr
        runs[mode] = {x["trace_id"]: x for x in ledger_rows(tmp_path / mode / "out")}
        u = usage(tmp_path / mode / "out")
        # 12 traces, each truncated at 6 tokens and sampled again with 9 (retry_truncated)
        assert u["traces"] == 12 and u["requests_sent"] == 24 and u["completion_tokens"] == 12 * 9
        assert u["truncated"] == 12 and u["errors"] == 0 and u["sampling_s"] > 0
    offline, server = runs["offline"], runs["server"]
    assert offline.keys() == server.keys() and len(offline) == 12
    for tid, x in offline.items():
        assert x["seed"] == seed_from_trace_id(tid) and x["teacher_backend"] == "vllm"
        assert x["finish_reason"] == "length" and x["drop_reason"] == "truncated" and not x["kept"]
        assert x["completion_tokens"] == 9 and json.loads(x["sampling"])["max_tokens"] == 9
        assert x["prompt_tokens"] > 0 and x["latency_s"] > 0
        # same rendering, same sampling parameters, same per-request seeds: on the CPU build the
        # very same text comes back through either path, so every column but the latency matches
        differ = {k for k in x if x[k] != server[tid][k]}
        assert differ <= {"latency_s"}, {k: (x[k], server[tid][k]) for k in differ}
    general = [x for x in offline.values() if x["source"] == "chat"]
    assert len(general) == 4 and all("boxed" not in x["prompt_messages"][-1]["content"] for x in general)


def _descendants(root: int) -> dict[int, str]:
    """pid -> command line of every process below `root`."""
    kids: dict[int, list[int]] = {}
    cmd: dict[int, str] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd[int(d.name)] = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d.name))
    out, todo = {}, list(kids.get(root, []))
    while todo:
        p = todo.pop()
        out[p] = cmd.get(p, "")
        todo += kids.get(p, [])
    return out


def _wait_lines(cache: Path, n: int, p: subprocess.Popen[str], timeout: float = 900) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and p.poll() is None:
        if cache.exists() and (k := cache.read_text().count("\n")) >= n:
            return k
        time.sleep(0.1)
    raise AssertionError(f"the build ended or stalled before {n} answers were cached")


def _engine_tree(build_pid: int) -> dict[int, str]:
    """The engine core and its workers (every process below the engine core)."""
    tree = _descendants(build_pid)
    cores = [pid for pid, c in tree.items() if "VLLM::EngineCore" in c]
    assert len(cores) == 1, tree
    return {cores[0]: tree[cores[0]], **_descendants(cores[0])}


def _gone(pids: list[int], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.2)
    return False


def _start(recipe: Path) -> subprocess.Popen[str]:
    # own session (a terminal's foreground group); SIGINT back to default as in a terminal
    return subprocess.Popen(
        [*TRACEKIT, "build", str(recipe)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def test_offline_engine_dies_with_the_build_and_a_rerun_resumes(tiny_model: Path, tmp_path: Path) -> None:
    n_prompts, n = 120, 2
    total = n_prompts * n
    # 200 tokens per sample: sampling takes long enough to be interrupted twice
    teacher = _vllm(tiny_model, "offline", sampling={"n": n, "max_tokens": 200, "ignore_eos": True})
    recipe = write_recipe(tmp_path, teacher, n_prompts=n_prompts)
    cache = BuildLayout(tmp_path / "out").requests / "00000.jsonl"

    # 1) Ctrl-C while sampling: the build stops with 130 and the engine core and its workers are gone
    p = _start(recipe)
    _wait_lines(cache, 16, p)
    engine = _engine_tree(p.pid)
    os.killpg(p.pid, signal.SIGINT)  # what a terminal sends to the foreground group
    assert p.wait(timeout=120) == 130, p.stderr.read() if p.stderr else ""
    assert cache.read_text().count("\n") < total, "Ctrl-C came after sampling: the test proves nothing"
    assert _gone(list(engine)), {pid: c for pid, c in engine.items() if _alive(pid)}
    _reap_group(p.pid)

    # 2) kill -9 of the process that holds the engine (the task, not the build command): the
    # engine core has no parent to answer to any more; tracekit's reaper stops it
    first = cache.read_text().count("\n")
    p = _start(recipe)
    _wait_lines(cache, first + 16, p)
    engine = _engine_tree(p.pid)
    task = next(pid for pid, c in _descendants(p.pid).items() if "tracekit.engine.process" in c)
    os.kill(task, signal.SIGKILL)
    assert _gone(list(engine)), {pid: c for pid, c in engine.items() if _alive(pid)}
    p.wait(timeout=120)
    _reap_group(p.pid)
    cached = {json.loads(line)["trace_id"] for line in cache.read_text().splitlines() if line.endswith("}")}
    assert first < len(cached) < total

    # 3) the same command resumes from the cache and finishes: every trace once, cached ones not sent
    r = build(recipe)
    assert r.returncode == 0, r.stderr
    rows = ledger_rows(tmp_path / "out")
    assert len(rows) == total and len({x["trace_id"] for x in rows}) == total
    assert cached <= {x["trace_id"] for x in rows}
    assert all(x["completion_tokens"] == 200 and x["finish_reason"] == "length" for x in rows)
    u = usage(tmp_path / "out")
    assert u["cached"] == len(cached) and u["requests_sent"] == total - len(cached)
