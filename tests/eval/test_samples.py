"""`tracekit eval --samples`: planted generations whose pass@k values are known exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import SHARED_DATA, run_cli
from tracekit.engine.layout import BuildLayout
from tracekit.eval.layout import EvalLayout

pytestmark = pytest.mark.slow  # each test runs the CLI in fresh processes (a few seconds each)

BENCH_DIR = SHARED_DATA / "benchmarks"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def ledger(out: Path) -> list[dict]:
    rows: list[dict] = []
    for f in sorted(EvalLayout(out).ledger.glob("*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return rows


def boxed(x: str) -> str:
    return f"<think>Let me think.</think>\nSo the answer is \\boxed{{{x}}}."


@pytest.fixture
def planted_math(tmp_path: Path) -> tuple[Path, Path]:
    bench = write_jsonl(
        tmp_path / "toy.jsonl",
        [
            {"id": "a", "problem": "What is 1 + 1?", "answer": "2"},
            {"id": "b", "problem": "What is 2 + 3?", "answer": "5"},
            {"id": "c", "problem": "What is 3 + 4?", "answer": 7.0},
        ],
    )
    rows = []
    # a: 4/4 correct (one answer); b: 1/4 correct (two distinct answers); c: 0/4 (1, 2, 3, none; one cut off)
    plan = {
        "a": [boxed("2")] * 4,
        "b": [boxed("\\frac{10}{2}"), boxed("6"), boxed("6"), boxed("6")],
        "c": [boxed("1"), boxed("2"), boxed("3"), "<think>I am still thinking"],
    }
    for model, offset in (("student", 0), ("teacher", 1)):
        for pid, texts in plan.items():
            for i, t in enumerate(texts):
                if model == "teacher" and pid == "c" and i == 0:
                    t = boxed("7")  # the teacher solves c once
                finish = "length" if t.startswith("<think>I am") else "stop"
                rows.append(
                    {
                        "model": model,
                        "benchmark": "toy",
                        "problem_id": pid,
                        "completion": t,
                        "finish_reason": finish,
                        "completion_tokens": 10 + offset,
                    }
                )
    return bench, write_jsonl(tmp_path / "samples.jsonl", rows)


def test_planted_math_pass_at_k_exact(planted_math: tuple[Path, Path], tmp_path: Path) -> None:
    bench, samples = planted_math
    out = tmp_path / "eval"
    r = run_cli(
        "eval", "--bench", f"toy={bench}", "--samples", str(samples), "--k", "1,2,4", "--output", str(out)
    )
    assert r.returncode == 0, r.stderr
    res = json.loads((out / "results.json").read_text())
    by_model = {x["model"]: x for x in res["results"]}
    assert set(by_model) == {"student", "teacher"}
    s, t = by_model["student"], by_model["teacher"]
    p = {k: v["value"] for k, v in s["pass_at_k"].items()}
    assert p["1"] == pytest.approx((1 + 1 / 4 + 0) / 3)
    assert p["2"] == pytest.approx((1 + 1 / 2 + 0) / 3)
    assert p["4"] == pytest.approx((1 + 1 + 0) / 3)
    tp = {k: v["value"] for k, v in t["pass_at_k"].items()}
    assert tp["1"] == pytest.approx((1 + 1 / 4 + 1 / 4) / 3)
    assert tp["4"] == pytest.approx(1.0)
    assert s["pass_at_k_minus_pass_at_1"] == pytest.approx(2 / 3 - 5 / 12)
    assert s["correct"] == 5 and s["samples"] == 12 and s["problems"] == 3
    # distinct final answers: a 1, b 2 (5 and 6), c 3 (1, 2, 3; the cut-off sample has none)
    assert {x["problem_id"]: x["distinct_answers"] for x in s["per_problem"]} == {"a": 1, "b": 2, "c": 3}
    assert s["distinct_answers_per_problem"] == pytest.approx(2.0)
    assert s["truncation_rate"] == pytest.approx(1 / 12)
    assert s["no_answer_rate"] == pytest.approx(1 / 12)
    assert s["mean_completion_tokens"] == pytest.approx(10) and t["mean_completion_tokens"] == pytest.approx(
        11
    )
    ci = s["pass_at_k"]["1"]
    assert ci["ci_low"] <= ci["value"] <= ci["ci_high"]
    # every sample is in the eval ledger, with its verdict
    rows = ledger(out)
    assert len(rows) == 24
    assert sum(r["verdict"] == "correct" for r in rows if r["teacher_model"] == "student") == 5
    assert {r["drop_reason"] for r in rows if not r["kept"]} == {"incorrect", "truncated"}
    assert all(r["source"] == "toy" and r["domain"] == "math" and r["gold_answer"] for r in rows)
    md = (out / "results.md").read_text()
    assert "## toy" in md and "| student |" in md and "| teacher |" in md
    assert "41.7" in md  # student pass@1 in %
    # tracekit stats reads the eval ledger
    st = run_cli("stats", str(out), "--format", "json")
    assert st.returncode == 0, st.stderr
    q = run_cli(
        "stats",
        str(out),
        "--sql",
        "SELECT teacher_model, sum(CASE WHEN verdict='correct' THEN 1 ELSE 0 END) AS c "
        "FROM traces GROUP BY 1 ORDER BY 1",
        "--format",
        "csv",
    )
    assert q.returncode == 0, q.stderr
    assert "student,5" in q.stdout and "teacher,6" in q.stdout


def test_rescoring_the_eval_ledger_gives_the_same_numbers(
    planted_math: tuple[Path, Path], tmp_path: Path
) -> None:
    bench, samples = planted_math
    first, second = tmp_path / "one", tmp_path / "two"
    r = run_cli(
        "eval", "--bench", f"toy={bench}", "--samples", str(samples), "--k", "1,4", "--output", str(first)
    )
    assert r.returncode == 0, r.stderr
    shard = sorted(EvalLayout(first).ledger.glob("*.parquet"))[0]  # the student's
    r = run_cli(
        "eval", "--bench", f"toy={bench}", "--samples", str(shard), "--k", "1,4", "--output", str(second)
    )
    assert r.returncode == 0, r.stderr
    a = json.loads((first / "results.json").read_text())["results"][0]
    b = json.loads((second / "results.json").read_text())["results"][0]
    assert a["model"] == b["model"] == "student"
    assert a["pass_at_k"] == b["pass_at_k"]


def test_registry_benchmarks_math_and_code(tmp_path: Path) -> None:
    """aime25 (math) and HumanEval (code, in the bubblewrap sandbox) from the registry's local copies."""
    import gzip

    with gzip.open(BENCH_DIR / "HumanEval.jsonl.gz", "rt") as f:
        he = [json.loads(x) for x in f][:2]
    rows = [
        # aime25 problem 0 (answer 70): 3 of 4 correct; problem 1 (answer 588): 0 of 4
        *(
            {"model": "m", "benchmark": "aime25", "problem_id": "0", "completion": boxed(a)}
            for a in ["70", "70", "70", "71"]
        ),
        *(
            {"model": "m", "benchmark": "aime25", "problem_id": "1", "completion": boxed("1")}
            for _ in range(4)
        ),
    ]
    for t in he:  # the canonical solution twice, a wrong body twice
        good = f"```python\n{t['prompt']}{t['canonical_solution']}\n```"
        bad = f"```python\n{t['prompt']}    return None\n```"
        rows += [
            {"model": "m", "benchmark": "humaneval", "problem_id": t["task_id"], "completion": c}
            for c in (good, bad, good, bad)
        ]
    samples = write_jsonl(tmp_path / "s.jsonl", rows)
    out = tmp_path / "eval"
    r = run_cli(
        "eval",
        "--bench",
        "aime25",
        "--bench",
        "humaneval",
        "--data-dir",
        str(BENCH_DIR),
        "--limit",
        "2",
        "--samples",
        str(samples),
        "--k",
        "1,2",
        "--output",
        str(out),
        "--workers",
        "2",
    )
    assert r.returncode == 0, r.stderr
    res = {x["benchmark"]: x for x in json.loads((out / "results.json").read_text())["results"]}
    aime, code = res["aime25"], res["humaneval"]
    assert aime["pass_at_k"]["1"]["value"] == pytest.approx((3 / 4 + 0) / 2)
    assert aime["pass_at_k"]["2"]["value"] == pytest.approx((1 + 0) / 2)
    assert code["pass_at_k"]["1"]["value"] == pytest.approx(0.5)
    assert code["pass_at_k"]["2"]["value"] == pytest.approx(1 - 1 / 6)
    rows_out = ledger(out)
    methods = {r["verify_method"] for r in rows_out if r["domain"] == "code"}
    assert methods == {"code_sandbox"}
    assert all(r["tests"] for r in rows_out if r["domain"] == "code")


def test_fresh_after_keeps_only_later_problems(tmp_path: Path) -> None:
    bench = write_jsonl(
        tmp_path / "dated.jsonl",
        [
            {"id": "old", "problem": "What is 1 + 1?", "answer": "2", "date": "2023-05-01"},
            {"id": "new", "problem": "What is 2 + 2?", "answer": "4", "date": "2025-03-01"},
            {"id": "undated", "problem": "What is 3 + 3?", "answer": "6"},
        ],
    )
    samples = write_jsonl(
        tmp_path / "s.jsonl",
        [
            {"model": "m", "problem_id": pid, "completion": boxed(a)}
            for pid, a in (("old", "2"), ("new", "5"), ("undated", "6"))
        ],
    )
    out = tmp_path / "eval"
    r = run_cli(
        "eval",
        "--bench",
        f"dated={bench}",
        "--samples",
        str(samples),
        "--k",
        "1",
        "--fresh-after",
        "2024-12-31",
        "--output",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert "1 problem(s) have no publication date" in r.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["benchmarks"]["dated"] == {
        "loaded": 3,
        "undated": 1,
        "fresh_after": "2024-12-31",
        "problems": 1,
        "domain": "math",
    }
    (only,) = res["results"]
    assert [x["problem_id"] for x in only["per_problem"]] == ["new"] and only["pass_at_k"]["1"][
        "value"
    ] == 0.0
    assert "published after 2024-12-31" in (out / "results.md").read_text()
    # registry dates: AIME 2025 I (ids 0-14) was on 6 Feb, II on 12 Feb
    import datetime as dt

    from tracekit.eval.benchmarks import keep_fresh, load_problems

    aime = load_problems("aime25", data_dir=str(BENCH_DIR))
    fresh, undated = keep_fresh(aime, dt.date(2025, 2, 10))
    assert undated == 0 and sorted(int(p.problem_id) for p in fresh) == list(range(15, 30))


def test_bad_input_exits_2(tmp_path: Path) -> None:
    r = run_cli("eval", "--bench", "no_such_bench", "--samples", "x.jsonl", "--output", str(tmp_path / "o"))
    assert r.returncode == 2 and "unknown benchmark" in r.stderr
    r = run_cli("eval", "m", "--bench", "aime25", "--k", "1,32", "--n", "4", "--output", str(tmp_path / "o"))
    assert r.returncode == 2 and "1..n=4" in r.stderr


def test_overlap_with_a_training_build_warns(tmp_path: Path) -> None:
    from tracekit.ledger.parquet import ParquetShardWriter
    from tracekit.record import LEDGER_SCHEMA, empty_record, prompt_id

    aime = [json.loads(x) for x in (BENCH_DIR / "aime25.jsonl").read_text().splitlines()][:3]
    train = tmp_path / "train-out"
    w = ParquetShardWriter(BuildLayout(train).ledger, 0, LEDGER_SCHEMA, rows_per_file=100)
    prompts = [
        ("Solve this: " + aime[1]["problem"], True),  # problem 1 was trained on
        (aime[2]["problem"], False),  # problem 2 was sampled but dropped: not trained on
        ("What is the capital of France? Answer in one word please, thanks a lot.", True),
    ]
    for i, (text, kept) in enumerate(prompts):
        row = empty_record()
        row.update(
            trace_id=f"t{i}",
            prompt_id=prompt_id("src", text),
            source="src",
            domain="math",
            prompt=text,
            kept=kept,
            verdict="correct",
        )
        w.write(row)
    w.close()
    samples = write_jsonl(
        tmp_path / "s.jsonl",
        [{"model": "m", "problem_id": str(i), "completion": boxed("0")} for i in range(3)],
    )
    out = tmp_path / "eval"
    r = run_cli(
        "eval",
        "--bench",
        "aime25",
        "--data-dir",
        str(BENCH_DIR),
        "--limit",
        "3",
        "--samples",
        str(samples),
        "--train-data",
        str(train),
        "--output",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert "aime25: 1 of 3 problem(s) share a 8-gram with training data" in r.stderr
    info = json.loads((out / "results.json").read_text())["benchmarks"]["aime25"]
    assert info["overlap_problems"] == 1 and info["overlap_with"] == [f"train:{train}"]
    hits = {r["row_index"]: r["contamination"] for r in ledger(out)}
    assert hits[0] == [] and hits[2] == []
    (hit,) = hits[1]
    assert hit["benchmark"] == f"train:{train}" and hit["item"] == prompt_id("src", prompts[0][0])
    assert "overlap training data" in (out / "results.md").read_text()
    # the same training build named in an eval config file instead of --train-data
    config = tmp_path / "eval.yaml"
    config.write_text(
        f"benchmarks: [aime25]\ndata_dir: {BENCH_DIR}\nlimit: 3\nsamples: {samples}\n"
        f"train_data: [{train}]\noutput: {tmp_path / 'eval-config'}\n"
    )
    r = run_cli("eval", "--config", str(config))
    assert r.returncode == 0, r.stderr
    assert "aime25: 1 of 3 problem(s) share a 8-gram with training data" in r.stderr


def test_without_output_it_prints_the_table_and_writes_a_default_folder(
    planted_math: tuple[Path, Path], tmp_path: Path
) -> None:
    bench, samples = planted_math
    work = tmp_path / "work"
    work.mkdir()
    args = ("eval", "--bench", f"toy={bench}", "--samples", str(samples), "--k", "1,2")
    r = run_cli(*args, cwd=work)
    assert r.returncode == 0, r.stderr
    assert "student" in r.stdout and "teacher" in r.stdout  # the table
    written = sorted((work / "out" / "eval").glob("*/results.json"))
    assert len(written) == 1 and str(written[0].parent.relative_to(work)) in r.stdout
    layout = EvalLayout(written[0].parent)
    assert list(layout.ledger.glob("*.parquet")) and layout.results_md.exists()
    again = run_cli(*args, cwd=work)  # the same evaluation reuses its folder
    assert again.returncode == 0 and sorted((work / "out" / "eval").glob("*/results.json")) == written
