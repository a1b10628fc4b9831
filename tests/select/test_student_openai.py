"""A student behind an OpenAI-compatible endpoint (a local server with scripted answers): the pass rates
the build records equal the ones counted from what the server answered, and `validate --estimate`
projects the student's sampling and the teacher's on the prompts selection keeps."""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

from tests.chat_server import ChatServer, user_text
from tests.conftest import read_ledger, run_cli, write_recipe
from tracekit.record import stable_hash

N_PROMPTS, N_STUDENT = 24, 4


def script(body: dict[str, Any]) -> str:
    text = user_text(body)
    i = int(re.search(r"Problem (\d+):", text).group(1))  # type: ignore[union-attr]
    if body["model"] == "teacher-x":
        return f"<think>easy</think> \\boxed{{{3 * i}}} and some more words"
    if body["model"] == "judge-x":
        return "Difficulty: 5/10"
    right = int(stable_hash(i, body["seed"])[:4], 16) % 5 < i % 6  # some prompts easy, some hard
    return f"The answer is \\boxed{{{3 * i if right else 3 * i + 1}}}."


def source_rows(tmp: Path) -> None:
    rows = [{"q": f"Problem {i}: what is 3 times {i}?", "a": str(3 * i)} for i in range(N_PROMPTS)]
    (tmp / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def counted(requests: list[dict[str, Any]]) -> dict[int, Fraction]:
    """Pass rate per problem from what the server answered the student (the independent count)."""
    right: dict[int, list[bool]] = {}
    for body in requests:
        if body["model"] != "student-x":
            continue
        i = int(re.search(r"Problem (\d+):", user_text(body)).group(1))  # type: ignore[union-attr]
        right.setdefault(i, []).append(f"\\boxed{{{3 * i}}}" in script(body))
    return {i: Fraction(sum(v), len(v)) for i, v in right.items()}


def student(url: str) -> dict[str, Any]:
    return {
        "kind": "openai",
        "base_urls": [url],
        "model": "student-x",
        "n": N_STUDENT,
        "sampling": {"max_tokens": 64},
        "keep": [0.25, 0.75],
        "price": {"prompt_per_million": 1.0, "completion_per_million": 2.0},
    }


def test_openai_student_pass_rates(tmp_path: Path) -> None:
    source_rows(tmp_path)
    srv = ChatServer(script)
    with srv as url:
        recipe = write_recipe(
            tmp_path,
            sources=[{"name": "m", "path": "m.jsonl", "columns": {"prompt": "q", "answer": "a"}}],
            verify={"math": {}},
            select={"pass_rate": student(url)},
            teacher={"kind": "openai", "base_urls": [url], "model": "teacher-x", "sampling": {"n": 2, "max_tokens": 64}},
        )
        r = run_cli("build", str(recipe))
        assert r.returncode == 0, r.stderr
        rates = counted(srv.requests)
        teacher_asked = {user_text(b) for b in srv.requests if b["model"] == "teacher-x"}
    assert len(rates) == N_PROMPTS and all(len(str(r)) for r in rates.values())
    ledger = read_ledger(tmp_path / "out")
    seen: dict[int, list[dict[str, Any]]] = {}
    for x in ledger:
        seen.setdefault(x["row_index"], []).append(x)
    sampled = 0
    for i, rate in rates.items():
        keep = Fraction(1, 4) <= rate <= Fraction(3, 4)
        rows = seen[i]
        assert {x["pass_rate"] for x in rows} == {float(rate)}
        assert json.loads(rows[0]["selection"])["student"]["samples"] == N_STUDENT
        if keep:
            sampled += 1
            assert sorted(x["sample_index"] for x in rows) == [0, 1]
        else:
            assert [x["drop_reason"] for x in rows] == ["too_hard" if rate < Fraction(1, 4) else "too_easy"]
    assert 0 < sampled < N_PROMPTS
    assert len(teacher_asked) == sampled  # the teacher was asked about the selected prompts only
    usage = json.loads((tmp_path / "out" / "logs" / "select-student" / "usage-00000.json").read_text())
    usage2 = json.loads((tmp_path / "out" / "logs" / "select-student" / "usage-00001.json").read_text())
    assert usage["traces"] + usage2["traces"] == N_PROMPTS * N_STUDENT


def test_estimate_counts_the_students_sampling(tmp_path: Path) -> None:
    source_rows(tmp_path)
    srv = ChatServer(script)
    with srv as url:
        teacher = {
            "kind": "openai",
            "base_urls": [url],
            "model": "teacher-x",
            "sampling": {"n": 2, "max_tokens": 64},
            "price": {"prompt_per_million": 1.0, "completion_per_million": 2.0},
        }
        recipe = write_recipe(
            tmp_path,
            sources=[{"name": "m", "path": "m.jsonl", "columns": {"prompt": "q", "answer": "a"}}],
            verify={"math": {}},
            select={"pass_rate": student(url)},
            teacher=teacher,
        )
        r = run_cli("validate", str(recipe), "--estimate", "8")
        assert r.returncode == 0, r.stderr
        rates = counted(srv.requests)
    assert len(rates) == 8  # the student answered the 8 sampled prompts, all n of them
    kept = sum(1 for v in rates.values() if Fraction(1, 4) <= v <= Fraction(3, 4))
    out = r.stdout
    assert "## select: student" in out and "## teacher" in out
    assert re.search(rf"traces to sample\s+{N_PROMPTS * N_STUDENT}\b", out)  # every prompt, n answers
    assert f"selection kept {kept} of 8 sampled prompts" in out
    assert re.search(rf"traces to sample\s+{round(N_PROMPTS * kept / 8) * 2}\b", out.split("## teacher")[1])
    assert "cost, all parts" in out
    assert not (tmp_path / "out").exists()


def _cost(part: str) -> float:
    return float(re.search(r"^cost\s+([\d.]+)$", part, re.MULTILINE).group(1))  # type: ignore[union-attr]


def test_estimate_counts_the_judge_after_the_student(tmp_path: Path) -> None:
    """The judge is asked only about the prompts the student's window kept; its projection covers that
    share of every prompt, once per label asked, and the totals add up the three parts."""
    source_rows(tmp_path)
    srv = ChatServer(script)
    price = {"prompt_per_million": 1.0, "completion_per_million": 2.0}
    with srv as url:
        judge = {"kind": "openai", "base_urls": [url], "model": "judge-x", "price": price}
        recipe = write_recipe(
            tmp_path,
            sources=[{"name": "m", "path": "m.jsonl", "columns": {"prompt": "q", "answer": "a"}}],
            verify={"math": {}},
            select={"pass_rate": student(url), "labels": {"judge": judge, "ask": ["difficulty"]}},
            teacher={"kind": "openai", "base_urls": [url], "model": "teacher-x", "sampling": {"n": 2, "max_tokens": 64}, "price": price},
        )
        r = run_cli("validate", str(recipe), "--estimate", "8")
        assert r.returncode == 0, r.stderr
        rates = counted(srv.requests)
        judged = [b for b in srv.requests if b["model"] == "judge-x"]
    kept = sum(1 for v in rates.values() if Fraction(1, 4) <= v <= Fraction(3, 4))
    assert 0 < kept < 8
    kept_problems = {i for i, v in rates.items() if Fraction(1, 4) <= v <= Fraction(3, 4)}
    asked = {int(re.search(r"Problem (\d+):", user_text(b)).group(1)) for b in judged}  # type: ignore[union-attr]
    assert len(judged) == kept and asked == kept_problems  # one question per prompt the window kept
    out = r.stdout
    parts = dict(zip(re.findall(r"^## (.+)$", out, re.MULTILINE), re.split(r"^## .+$", out, flags=re.MULTILINE)[1:], strict=True))
    assert list(parts) == ["select: student", "select: judge", "teacher"]
    assert f"# estimate from {kept} traces of {kept} sampled prompts" in parts["select: judge"]
    assert re.search(rf"traces to sample\s+{round(N_PROMPTS * kept / 8)}\b", parts["select: judge"])
    assert f"selection kept {kept} of 8 sampled prompts" in out  # every rated prompt was labelled
    total = float(re.search(r"^cost, all parts\s+([\d.]+)$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert abs(total - sum(_cost(p) for p in parts.values())) <= 0.015
    assert not (tmp_path / "out").exists()
