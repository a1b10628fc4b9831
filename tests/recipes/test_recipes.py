"""The shipped seed-system recipes: each validates, and a test-sized version of each (the shipped YAML
with local sources under `limit:` and its models pointed at local scripted servers) builds end to end
with the real sampling, rewrite, verifier, dedup/decontamination and mix paths. The scripted answers
(tests/recipes/world.py) tell the test which traces every stage must keep."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.chat_server import ChatServer, user_text
from tests.conftest import REPO, read_dataset, read_ledger, run_cli
from tests.recipes import world
from tracekit.recipe import load_recipe
from tracekit.recipe.checks import check_sources, check_verifier_domains, check_votes

SHIPPED = ["bespoke-stratos-17k", "sky-t1-17k", "openthoughts-114k", "s1k-59k"]
KEYS = {"TK_TEACHER_KEY": "sk-teacher-secret", "TK_TOOL_KEY": "sk-tool-secret"}


def build(recipe: Path) -> None:
    r = run_cli("build", str(recipe), env=KEYS, timeout=900)
    assert r.returncode == 0, r.stderr + r.stdout


def assert_no_secret(out: Path) -> None:
    for f in out.rglob("*"):
        if f.is_file() and f.suffix in (".json", ".yaml", ".log", ".md", ".html", ".txt", ".jsonl", ".parquet"):
            data = f.read_bytes()
            assert b"sk-teacher-secret" not in data and b"sk-tool-secret" not in data, f


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipe_validates(name: str) -> None:
    loaded = load_recipe(REPO / "pipelines" / f"{name}.yaml")
    assert [*check_sources(loaded), *check_votes(loaded), *check_verifier_domains(loaded)] == []
    # the Hub is unreachable here: validate names every Hub source and what it could not check
    r = run_cli("validate", str(REPO / "pipelines" / f"{name}.yaml"), env={"HF_HUB_OFFLINE": "1"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    hubs = [s for s in loaded.recipe.sources if s.hub]
    for i, s in enumerate(loaded.recipe.sources):
        if s.hub:
            line = loaded.line(("sources", i, "hub"))
            assert f"{name}.yaml:{line}: sources[{i}].hub: source '{s.name}': Hub dataset '{s.hub}' could not be reached" in r.stderr
    assert r.stderr.count("not checked: that split") == len(hubs)


@pytest.mark.parametrize("name", ["train-bespoke-stratos-7b", "train-sky-t1-32b", "train-openthinker-7b"])
def test_train_presets_load(name: str) -> None:
    from tracekit.train.config import TrainConfig

    cfg = TrainConfig.from_yaml(REPO / "pipelines" / f"{name}.yaml")
    # the published setups: lr 1e-5, 3 epochs, 96 rows per step on 8 GPUs, cosine with 10% warmup
    assert (cfg.learning_rate, cfg.epochs, cfg.warmup_ratio, cfg.lr_scheduler) == (1e-5, 3, 0.1, "cosine")
    assert 8 * cfg.per_device_batch_size * cfg.gradient_accumulation_steps == 96 and not cfg.packing


def test_s1_train_preset_is_the_published_setup() -> None:
    from tracekit.train.config import TrainConfig

    cfg = TrainConfig.from_yaml(REPO / "pipelines" / "train-s1.yaml")
    # simplescaling/s1 train/sft.sh: 5 epochs, lr 1e-5 cosine to 0, 5% warmup, wd 1e-4, betas 0.9/0.95,
    # 32K rows, batch 16 = 16 GPUs x 1 row, no packing
    assert (cfg.model, cfg.learning_rate, cfg.epochs, cfg.lr_scheduler, cfg.min_lr_ratio) == (
        "Qwen/Qwen2.5-32B-Instruct", 1e-5, 5, "cosine", 0.0)
    assert (cfg.warmup_ratio, cfg.weight_decay, cfg.adam_beta1, cfg.adam_beta2) == (0.05, 1e-4, 0.9, 0.95)
    assert (cfg.max_length, cfg.packing, 16 * cfg.per_device_batch_size * cfg.gradient_accumulation_steps) == (32768, False, 16)
    assert cfg.data == "out/s1k/dataset"  # the dataset pipelines/s1k.yaml builds


def by_number(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(world.number(r["prompt"]), []).append(r)
    return out


@pytest.mark.slow
def test_bespoke_stratos_builds(tmp_path: Path) -> None:
    rows = {
        "apps": world.apps_rows(4, 100),
        "taco-medium": world.taco_rows(6, 200, ["MEDIUM", "EASY"]),
        "taco-test": world.taco_rows(3, 300, ["HARD"]),
        "numina-amc-aime": world.numina_rows(9, ["amc_aime", "math", "cn_k12"]),
        "numina-math": world.numina_rows(9, ["amc_aime", "math", "cn_k12"]),
        "numina-olympiads": world.numina_rows(9, ["olympiads", "cn_k12", "math"]),
    }
    teacher = ChatServer(lambda b: world.teacher_reply(b, thinking_field=True))
    judge = ChatServer(world.judge_reply)
    with teacher as t_url, judge as j_url:
        recipe, spec = world.derive("bespoke-stratos-17k", tmp_path, rows, limit=8, teacher_url=t_url, tool_url=j_url)
        build(recipe)
    out = tmp_path / "out"
    ledger = read_ledger(out)
    # `match:` picked each subset's rows (cn_k12 never sampled), `limit:` the rows numbered below 8
    expected_sources = {
        "numina-amc-aime": {i for i in range(8) if i % 3 == 0},
        "numina-math": {i for i in range(8) if i % 3 == 1},
        "numina-olympiads": {i for i in range(8) if i % 3 == 0},
        "apps": set(range(100, 104)),
        "taco-medium": {i for i in range(200, 206) if i % 2 == 0},
        "taco-test": set(range(300, 303)),
    }
    for src, nums in expected_sources.items():
        assert {world.number(r["prompt"]) for r in ledger if r["source"] == src} == nums, src
    assert len(ledger) == sum(len(v) for v in expected_sources.values())  # n = 1
    # the shipped prompts went out: system prompt, per-domain templates, one answer per request
    sent = teacher.requests
    assert all(b["n"] == 1 and b["model"] == spec["teacher"]["model"] for b in sent)
    assert all(b["messages"][0] == {"role": "system", "content": spec["teacher"]["system_prompt"]} for b in sent)
    math_src = spec["sources"][3]
    assert any(user_text(b) == math_src["prompt_template"].replace("{prompt}", world.math_question(3)) for b in sent)
    assert all(h.get("Authorization") == "Bearer sk-teacher-secret" for h in teacher.headers)
    # verification: math by the judge (method judge), code in the sandbox
    for r in ledger:
        i = world.number(r["prompt"])
        assert r["verdict"] == ("incorrect" if world.wrong(i) else "correct"), r
        assert r["verify_method"] == ("judge" if r["domain"] == "math" else "code_sandbox")
        assert r["reasoning"] == f"Let me think about question {i} step by step."
    assert len(judge.requests) == sum(1 for r in ledger if r["domain"] == "math")
    # no mix: every verified trace is in the dataset, with the thinking in the assistant turn
    data = read_dataset(out)
    assert sorted(d["trace_id"] for d in data) == sorted(r["trace_id"] for r in ledger if r["verdict"] == "correct")
    assert all("<think>" in d["messages"][-1]["content"] for d in data)
    assert_no_secret(out)


@pytest.mark.slow
def test_sky_t1_builds(tmp_path: Path) -> None:
    rows = {
        "apps": world.apps_rows(5, 100),
        "taco-medium": world.taco_rows(4, 200, ["MEDIUM"]),
        "taco-test": world.taco_rows(2, 300, ["EASY"]),
        # NovaSky's difficulty labels decide (amc_aime 1-9, math 4-9, olympiads 9; -1: no label)
        "numina-amc-aime": world.numina_rows(7, ["amc_aime"], difficulty=lambda i: [1, 9, 10, 4, -1, 2, 5][i]),
        "numina-math": world.numina_rows(7, ["math", "aops_forum"], difficulty=lambda i: [3, 0, 4, 0, 9, 0, 10][i]),
        "numina-olympiads": world.numina_rows(7, ["olympiads"], difficulty=lambda i: 9 if i % 2 else 8),
    }
    selected = {
        "numina-amc-aime": {0, 1, 3, 5, 6}, "numina-math": {2, 4}, "numina-olympiads": {1, 3, 5},
        "apps": set(range(100, 105)), "taco-medium": set(range(200, 204)), "taco-test": {300, 301},
    }

    def smaller_mix(recipe: dict[str, Any]) -> None:
        recipe["mix"]["buckets"][0]["count"] = 4  # of 8 correct code traces
        recipe["mix"]["buckets"][1]["count"] = 20  # more than the 6 correct math traces: a shortfall

    teacher = ChatServer(lambda b: world.teacher_reply(b, thinking_field=False))  # QwQ: thinking inline
    rewriter = ChatServer(world.rewriter_reply)
    with teacher as t_url, rewriter as r_url:
        recipe, spec = world.derive(
            "sky-t1-17k", tmp_path, rows, limit=7, teacher_url=t_url, tool_url=r_url, edit=smaller_mix
        )
        build(recipe)
    out = tmp_path / "out"
    ledger = read_ledger(out)
    for src, nums in selected.items():  # `match:` on the subset and its difficulty window
        assert {world.number(r["prompt"]) for r in ledger if r["source"] == src} == nums, src
    assert len(ledger) == sum(len(v) for v in selected.values())
    # the shipped teacher settings: greedy, 16K tokens, no system prompt (QwQ's template adds its own)
    assert all(b["temperature"] == 0.0 and b["max_tokens"] == 16384 and b["messages"][0]["role"] == "user" for b in teacher.requests)
    # every answer was rewritten by the shipped rewriter; the ledger keeps both texts and the model
    assert len(rewriter.requests) == len(ledger) == len(teacher.requests)
    assert all(b["model"] == "gpt-4o-mini" and b["temperature"] == 0.7 for b in rewriter.requests)
    for r in ledger:
        i = world.number(r["prompt"])
        assert r["rewrite_model"] == "gpt-4o-mini"
        assert r["original_completion"].startswith(f"Let me think about question {i}")
        assert r["completion"].startswith("<|begin_of_thought|>") and r["think_format"] == "thought"
        assert r["verdict"] == ("incorrect" if world.wrong(i) else "correct"), r
        # what was verified is the rewritten text: its solution section holds the answer
        assert r["verify_method"] in ("math_rule", "code_sandbox")
    # the mix: one trace per question, 4 code, all 6 correct math (20 asked: short by 14)
    correct = [r for r in ledger if r["verdict"] == "correct"]
    right_math = sum(1 for s in selected if s.startswith("numina") for i in selected[s] if not world.wrong(i))
    assert (sum(r["domain"] == "code" for r in correct), sum(r["domain"] == "math" for r in correct)) == (8, right_math)
    assert right_math == 6
    data = read_dataset(out)
    buckets = [d["bucket"] for d in data]
    assert buckets.count("code") == 4 and buckets.count("math") == 6
    # the dataset holds the rewritten thinking and solution in tracekit's one format, <think> then the answer
    assert all(d["messages"][-1]["content"].startswith("<think>\nReformatted reasoning.\n</think>") for d in data)
    shortfall = json.loads((out / "work" / "decisions" / "mix.shortfall.json").read_text())
    short = {b["bucket"]: b["short"] for b in (shortfall if isinstance(shortfall, list) else shortfall["buckets"])}
    assert short == {"code": 0, "math": 14}
    assert_no_secret(out)


@pytest.mark.slow
def test_openthoughts_builds(tmp_path: Path) -> None:
    numina = world.numina_rows(12, ["amc_aime", "olympiads", "aops_forum", "math", "cn_k12", "synthetic_math"])
    numina[7].update(problem=numina[1]["problem"], solution=numina[1]["solution"])  # a duplicate: dedup keeps one
    aime = json.loads((world.SHARED_DATA / "benchmarks" / "aime24.jsonl").read_text().splitlines()[0])
    numina[8]["problem"] = aime["problem"] + " (#8)"  # a benchmark question: decontamination drops it
    rows = {
        "numina": numina,
        "apps": world.apps_rows(3, 100),
        "taco": world.taco_rows(3, 200, ["MEDIUM"]),
        "code-contests": world.code_contests_rows(3, 300),
        "camel-physics": world.camel_rows(3, 400),
        "camel-chemistry": world.camel_rows(3, 500),
        "camel-biology": world.camel_rows(3, 600),
    }
    teacher = ChatServer(lambda b: world.teacher_reply(b, thinking_field=True))
    judge = ChatServer(world.judge_reply)
    with teacher as t_url, judge as j_url:
        recipe, spec = world.derive("openthoughts-114k", tmp_path, rows, limit=12, teacher_url=t_url, tool_url=j_url)
        build(recipe)
    out = tmp_path / "out"
    ledger = read_ledger(out)
    math = [r for r in ledger if r["source"] == "numina"]
    # the four subsets: rows 0-3 and 6-9 (4, 5, 10, 11 are cn_k12 / synthetic_math)
    assert sorted(r["row_index"] for r in math) == [0, 1, 2, 3, 6, 7, 8, 9]
    # per-source sampling: code got its own token budget, the rest the teacher's
    budgets = {("integers" in user_text(b)): b["max_tokens"] for b in teacher.requests}
    assert budgets == {True: 8192, False: 8000}
    for r in ledger:
        i = world.number(r["prompt"])
        if r["domain"] == "science":
            assert (r["verdict"], r["kept"]) == ("unverified", True)  # science is kept unverified
            continue
        right = not world.wrong(i) and r["row_index"] != 8  # row 8's question is AIME's, not a sum
        assert r["verdict"] == ("correct" if right else "incorrect"), r
        assert r["verify_method"] == ("judge" if r["domain"] == "math" else "code_sandbox")
    assert [r["row_index"] for r in math if r["contamination"]] == [8]
    pair = [r for r in math if r["row_index"] in (1, 7)]
    assert sorted(r["duplicate_of"] is None for r in pair) == [False, True]
    data = read_dataset(out)
    kept = {r["trace_id"] for r in ledger if r["kept"]}
    assert {d["trace_id"] for d in data} == kept
    # math: rows 1 (or its duplicate 7) and 2; code: the 6 right programs; science: all 9
    assert sorted(r["domain"] for r in ledger if r["kept"]) == ["code"] * 6 + ["math"] * 2 + ["science"] * 9
    assert_no_secret(out)


def test_s1k_validate_names_the_pool_it_needs() -> None:
    """s1k.yaml reads the s1k-59k build's ledger: before that build, validate says which file is missing."""
    r = run_cli("validate", str(REPO / "pipelines" / "s1k.yaml"), env={"HF_HUB_OFFLINE": "1"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "s1k.yaml:" in r.stderr and "sources[0].path: file not found:" in r.stderr
    assert "out/s1k-59k/ledger/*.parquet" in r.stderr


@pytest.mark.parametrize("name", [*SHIPPED, "s1k"])
def test_stage_list_matches_the_plan(name: str) -> None:
    from tracekit.engine import plan_build, stage_names

    loaded = load_recipe(REPO / "pipelines" / f"{name}.yaml")
    names = [s.name for s in plan_build(loaded).stages]
    assert stage_names(loaded) == names
    assert ("rewrite" in names) == (loaded.recipe.rewrite is not None)
    assert ("select" in names) == (loaded.recipe.select is not None)
    if "verify" in names:  # a live teacher's traces are verified in their own stage (replay: in sample)
        assert names.index("sample") < names.index("verify")
    if "select" in names:
        assert names.index("select") < names.index("sample")


def build_s1_pool(tmp: Path, n: int, dup: tuple[int, int] = (2, 5)) -> tuple[Path, list[dict[str, Any]]]:
    """The test-sized s1k-59k build: `n` pool questions, one duplicate pair, one MATH-500 question (#7)."""
    pool = world.s1_pool_rows(n)
    pool[dup[1]]["question"] = pool[dup[0]]["question"]  # a duplicate: dedup keeps one
    m500 = json.loads((world.SHARED_DATA / "benchmarks" / "math500.jsonl").read_text().splitlines()[0])
    pool[7]["question"] = m500["problem"] + " (#7)"  # an evaluation question: dropped
    with ChatServer(world.s1_teacher_reply) as url:
        recipe, _ = world.derive("s1k-59k", tmp, {"s1-pool": pool}, limit=n, teacher_url=url)
        build(recipe)
    return tmp / "out", pool


@pytest.mark.slow
def test_s1_pool_builds(tmp_path: Path) -> None:
    out, pool = build_s1_pool(tmp_path, 12)
    ledger = read_ledger(out)
    assert len(ledger) == 12 and all(r["verdict"] == "unverified" for r in ledger)  # no verifier
    kept = sorted(r["row_index"] for r in ledger if r["kept"])
    dropped = {r["row_index"]: r["drop_reason"] for r in ledger if not r["kept"]}
    assert 7 in dropped and (2 in dropped) != (5 in dropped)  # contaminated; one of the two duplicates
    assert len(kept) == 10
    # wrong answers stay in the pool (s1 did not filter by correctness): questions 0, 3, 6, 9 are wrong
    assert {0, 3, 9} <= set(kept)
    assert len(read_dataset(out)) == 10


def processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, state) of every process, from /proc."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out.append((int(d.name), int(fields[1]), fields[0]))
    return out


@pytest.mark.slow
def test_a_build_killed_while_rewriting_resumes_without_asking_again(tmp_path: Path) -> None:
    """kill -9 of the build while the rewrite stage is a third done; the same command finishes it,
    sending the rewriter only the traces that had no answer, and the rows equal an uninterrupted build's."""
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time
    from collections import Counter

    def rows() -> dict[str, list[dict[str, Any]]]:
        return {
            "apps": world.apps_rows(2, 100), "taco-medium": world.taco_rows(2, 200, ["MEDIUM"]),
            "taco-test": world.taco_rows(2, 300, ["EASY"]), "numina-amc-aime": world.numina_rows(4, ["amc_aime"]),
            "numina-math": world.numina_rows(4, ["math"], difficulty=lambda i: 6),
            "numina-olympiads": world.numina_rows(4, ["olympiads"], difficulty=lambda i: 9),
        }

    teacher = ChatServer(lambda b: world.teacher_reply(b, thinking_field=False))
    proc: list[subprocess.Popen[str]] = []
    killed = threading.Event()
    lock = threading.Lock()
    served: list[int] = []
    answered_first: list[dict[str, Any]] = []
    cache = tmp_path / "a" / "out" / "work" / "rewrite-requests"

    def rewrite_then_kill(body: dict[str, Any]) -> str:
        with lock:
            served.append(1)
            n = len(served)
            if n <= 6:
                answered_first.append(body)
        if n > 6:  # the 7th request on waits until the build, holding 6 answers, is dead
            killed.wait(timeout=300)
        return world.rewriter_reply(body)

    def kill_once_six_are_cached() -> None:
        """kill -9 of the build process's group (`tracekit build` runs it in its own) once the rewrite
        cache holds the 6 answers, whatever the machine's load; the blocked requests are answered only
        when the build is dead, so exactly those 6 answers survive."""
        for _ in range(6000):
            if sum(f.read_text().count("\n") for f in cache.glob("*.jsonl")) >= 6:
                break
            time.sleep(0.05)
        build_pid = next(pid for pid, ppid, _ in processes() if ppid == proc[0].pid)
        os.killpg(build_pid, signal.SIGKILL)  # it leads its group: its datatrove workers die with it
        for _ in range(6000):
            if all(state in "ZX" for pid, _, state in processes() if pid == build_pid):
                break
            time.sleep(0.05)
        killed.set()

    killer, resumer, plain = ChatServer(rewrite_then_kill), ChatServer(world.rewriter_reply), ChatServer(world.rewriter_reply)
    with teacher as t_url:
        with killer as k_url:
            recipe, _ = world.derive("sky-t1-17k", tmp_path / "a", rows(), limit=4, teacher_url=t_url, tool_url=k_url)
            proc.append(subprocess.Popen([sys.executable, "-m", "tracekit.cli", "build", str(recipe)], env={**os.environ, **KEYS},
                                         start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True))
            killer_thread = threading.Thread(target=kill_once_six_are_cached, daemon=True)
            killer_thread.start()
            proc[0].wait(timeout=600)
            killer_thread.join(timeout=60)
        assert killed.is_set() and proc[0].returncode != 0  # `tracekit build` reports its build's death
        with resumer as r_url:  # the same recipe, its rewriter now at another address (not part of the fingerprint)
            recipe, _ = world.derive("sky-t1-17k", tmp_path / "a", rows(), limit=4, teacher_url=t_url, tool_url=r_url)
            build(recipe)
        with plain as p_url:
            reference, _ = world.derive("sky-t1-17k", tmp_path / "b", rows(), limit=4, teacher_url=t_url, tool_url=p_url)
            build(reference)
    total = len(plain.requests)
    # the 6 answers cached before the kill are not asked again; every other one is asked once
    # (several sources hold the same question and answer, so requests are compared as multisets)
    asked_again = Counter(user_text(b) for b in resumer.requests)
    assert total == 18 and asked_again.total() == total - 6
    assert asked_again == Counter(user_text(b) for b in plain.requests) - Counter(user_text(b) for b in answered_first)

    def strip(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows without what a clock measures (request latency, the sandbox's times and memory)."""
        out = []
        for r in rs:
            r = {k: v for k, v in r.items() if k != "latency_s"}
            if r["domain"] == "code":
                detail = json.loads(r["verify_detail"])
                r["verify_detail"] = {k: v for k, v in detail.items() if not k.endswith(("time_s", "cpu_s", "_kb"))}
            out.append(r)
        return out

    assert strip(read_ledger(tmp_path / "a" / "out")) == strip(read_ledger(tmp_path / "b" / "out"))
    assert read_dataset(tmp_path / "a" / "out") == read_dataset(tmp_path / "b" / "out")


@pytest.mark.slow
def test_s1k_selects_from_the_pool(tmp_path: Path) -> None:
    """s1K from a test-sized pool: the shipped selection (two students' pass rates graded by the LLM
    judge, a question kept only when both fail it; the judge's MSC domain labels) and the shipped mix (an equal share per domain, longest thinking
    first), with the pool's traces replayed and graded but kept whatever their grade."""
    from tests.teachers.tiny_model import build_tokenizer

    out_pool, _ = build_s1_pool(tmp_path / "pool", 18, dup=(2, 4))
    tokenizer = tmp_path / "tokenizer"
    build_tokenizer().save_pretrained(tokenizer)

    def small(recipe: dict[str, Any]) -> None:
        recipe["sources"][0]["path"] = str(out_pool / "ledger" / "*.parquet")  # the pool build's ledger
        recipe["tokenizer"] = str(tokenizer)
        recipe["mix"]["buckets"][0]["count"] = 3  # one per labelled domain

    student, tools = ChatServer(world.student_reply), ChatServer(world.s1_tool_reply)
    with student as s_url, tools as t_url:
        recipe, spec = world.derive(
            "s1k", tmp_path / "s1k", {}, limit=18, teacher_url="unused", tool_url=t_url,
            student_url=s_url, edit=small,
        )
        r = run_cli("validate", str(recipe), env=KEYS)
        assert r.returncode == 0, r.stderr + r.stdout
        build(recipe)
    pool_kept = {world.number(r["prompt"]) for r in read_ledger(out_pool) if r["kept"]}
    assert pool_kept == set(range(18)) - {7, 2} or pool_kept == set(range(18)) - {7, 4}
    ledger = read_ledger(tmp_path / "s1k" / "out")
    rows = by_number(ledger)
    assert set(rows) == pool_kept and all(len(v) == 1 for v in rows.values())
    # difficulty: each student answered every kept question once, greedy, the 7B before the 32B; a
    # question either got right is too_easy (its pass rate is the higher of the two)
    models = [b["model"] for b in spec["select"]["pass_rate"]]
    assert models == ["Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-32B-Instruct"]
    assert [b["model"] for b in student.requests] == [m for m in models for _ in pool_kept]
    for m in models:
        asked = [b for b in student.requests if b["model"] == m]
        assert sorted(world.number(user_text(b)) for b in asked) == sorted(pool_kept)
        assert all(b["temperature"] == 0.0 for b in asked)
    hard = {i for i in pool_kept if not any(world.student_right(m, i) for m in models)}
    assert 9 not in hard and any(not world.student_right(models[0], i) and world.student_right(models[1], i) for i in pool_kept)
    for i, (r,) in rows.items():
        assert r["student_pass_rates"] == [{"model": m, "pass_rate": float(world.student_right(m, i))} for m in models]
        assert r["pass_rate"] == (0.0 if i in hard else 1.0), r
        if i not in hard:
            assert (r["kept"], r["drop_reason"], r["sample_index"]) == (False, "too_easy", None)
    # diversity: the hard questions were labelled; an unusable answer is label_failed, never a guess
    assert rows[11][0]["drop_reason"] == "label_failed" and rows[11][0]["domain_label"] is None
    sampled = {i for i in hard if world.s1_domain(i)}
    for i in sampled:
        r = rows[i][0]
        assert r["domain_label"] == world.s1_domain(i) and r["sample_index"] == 0
        assert r["teacher_model"] == "gemini-2.0-flash-thinking-exp" and r["reasoning"].startswith(f"Let me think about question {i}")
        # the pool's trace was graded by the judge, and kept whatever its grade (reject: false)
        assert (r["verdict"], r["verify_method"]) == ("incorrect" if world.wrong(i) else "correct", "judge")
    # the mix: one question per domain, the one with the longest thinking (an oracle over the scripted truth)
    expected = {
        max((i for i in sampled if world.s1_domain(i) == d), key=world.thinking_steps) for d in world.S1_DOMAINS
    }
    data = read_dataset(tmp_path / "s1k" / "out")
    # (the 32B alone would have left 9, the longest in its domain, in s1K instead of 3)
    assert {world.number(d["messages"][0]["content"]) for d in data} == expected == {3, 13, 17}
    assert any(world.wrong(i) for i in expected)  # a wrong trace made it into s1K, as in s1
    assert {i for i, (r,) in rows.items() if r["kept"]} == expected
    assert_no_secret(tmp_path / "s1k" / "out")
