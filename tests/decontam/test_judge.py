"""The rephrase judge against a local OpenAI-compatible HTTP server with scripted answers.

The server reads the two problems out of each request and answers by the marker the prompt
carries: `[same]` SAME, `[diff]` DIFFERENT, `[unclear]` a reply that says neither, `[flaky]` HTTP 500
then SAME, `[badjson]` a cut-off body then "Yes", `[down]` 503 while the server is in its down
phase. Builds run end to end on the local executor.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import read_ledger, run_cli
from tests.decontam.test_build import BENCH_DIR, replay
from tracekit.decontam.judge import JUDGE_PROMPT, parse_verdict

pytestmark = pytest.mark.slow  # real builds (or a transformers model): seconds each


class ScriptedJudge:
    """A chat/completions endpoint whose answers depend on markers in the prompt."""

    def __init__(self) -> None:
        self.asked: Counter[str] = Counter()  # marker-carrying prompt -> requests received
        self.down = False
        self.lock = threading.Lock()
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                content = body["messages"][0]["content"]
                assert body["temperature"] == 0.0 and body["max_tokens"] >= 1
                prompt = content.rsplit("Problem B:\n", 1)[1]
                with judge.lock:
                    judge.asked[prompt] += 1
                    n = judge.asked[prompt]
                if judge.down and "[down]" in prompt:
                    return self.reply(503, "judge overloaded")
                if "[flaky]" in prompt and n == 1:
                    return self.reply(500, "boom")
                if "[badjson]" in prompt and n == 1:
                    return self.reply(200, '{"choices": [{"message": {"content": "SA')
                text = "SAME"
                if "[diff]" in prompt:
                    text = "DIFFERENT"
                elif "[unclear]" in prompt:
                    text = "Hard to say without more context."
                elif "[badjson]" in prompt:
                    text = "Yes, they are the same problem."
                self.reply(
                    200, json.dumps({"choices": [{"message": {"content": text}, "finish_reason": "stop"}]})
                )

            def reply(self, status: int, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def judge_server() -> Iterator[ScriptedJudge]:
    s = ScriptedJudge()
    yield s
    s.close()


def gsm8k(idx: int) -> str:
    with open(BENCH_DIR / "gsm8k.jsonl") as f:
        return next(r["question"] for r in map(json.loads, f) if r["idx"] == idx)


# rephrasings of GSM8K problems (same numbers, new words); the first two also pass the no-judge rule
NEWSPAPERS = (
    "In one day James hands out 600 newspapers in total. District A gets 198 of them and District C gets "
    "209; the remainder go to District B. How many newspapers go to District B?"
)
TEA = (
    "After a party there were 10 quarts of tea remaining. 4 students drank 1.5 quarts each, and 16 students "
    "drank 2 quarts each. How many gallons of tea were there when the party started?"
)
TREES = "Tom starts out with 50 trees. Each year he plants 10 trees but also cuts down 2. After 10 years, 30% of his trees die. How many trees remain?"
PIZZA = "Sally orders a small pizza for $8 and a family-size pizza costing 3 times the small one. What does she spend altogether?"
APPLES = "Jenna and her mom went apple picking on their farm. Her mom picked 20 apples and Jenna picked half as many as her mom. How many apples did the two of them pick?"
LIAM = "Liam is now 16. Two years ago he was twice as old as Vince was then. What is Vince's age now?"


def judge_recipe(tmp: Path, url: str, prompts: list[str]) -> Path:
    judge = {
        "kind": "openai",
        "base_urls": [url],
        "model": "scripted-judge",
        "retries": {"attempts": 3, "backoff_s": 0.05, "max_backoff_s": 0.1},
        "timeout_s": 10,
    }
    return replay(
        tmp,
        prompts,
        decontaminate={"benchmarks": ["gsm8k"], "data_dir": str(BENCH_DIR), "rephrase": {"judge": judge}},
    )


def test_verdict_parsing() -> None:
    assert parse_verdict("SAME") is True and parse_verdict("same problem.") is True
    assert parse_verdict("DIFFERENT") is False and parse_verdict("No, they differ") is False
    assert parse_verdict("They are NOT the same") is False
    assert parse_verdict("") is None and parse_verdict("Hard to say") is None
    assert "{a}" in JUDGE_PROMPT and "{b}" in JUDGE_PROMPT


def test_judge_decides_retries_and_records_its_answers(judge_server: ScriptedJudge, tmp_path: Path) -> None:
    prompts = {
        "same": f"{TREES} [same]",
        "diff": f"{PIZZA} [diff]",
        "unclear_rule": f"{NEWSPAPERS} [unclear]",  # unclear: the no-judge rule decides (it flags)
        "unclear_norule": f"{LIAM} [unclear]",  # unclear and the rule does not flag: kept, recorded
        "flaky": f"{APPLES} [flaky]",
        "badjson": f"{TEA} [badjson]",
        "verbatim": "Please solve: " + gsm8k(0),  # an n-gram hit: never sent to the judge
        "clean": "Write a haiku about autumn leaves falling on a quiet pond.",
    }
    r = run_cli("build", str(judge_recipe(tmp_path, judge_server.url, list(prompts.values()))))
    assert r.returncode == 0, r.stderr
    rows = {row["prompt"]: row for row in read_ledger(tmp_path / "out")}

    def only(name: str) -> tuple[str, str | None, list[dict], list[dict]]:
        row = rows[prompts[name]]
        hits, cleared = row["contamination"], row["contamination_cleared"]
        return (hits[0]["method"] if hits else "none"), row["drop_reason"], hits, cleared

    method, reason, hits, cleared = only("same")
    assert (method, reason, hits[0]["judge"], cleared) == ("judge", "contaminated", "SAME", [])
    assert hits[0]["benchmark"] == "gsm8k" and hits[0]["item"] == "192" and 0.4 <= hits[0]["score"] <= 1
    method, reason, hits, cleared = only("diff")
    assert (method, reason, hits) == ("none", None, [])
    assert [(c["item"], c["method"], c["judge"]) for c in cleared] == [("492", "judge", "DIFFERENT")]
    method, _, hits, _ = only("unclear_rule")
    assert (method, hits[0]["judge"]) == ("rephrase", "Hard to say without more context.")
    method, reason, hits, cleared = only("unclear_norule")
    assert (method, reason) == ("none", None) and cleared[0]["judge"] == "Hard to say without more context."
    for name in ("flaky", "badjson"):  # retried after a 500 / a cut-off body, then answered
        method, _, hits, _ = only(name)
        assert method == "judge", name
        assert judge_server.asked[prompts[name]] == 2
    assert only("verbatim")[0] == "ngram" and only("clean")[0] == "none"
    assert prompts["verbatim"] not in judge_server.asked and prompts["clean"] not in judge_server.asked
    # every judged pair was asked once more than never: the flaky ones twice, the others once
    assert sorted(judge_server.asked.values()) == [1, 1, 1, 1, 2, 2]

    stats = json.loads(run_cli("stats", str(tmp_path / "out"), "--format", "json").stdout)
    methods = {x["method"]: x["prompts"] for x in stats["contamination"]}
    assert methods == {"judge": 3, "rephrase": 1, "ngram": 1}
    assert stats["judge cleared"][0]["candidates"] == 2


def test_unreachable_judge_stops_the_build_and_a_rerun_resumes(
    judge_server: ScriptedJudge, tmp_path: Path
) -> None:
    prompts = [f"{TREES} [same]", f"{PIZZA} [diff]", f"{APPLES} [down]", f"{TEA} [down]"]
    recipe = judge_recipe(tmp_path, judge_server.url, prompts)
    judge_server.down = True
    r = run_cli("build", str(recipe))
    assert r.returncode == 1
    assert "the judge (openai, scripted-judge at" in r.stderr and "did not answer 2 of 4" in r.stderr
    assert "run the same command again" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out" / "ledger").exists()
    assert judge_server.asked[prompts[2]] == 3  # retried: attempts 3
    first = dict(judge_server.asked)
    # the judge is back (on another port: where it runs is not part of the recipe's identity)
    with_back = ScriptedJudge()
    try:
        recipe.write_text(recipe.read_text().replace(judge_server.url, with_back.url))
        r = run_cli("build", str(recipe))
        assert r.returncode == 0, r.stderr
        # answers from the first run are not asked again
        assert set(with_back.asked) == {prompts[2], prompts[3]}
        assert first[prompts[0]] == 1 and first[prompts[1]] == 1
    finally:
        with_back.close()
    rows = {row["prompt"]: row for row in read_ledger(tmp_path / "out")}
    assert [h["method"] for h in rows[prompts[0]]["contamination"]] == ["judge"]
    assert rows[prompts[1]]["contamination"] == [] and rows[prompts[1]]["contamination_cleared"]
    assert all(rows[p]["contamination"][0]["method"] == "judge" for p in prompts[2:])


def test_vllm_judge_is_started_asked_and_stopped(tmp_path: Path) -> None:
    """`judge: {kind: vllm}` starts vLLM's server (CPU build, a tiny random model), asks it, stops it."""
    import subprocess

    from tests.teachers.conftest import ENGINE, ENGINE_ENV
    from tests.teachers.tiny_model import save_tiny_model

    model = save_tiny_model(tmp_path / "tiny")
    bench = tmp_path / "bench.jsonl"
    bench.write_text(
        json.dumps({"id": "q0", "problem": "Compute 17 times 23, then subtract 91 from it."}) + "\n"
    )
    engine = {**ENGINE, "max_model_len": 2048}  # the judge prompt is longer than the teachers' tests'
    judge = {"kind": "vllm", "model": str(model), "engine": engine, "env": ENGINE_ENV, "max_tokens": 4}
    recipe = replay(
        tmp_path,
        ["Multiply 17 by 23 and then take away 91.", "Write a haiku about autumn leaves."],
        decontaminate={
            "benchmarks": [{"name": "mine", "path": str(bench), "id_column": "id"}],
            "rephrase": {"judge": judge},
        },
    )
    r = run_cli("build", str(recipe), timeout=1500)
    assert r.returncode == 0, r.stderr
    rows = {row["prompt"]: row for row in read_ledger(tmp_path / "out")}
    asked = rows["Multiply 17 by 23 and then take away 91."]
    entries = asked["contamination"] + asked["contamination_cleared"]
    # a random model answers anything: its reply is recorded whatever it says
    assert [(e["item"], e["judge"] is not None) for e in entries] == [("q0", True)]
    assert rows["Write a haiku about autumn leaves."]["contamination_cleared"] == []
    assert (tmp_path / "out" / "logs" / "judge" / "vllm-judge.log").exists()
    left = subprocess.run(["pgrep", "-f", "--", f"--model {model}"], capture_output=True, text=True)
    assert left.stdout.strip() == "", "the judge's vLLM server outlived the build"
