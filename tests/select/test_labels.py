"""LLM labels through a local OpenAI-compatible judge with scripted answers (well-formed, malformed,
failing requests): the labels, drops and records the build writes are checked against what the script
answered; a build killed mid-selection resumes without asking answered questions again."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.chat_server import ChatServer, user_text
from tests.conftest import read_ledger, run_cli, write_recipe
from tracekit.engine.layout import BuildLayout
from tracekit.select.labels import parse_difficulty, parse_domain
from tracekit.stats import queries
from tracekit.stats.db import connect
from tracekit.stats.summary import SELECT_FUNNEL

DOMAINS = ["Algebra", "Geometry", "Number theory", "Algebraic number theory", "Combinatorics"]
N_PROMPTS = 30
KEEP_DIFFICULTY = [2, 9]

# (answer the judge gives, the label it means or None when it cannot be read); v/w are 1-10, d a domain
DIFFICULTY_SCRIPTS = [
    (lambda v, w: str(v), lambda v, w: v),
    (lambda v, w: f"Difficulty: {v}/10", lambda v, w: v),
    (lambda v, w: f"<think>Is it {w} or so? Let me see.</think>\n\n{v}", lambda v, w: v),
    (lambda v, w: f"I would rate it {v} out of 10.", lambda v, w: v),
    (lambda v, w: f"**{v}**", lambda v, w: v),
    (lambda v, w: f"{v} or {w}", lambda v, w: v if v == w else None),
    (lambda v, w: str(10 + v), lambda v, w: 10 if v == 0 else None),
    (lambda v, w: f"{v}.5", lambda v, w: None),
    (lambda v, w: "It is quite hard.", lambda v, w: None),
    (lambda v, w: "", lambda v, w: None),
    (lambda v, w: {"status": 500}, lambda v, w: None),  # the server keeps failing: the request gives up
    (lambda v, w: {"status": 400}, lambda v, w: None),  # refused
    (lambda v, w: {"raw": b"{not json"}, lambda v, w: None),  # an unreadable response body
]
DOMAIN_SCRIPTS = [
    (lambda d, e: d, lambda d, e: d),
    (lambda d, e: f"{d.lower()}.", lambda d, e: d),
    (lambda d, e: f"The domain is **{d}**", lambda d, e: d),
    (lambda d, e: f"<think>not {e}?</think>{d}", lambda d, e: d),
    (lambda d, e: f"{d} or {e}", lambda d, e: d if d == e else None),
    (lambda d, e: "Topology", lambda d, e: None),
    (lambda d, e: {"status": 503}, lambda d, e: None),
]


def scripted(i: int, ask: str) -> tuple[Any, Any]:
    """What the judge answers question `ask` about problem i, and the label that answer means."""
    rng = random.Random(i * 7919 + (ask == "domain"))
    if ask == "difficulty":
        say, means = rng.choice(DIFFICULTY_SCRIPTS)
        v, w = rng.randint(1, 10), rng.randint(1, 10)
        return say(v, w), means(v, w)
    say_d, means_d = rng.choice(DOMAIN_SCRIPTS)
    d, e = rng.choice(DOMAINS), rng.choice(["Algebra", "Geometry", "Combinatorics"])
    if " or " in str(say_d("X", "Y")):
        d = rng.choice(["Algebra", "Geometry", "Combinatorics"])  # names that do not contain each other
    return say_d(d, e), means_d(d, e)


def script(body: dict[str, Any]) -> Any:
    text = user_text(body)
    i = int(re.search(r"Problem (\d+):", text).group(1))  # type: ignore[union-attr]
    return scripted(i, "difficulty" if text.startswith("Rate how difficult") else "domain")[0]


def expected(i: int) -> tuple[Any, Any, str | None]:
    (_, rating), (_, domain) = scripted(i, "difficulty"), scripted(i, "domain")
    if rating is None or domain is None:
        return rating, domain, "label_failed"
    if rating < KEEP_DIFFICULTY[0]:
        return rating, domain, "too_easy"
    if rating > KEEP_DIFFICULTY[1]:
        return rating, domain, "too_hard"
    return rating, domain, None


def test_parsers_agree_with_the_scripts() -> None:
    for i in range(400):
        for ask, parse in (("difficulty", parse_difficulty), ("domain", lambda a: parse_domain(a, DOMAINS))):
            say, means = scripted(i, ask)
            if isinstance(say, str):
                from tracekit.parse.split import split_reasoning

                assert parse(split_reasoning(say).answer_text) == means, (ask, say)


@pytest.mark.slow
def test_labels_drops_records_and_resume(tmp_path: Path) -> None:
    rows = [{"q": f"Problem {i}: find x.", "a": "1", "g": ["<think>t</think>\\boxed{1}"]} for i in range(N_PROMPTS)]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    srv = ChatServer(script)
    with srv as url:
        judge = {
            "kind": "openai",
            "base_urls": [url],
            "model": "judge-x",
            "max_concurrency": 2,
            "retries": {"attempts": 2, "backoff_s": 0, "max_backoff_s": 0},
        }
        recipe = write_recipe(
            tmp_path,
            sources=[{"name": "m", "path": "m.jsonl", "columns": {"prompt": "q", "answer": "a", "generations": "g"}}],
            verify={"math": {}},
            select={
                "labels": {"judge": judge, "ask": ["difficulty", "domain"], "domains": DOMAINS, "keep_difficulty": KEEP_DIFFICULTY}
            },
            executor={"kind": "local", "tasks": 1, "workers": 1},
        )
        killed = run_cli("build", str(recipe), env={"TRACEKIT_FAULT": "select:12"})
        assert killed.returncode != 0
        first = list(srv.requests)
        r = run_cli("build", str(recipe))
        assert r.returncode == 0, r.stderr
        second = srv.requests[len(first) :]

    # resume: a question answered (and so cached) before the kill is not asked again
    def problem(body: dict[str, Any]) -> int:
        return int(re.search(r"Problem (\d+):", user_text(body)).group(1))  # type: ignore[union-attr]

    answered_early = {user_text(b) for b in first if isinstance(script(b), str) and problem(b) < 12}
    assert answered_early and not answered_early & {user_text(b) for b in second}
    assert len(second) < 2 * N_PROMPTS

    ledger = read_ledger(tmp_path / "out")
    by_row: dict[int, list[dict[str, Any]]] = {}
    for x in ledger:
        by_row.setdefault(x["row_index"], []).append(x)
    assert sorted(by_row) == list(range(N_PROMPTS))
    outcomes = set()
    for i, got in by_row.items():
        rating, domain, reason = expected(i)
        outcomes.add(reason)
        assert len(got) == 1  # one sample, or one row for a dropped prompt: never twice after the resume
        x = got[0]
        assert (x["difficulty_rating"], x["domain_label"]) == (rating, domain), (i, x["selection"])
        assert x["drop_reason"] == reason or (reason is None and x["drop_reason"] is None)
        assert (x["sample_index"] is None) == (reason is not None)
        asked = json.loads(x["selection"])["labels"]
        assert asked["judge"] == "judge-x"
        for entry in asked["asked"]:
            say, _ = scripted(i, entry["ask"])
            assert entry["question"].endswith(f"Problem {i}: find x.")
            if isinstance(say, str):
                assert entry["answer"] == say  # the raw answer, reasoning and all
            else:
                assert entry["error"] and entry["answer"] == ""
    assert {"label_failed", None} <= outcomes and outcomes & {"too_easy", "too_hard"}
    card = (tmp_path / "out" / "dataset" / "README.md").read_text()
    assert "| label_failed |" in card

    # what the card's selection plot shows: the funnel and the label distributions, counted from the script
    con = connect(ledger=BuildLayout(tmp_path / "out").ledger)
    said = [expected(i) for i in range(N_PROMPTS)]
    assert queries.difficulty_ratings(con) == dict(Counter(r for r, _, _ in said if r is not None))
    assert dict(queries.domain_labels(con)) == dict(Counter(d for _, d, _ in said if d is not None))
    chosen = sum(1 for *_, reason in said if reason is None)
    funnel = [N_PROMPTS, N_PROMPTS, chosen, chosen, chosen, chosen]  # every sampled trace is correct and kept
    assert queries.select_funnel_totals(con) == list(zip(SELECT_FUNNEL, funnel, strict=True))
    assert "| " + " | ".join(map(str, funnel)) + " |" in card
    assert "![selection](plots/selection.png)" in card


@pytest.mark.parametrize("after_upstream", [True, False])
def test_judge_waits_for_the_steps_before_when_asked(tmp_path: Path, after_upstream: bool) -> None:
    """`after_upstream` (a vLLM student and a vLLM judge share the task's GPUs): the judge's first
    question goes out only once the steps before have ended; without it the two overlap."""
    from datatrove.data import Document

    from tracekit.record import prompt_id
    from tracekit.select.config import LabelsConfig, judge_teacher
    from tracekit.select.labels import LabelStep
    from tracekit.sources.config import SourceConfig
    from tracekit.teachers import build_teacher

    ended: list[bool] = []
    seen_when_asked: list[bool] = []

    def reply(body: dict[str, Any]) -> str:
        seen_when_asked.append(bool(ended))
        return "4"

    n = 120

    def upstream() -> Any:  # what a student's step yields; its engine would stop when this ends
        try:
            for i in range(n):
                q = f"Problem {i}: find x."
                md = {"source": "m", "source_file": "m.jsonl", "row_index": i, "prompt": q, "prompt_id": prompt_id("m", q)}
                yield Document(text=q, id=f"m:{i}", metadata=md)
        finally:
            ended.append(True)

    with ChatServer(reply) as url:
        cfg = LabelsConfig.model_validate(
            {"judge": {"kind": "openai", "base_urls": [url], "model": "j", "max_concurrency": 2}, "ask": ["difficulty"]}
        )
        plain = SourceConfig(name="m", path="m.jsonl", prompt_template=None, system_prompt=None, sampling=None)
        judge = build_teacher(judge_teacher(cfg.judge), sources=[plain])
        step = LabelStep(config=cfg, judge=judge, judge_name="j", after_upstream=after_upstream)
        out = list(step.run(upstream()))
    assert [d.metadata["difficulty_rating"] for d in out] == [4] * n
    assert len(seen_when_asked) == n
    assert all(seen_when_asked) if after_upstream else not seen_when_asked[0]
