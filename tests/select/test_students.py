"""Several students (`pass_rate` as a list of student blocks): each student's pass rate is recorded, the
prompt's pass rate is the highest of them and the window decides on it. Checked against an exact
oracle on generated prompts whose per-student answers are known (replayed students), then through
`tracekit build` and `validate --estimate` with each student behind its own scripted OpenAI-compatible
server, after kill -9 in the middle of the second student, and on bad input."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chat_server import ChatServer, user_text
from tests.conftest import read_ledger, run_cli, write_recipe
from tests.select.test_pass_rate import GRID, expected, prompt_doc
from tracekit.engine.layout import BuildLayout
from tracekit.parse.step import ParseStep
from tracekit.record import stable_hash
from tracekit.select.config import SelectConfig
from tracekit.select.pass_rate import PassRateStep, student_key
from tracekit.sources.config import SourceConfig
from tracekit.stats import queries
from tracekit.stats.db import connect
from tracekit.teachers.replay import ReplayTeacher
from tracekit.verify.math_step import MathVerifyStep


# exact oracle over replayed students ---------------------------------------------------------------
def student_answers(rng: random.Random, gold: int | None, skill: float) -> tuple[list[str], Fraction | None]:
    """k answers of one student (right with probability `skill`, in some spelling); its exact pass rate."""
    k = rng.choice([0, 1, 2, 3, 4, 6])
    answers, right, decided = [], 0, 0
    for _ in range(k):
        x = rng.random()
        if gold is not None and x < skill:
            right += 1
            answers.append(rng.choice([f"\\boxed{{{gold}}}", f"so $\\boxed{{\\frac{{{2 * gold}}}{{2}}}}$"]))
        elif x < 0.9:
            answers.append(f"\\boxed{{{(gold or 0) + rng.randint(1, 9)}}}")
        else:
            answers.append("I give up.")  # no answer: incorrect
        decided += 1
    return answers, (Fraction(right, decided) if gold is not None and decided else None)


@pytest.mark.parametrize("seed", range(4))
def test_combined_pass_rate_is_the_highest_students(seed: int) -> None:
    rng = random.Random(500 + seed)
    models = ["small", "medium", "large"]
    lo, hi = sorted(rng.sample(GRID, 2))
    blocks = [
        {"kind": "dataset", "generations": f"s{j}", "model": m, "keep": [float(lo), float(hi)]} for j, m in enumerate(models)
    ]
    cfg = SelectConfig.model_validate({"pass_rate": blocks}).pass_rate
    src = SourceConfig(name="m", path="m.jsonl")
    step = PassRateStep(
        config=cfg,
        student=[ReplayTeacher(config_hash=f"student-{m}", model=m, sources=[src]) for m in models],
        checks=[ParseStep(), MathVerifyStep()],
    )
    docs, truth = [], []
    for i in range(150):
        gold = None if rng.random() < 0.1 else rng.randint(-20, 40)
        row: dict[str, Any] = {"q": f"Problem {i}: what is it?", "a": None if gold is None else str(gold)}
        answers = {m: student_answers(rng, gold, skill) for m, skill in zip(models, (0.2, rng.random(), 0.7), strict=True)}
        extra = {student_key(j): answers[m][0] for j, m in enumerate(models)}
        docs.append(prompt_doc(row, i, **extra, _generations=["teacher's"]))
        truth.append({m: answers[m][1] for m in models})
    out = list(step.run(iter(docs)))
    assert [d.id for d in out] == [d.id for d in docs]
    outcomes = set()
    for d, rates in zip(out, truth, strict=True):
        md = d.metadata
        known = [r for r in rates.values() if r is not None]
        best = max(known) if known else None
        want = expected(best, lo, hi)
        outcomes.add(want)
        assert md["pass_rate"] == (None if best is None else float(best))
        assert md.get("drop_reason") == want and md.get("kept", True) is (want is None)
        assert md["student_pass_rates"] == [
            {"model": m, "pass_rate": None if rates[m] is None else float(rates[m])} for m in models
        ]
        recorded = json.loads(md["selection"])["students"]
        assert [s["model"] for s in recorded] == models
        for s in recorded:
            decided = s["correct"] + s["incorrect"]
            assert (Fraction(s["correct"], decided) if decided and rates[s["model"]] is not None else None) == rates[s["model"]]
        assert md["_generations"] == ["teacher's"]  # the teacher's replay is untouched
        assert not any(k.startswith("_student") for k in md)
    assert outcomes >= {None, "too_easy"} or outcomes >= {None, "too_hard"}
    # the highest rate is not always the same student's, so the combination matters
    assert len({max((m for m in models if r[m] is not None), key=lambda m: r[m] or 0) for r in truth if any(r.values())}) > 1


# the students as scripted servers, through `tracekit build` -------------------------------------------
N_PROMPTS = 18
STUDENTS = {  # model: (n, temperature, skill per problem)
    "small-x": (3, 0.7, lambda i: i % 4),
    "large-x": (2, 0.2, lambda i: (i * 7) % 5),
    "mid-x": (4, 1.0, lambda i: 2 if i % 3 == 0 else 0),
}
KEEP = [0.0, 0.5]


class Arrivals:
    """Every student request, in the order the servers received them (one counter for all servers)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.models: list[str] = []

    def server(self, hold: Any = None) -> ChatServer:
        def reply(body: dict[str, Any]) -> Any:
            with self.lock:
                self.models.append(body["model"])
            if hold is not None:
                hold(body)
            return script(body)

        return ChatServer(reply)


def problem(body: dict[str, Any]) -> int:
    return int(re.search(r"Problem (\d+):", user_text(body)).group(1))  # type: ignore[union-attr]


def right(body: dict[str, Any]) -> bool:
    return int(stable_hash(body["model"], problem(body), body["seed"])[:4], 16) % 4 < STUDENTS[body["model"]][2](problem(body))


def script(body: dict[str, Any]) -> Any:
    i = problem(body)
    if body["model"] == "teacher-x":
        return f"<think>t</think> \\boxed{{{3 * i}}}"
    if body["model"] == "mid-x" and i % 6 == 1:
        return {"status": 500}  # this student never answers problem i: no evidence, its rate is None
    return f"The answer is \\boxed{{{3 * i if right(body) else 3 * i + 1}}}."


def counted(servers: dict[str, ChatServer]) -> dict[int, dict[str, Fraction | None]]:
    """Each student's pass rate per problem, counted from what its server answered (the oracle)."""
    rates: dict[int, dict[str, Fraction | None]] = {i: dict.fromkeys(STUDENTS) for i in range(N_PROMPTS)}
    for model, srv in servers.items():
        by: dict[int, list[bool]] = {}
        for body in srv.requests:
            assert body["model"] == model
            if model == "mid-x" and problem(body) % 6 == 1:
                continue
            by.setdefault(problem(body), []).append(right(body))
        for i, v in by.items():
            rates[i][model] = Fraction(sum(v), len(v))
    return rates


def students_recipe(tmp: Path, urls: dict[str, str], teacher_url: str, **extra: Any) -> Path:
    rows = [{"q": f"Problem {i}: what is 3 times {i}?", "a": str(3 * i)} for i in range(N_PROMPTS)]
    (tmp / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    price = {"prompt_per_million": 1.0, "completion_per_million": 2.0}
    blocks = [
        {
            "kind": "openai", "base_urls": [urls[m]], "model": m, "n": n, "keep": KEEP, "price": price,
            "sampling": {"max_tokens": 64, "temperature": t}, "retries": {"attempts": 1},
        }
        for m, (n, t, _) in STUDENTS.items()
    ]
    teacher = {"kind": "openai", "base_urls": [teacher_url], "model": "teacher-x", "sampling": {"n": 1, "max_tokens": 64}, "price": price}
    extra.setdefault("executor", {"kind": "local", "tasks": 1, "workers": 1})
    return write_recipe(
        tmp,
        sources=[{"name": "m", "path": "m.jsonl", "columns": {"prompt": "q", "answer": "a"}}],
        verify={"math": {}},
        select={"pass_rate": blocks},
        teacher=teacher,
        **extra,
    )


def check_ledger(out: Path, rates: dict[int, dict[str, Fraction | None]]) -> int:
    """Every prompt's rows against the oracle; the number of prompts sampled."""
    rows: dict[int, list[dict[str, Any]]] = {}
    for x in read_ledger(out):
        rows.setdefault(x["row_index"], []).append(x)
    assert sorted(rows) == list(range(N_PROMPTS))
    sampled = 0
    for i, per in rates.items():
        known = [r for r in per.values() if r is not None]
        best = max(known) if known else None
        want = expected(best, Fraction(KEEP[0]), Fraction(KEEP[1]))
        (x,) = rows[i]  # one teacher sample or one dropped row
        assert x["pass_rate"] == (None if best is None else float(best)), (i, per, x["pass_rate"])
        assert x["student_pass_rates"] == [{"model": m, "pass_rate": None if r is None else float(r)} for m, r in per.items()]
        assert x["drop_reason"] == want if want else x["sample_index"] == 0
        sampled += want is None
        sel = json.loads(x["selection"])["students"]
        assert [(s["model"], s["samples"]) for s in sel] == [(m, n) for m, (n, _, _) in STUDENTS.items()]
    return sampled


def test_students_answer_one_after_another_and_the_highest_rate_decides(tmp_path: Path) -> None:
    arrivals = Arrivals()
    servers = {m: arrivals.server() for m in STUDENTS}
    teacher = ChatServer(script)
    with servers["small-x"] as u1, servers["large-x"] as u2, servers["mid-x"] as u3, teacher as t_url:
        recipe = students_recipe(tmp_path, {"small-x": u1, "large-x": u2, "mid-x": u3}, t_url)
        r = run_cli("build", str(recipe))
        assert r.returncode == 0, r.stderr
    for m, (n, temperature, _) in STUDENTS.items():  # each student: its own server, n answers, its sampling
        per_problem = [problem(b) for b in servers[m].requests]
        assert sorted(per_problem) == sorted(list(range(N_PROMPTS)) * n)
        assert {b["temperature"] for b in servers[m].requests} == {temperature}
    # one after another, in the recipe's order: no request of a student before the previous one's last
    assert arrivals.models == [m for m, (n, _, _) in STUDENTS.items() for _ in range(N_PROMPTS * n)]
    rates = counted(servers)
    sampled = check_ledger(tmp_path / "out", rates)
    assert 0 < sampled < N_PROMPTS
    assert len(teacher.requests) == sampled  # the teacher was asked about the kept prompts only
    # the combination decides: some prompt is dropped although one student alone would have kept it,
    # and some prompt has a pass rate only because another student's answers were decided
    assert any(min(r for r in per.values() if r is not None) <= Fraction(1, 2) < max(r for r in per.values() if r is not None)
               for per in rates.values() if any(v is not None for v in per.values()))
    assert any(per["mid-x"] is None and per["small-x"] is not None for per in rates.values())
    for j, (m, (n, _, _)) in enumerate(STUDENTS.items(), start=1):
        usage = json.loads((tmp_path / "out" / "logs" / f"select-student-{j}" / "usage-00000.json").read_text())
        assert usage["traces"] == N_PROMPTS * n, m
    card = (tmp_path / "out" / "dataset" / "README.md").read_text()
    assert f"| {N_PROMPTS} | {sampled} | {sampled} | {sampled} |" in card  # the funnel: read -> window -> ...
    # the card's table per student, against the oracle
    con = connect(ledger=BuildLayout(tmp_path / "out").ledger)
    cols, table = queries.student_pass_rates(con)
    assert cols == ["student", "prompts_rated", "mean_pass_rate", "prompts_passed"]
    want = []
    for m in STUDENTS:
        got = [per[m] for per in rates.values() if per[m] is not None]
        want.append((m, len(got), round(float(sum(got) / len(got)), 3), sum(1 for r in got if r > 0)))
    assert table == want
    assert "Pass rate per student" in card and all(f"| {m} | {n} |" in card for m, n, _, _ in want)


def test_estimate_projects_every_student(tmp_path: Path) -> None:
    servers = {m: ChatServer(script) for m in STUDENTS}
    teacher = ChatServer(script)
    with servers["small-x"] as u1, servers["large-x"] as u2, servers["mid-x"] as u3, teacher as t_url:
        recipe = students_recipe(tmp_path, {"small-x": u1, "large-x": u2, "mid-x": u3}, t_url)
        r = run_cli("validate", str(recipe), "--estimate", "6")
        assert r.returncode == 0, r.stderr
    out = r.stdout
    names = re.findall(r"^## (.+)$", out, re.MULTILINE)
    assert names == [f"select: student-{j} ({m})" for j, m in enumerate(STUDENTS, start=1)] + ["teacher"]
    parts = re.split(r"^## .+$", out, flags=re.MULTILINE)[1:]
    asked = {problem(b) for b in servers["small-x"].requests}
    assert len(asked) == 6
    for (m, (n, _, _)), part in zip(STUDENTS.items(), parts[:3], strict=True):
        assert sorted(problem(b) for b in servers[m].requests) == sorted(list(asked) * n)  # the same 6 prompts
        assert re.search(rf"traces to sample\s+{N_PROMPTS * n}\b", part), (m, part)  # every prompt, n answers
    rates = counted(servers)
    kept = 0
    for i in asked:
        known = [v for v in rates[i].values() if v is not None]
        kept += expected(max(known) if known else None, Fraction(KEEP[0]), Fraction(KEEP[1])) is None
    assert f"selection kept {kept} of 6 sampled prompts" in out
    costs = [float(c) for c in re.findall(r"^cost\s+([\d.]+)$", out, re.MULTILINE)]
    total = float(re.search(r"^cost, all parts\s+([\d.]+)$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert len(costs) == 4 and abs(total - sum(costs)) <= 0.025
    assert not (tmp_path / "out").exists()


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, state) of every process."""
    from tests.recipes.test_recipes import processes

    return processes()


@pytest.mark.slow
def test_killed_during_the_second_student_resumes_from_the_caches(tmp_path: Path) -> None:
    """kill -9 of the build once the second student has 5 answers cached; the same command resumes:
    the first student is asked nothing again, the second only what had no answer, and the ledger
    equals an uninterrupted build's."""
    n_first = N_PROMPTS * STUDENTS["small-x"][0]
    cut = 5
    killed = threading.Event()
    lock = threading.Lock()
    served: list[dict[str, Any]] = []
    proc: list[subprocess.Popen[str]] = []
    cache = tmp_path / "a" / "out" / "work" / "select-requests" / "student-2"

    def hold(body: dict[str, Any]) -> None:
        if body["model"] != "large-x":
            return
        with lock:
            served.append(body)
            n = len(served)
        if n > cut:  # the 6th request on waits until the build, holding 5 answers, is dead
            killed.wait(timeout=300)

    def kill_once_cached() -> None:
        for _ in range(6000):
            if cache.exists() and sum(f.read_text().count("\n") for f in cache.glob("*.jsonl")) >= cut:
                break
            time.sleep(0.05)
        build_pid = next(pid for pid, ppid, _ in _processes() if ppid == proc[0].pid)
        os.killpg(build_pid, signal.SIGKILL)  # it leads its own group: its workers die with it
        for _ in range(6000):
            if all(state in "ZX" for pid, _, state in _processes() if pid == build_pid):
                break
            time.sleep(0.05)
        killed.set()

    first = Arrivals()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    teacher = ChatServer(script)
    with teacher as t_url:
        a = {m: first.server(hold) for m in STUDENTS}
        with a["small-x"] as u1, a["large-x"] as u2, a["mid-x"] as u3:
            recipe = students_recipe(tmp_path / "a", {"small-x": u1, "large-x": u2, "mid-x": u3}, t_url)
            proc.append(subprocess.Popen([sys.executable, "-m", "tracekit.cli", "build", str(recipe)], start_new_session=True,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True))
            killer = threading.Thread(target=kill_once_cached, daemon=True)
            killer.start()
            proc[0].wait(timeout=600)
            killer.join(timeout=60)
        assert killed.is_set() and proc[0].returncode != 0
        assert first.models.count("small-x") == n_first and "mid-x" not in first.models  # killed in student 2
        again = {m: ChatServer(script) for m in STUDENTS}  # new addresses: not part of what a build is
        with again["small-x"] as u1, again["large-x"] as u2, again["mid-x"] as u3:
            recipe = students_recipe(tmp_path / "a", {"small-x": u1, "large-x": u2, "mid-x": u3}, t_url)
            r = run_cli("build", str(recipe))
            assert r.returncode == 0, r.stderr
        plain = {m: ChatServer(script) for m in STUDENTS}
        with plain["small-x"] as u1, plain["large-x"] as u2, plain["mid-x"] as u3:
            reference = students_recipe(tmp_path / "b", {"small-x": u1, "large-x": u2, "mid-x": u3}, t_url)
            r = run_cli("build", str(reference))
            assert r.returncode == 0, r.stderr

    def key(b: dict[str, Any]) -> tuple[int, int]:
        return problem(b), b["seed"]

    assert again["small-x"].requests == []  # every first-student answer came from its cache
    resent = sorted(key(b) for b in again["large-x"].requests)
    assert len(resent) == N_PROMPTS * STUDENTS["large-x"][0] - cut
    assert resent == sorted(set(map(key, plain["large-x"].requests)) - set(map(key, served[:cut])))
    assert len(again["mid-x"].requests) == len(plain["mid-x"].requests)

    def rows(out: Path) -> list[dict[str, Any]]:
        return [{k: v for k, v in x.items() if k != "latency_s"} for x in read_ledger(out)]

    assert rows(tmp_path / "a" / "out") == rows(tmp_path / "b" / "out")
    check_ledger(tmp_path / "b" / "out", counted(plain))


def test_a_ledger_from_before_several_students_has_no_table_per_student(tmp_path: Path) -> None:
    """The stats of a ledger written before `student_pass_rates` existed: the column reads as null."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tracekit.record import LEDGER_SCHEMA, empty_record

    rows = [{**empty_record(), "trace_id": f"t{i}", "prompt_id": f"p{i}", "source": "m", "row_index": i, "pass_rate": 0.5}
            for i in range(3)]
    old = pa.Table.from_pylist(rows, schema=LEDGER_SCHEMA).drop_columns(["student_pass_rates"])
    ledger = BuildLayout(tmp_path / "out").ledger
    ledger.mkdir(parents=True)
    pq.write_table(old, ledger / "00000.parquet")
    con = connect(ledger=ledger)
    assert queries.student_pass_rates(con) == (["student", "prompts_rated", "mean_pass_rate", "prompts_passed"], [])
    assert queries.prompt_pass_rates(con, sampled=False) == [0.5] * 3


# bad input ---------------------------------------------------------------------------------------------
def _block(model: str | None, **extra: Any) -> dict[str, Any]:
    b: dict[str, Any] = {"kind": "openai", "base_urls": ["http://127.0.0.1:9/v1"], "n": 2, "keep": [0.0, 0.5], **extra}
    if model is not None:
        b["model"] = model
    return b


BAD = {
    "empty": ([], ("select.pass_rate", "lists no student")),
    "duplicate": ([_block("a"), _block("b"), _block("a")], ("select.pass_rate[2].model", "same model as student 0")),
    "column": ([_block("a"), {"column": "r", "keep": [0.0, 0.5]}], ("select.pass_rate[1].column", "no student")),
    "windows": ([_block("a"), _block("b", keep=[0.0, 0.25])], ("select.pass_rate[1].keep", "same")),
    "sources": ([_block("a"), _block("b", sources=["m"])], ("select.pass_rate[1].sources", "same")),
    "unnamed": ([_block("a"), {"kind": "dataset", "generations": "g", "keep": [0.0, 0.5]}], ("select.pass_rate[1].model", "needs `model`")),
    "bound": ([_block("a"), _block("b", keep=[0.0, 1.5])], ("select.pass_rate[1].keep", "lie in [0, 1]")),
    "missing": ([_block("a"), {"kind": "openai", "model": "b", "keep": [0.0, 0.5]}], ("select.pass_rate[1].base_urls", "required")),
    "no column": (
        [_block("a"), {"kind": "dataset", "model": "b", "generations": "nope", "keep": [0.0, 0.5]}],
        ("select.pass_rate[1].generations", "column 'nope' does not exist"),
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_student_lists_are_recipe_errors(tmp_path: Path, case: str) -> None:
    blocks, (key, message) = BAD[case]
    (tmp_path / "m.jsonl").write_text(json.dumps({"q": "Problem 1: 1+1?", "a": "2", "r": 0.5}) + "\n")
    recipe = write_recipe(
        tmp_path,
        sources=[{"name": "m", "path": "m.jsonl", "columns": {"prompt": "q", "answer": "a"}}],
        verify={"math": {}},
        select={"pass_rate": blocks},
        teacher={"kind": "openai", "base_urls": ["http://127.0.0.1:9/v1"], "model": "t"},
    )
    r = run_cli("validate", str(recipe))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    text = recipe.read_text().splitlines()
    # the line of the key named (of its block, when the key is missing from it)
    path = yaml.safe_load(recipe.read_text())["select"]["pass_rate"]
    m = re.search(r"\[(\d+)\]\.(\w+)$", key)
    if m:
        block, name = int(m.group(1)), m.group(2)
        starts = [j for j, line in enumerate(text, start=1) if re.match(r"\s*- kind:|\s*- column:", line)]
        start = starts[block]
        end = starts[block + 1] if block + 1 < len(starts) else len(text) + 1
        inside = [j for j in range(start, end) if re.match(rf"\s*(- )?{name}:", text[j - 1])]
        line = inside[0] if inside and name in path[block] else start
    else:
        line = next(j for j, t in enumerate(text, start=1) if t.strip().startswith("pass_rate:"))
    assert re.search(rf"{re.escape(recipe.name)}:{line}: {re.escape(key)}: .*{re.escape(message)}", r.stderr), r.stderr
