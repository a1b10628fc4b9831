"""`tracekit eval` end to end with a managed vLLM (CPU build) serving a tiny random model.

A random model solves nothing: the test checks the plumbing (n samples per problem in the ledger,
verdicts, pass@k = 0 with c = 0, report files, `tracekit stats` over the eval ledger).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import SHARED_DATA, run_cli
from tests.teachers.tiny_model import save_tiny_model
from tracekit.eval.layout import EvalLayout

pytestmark = pytest.mark.slow

# small and quick on a shared 2-core machine: no compilation, 1 GiB of KV cache
ENGINE = ["dtype=float32", "max_model_len=2048", "enforce_eager=true", "max_num_seqs=8"]


def test_managed_vllm_eval(tmp_path: Path) -> None:
    model = save_tiny_model(tmp_path / "tiny")
    out = tmp_path / "eval"
    engine = [x for kv in ENGINE for x in ("--engine", kv)]
    r = run_cli(
        "eval", str(model),
        "--bench", "aime25", "--bench", "humaneval", "--data-dir", str(SHARED_DATA / "benchmarks"),
        "--limit", "2", "--n", "3", "--k", "1,3", "--max-tokens", "8", "--temperature", "1.0",
        *engine, "--engine-env", "VLLM_CPU_KVCACHE_SPACE=1",
        "--output", str(out), "--workers", "1",
        timeout=900,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [x for f in sorted(EvalLayout(out).ledger.glob("*.parquet")) for x in pq.read_table(f).to_pylist()]
    assert len(rows) == 2 * 2 * 3  # benchmarks x problems x n
    per_problem: dict[tuple[str, int], list[dict]] = {}
    for x in rows:
        per_problem.setdefault((x["source"], x["row_index"]), []).append(x)
    assert sorted(per_problem) == [("aime25", 0), ("aime25", 1), ("humaneval", 0), ("humaneval", 1)]
    for samples in per_problem.values():
        assert sorted(x["sample_index"] for x in samples) == [0, 1, 2]
        assert len({x["seed"] for x in samples}) == 3  # each sample its own seed
    for x in rows:
        assert x["teacher_model"] == str(model) and x["teacher_backend"] == "vllm"
        assert 1 <= x["completion_tokens"] <= 8 and x["prompt_tokens"] > 0
        assert x["finish_reason"] == ("length" if x["completion_tokens"] == 8 else "stop")
        assert x["verdict"] in ("incorrect", "error") and x["verify_method"]
        assert x["prompt_messages"][-1]["role"] == "user" and x["error"] is None
    assert all(x["gold_answer"] for x in rows if x["source"] == "aime25")
    assert all(x["tests"] for x in rows if x["source"] == "humaneval")
    res = json.loads((out / "results.json").read_text())
    assert res["models"] == [str(model)]
    for b in res["results"]:
        assert b["correct"] == 0 and b["samples"] == 6 and b["problems"] == 2
        for k in ("1", "3"):
            p = b["pass_at_k"][k]
            assert p["value"] == p["ci_low"] == p["ci_high"] == 0.0
        bench_rows = [x for x in rows if x["source"] == b["benchmark"]]
        truncated = sum(x["finish_reason"] == "length" for x in bench_rows) / 6
        assert b["truncation_rate"] == pytest.approx(truncated)
        mean_tokens = sum(x["completion_tokens"] for x in bench_rows) / 6
        assert b["mean_completion_tokens"] == pytest.approx(mean_tokens)
    assert "## aime25" in (out / "results.md").read_text()
    assert list(EvalLayout(out).logs.glob("vllm-*.log"))  # the managed server's log
    st = run_cli("stats", str(out))
    assert st.returncode == 0 and "aime25" in st.stdout, st.stderr


# the teacher tests' session server (one vLLM for the whole test session)
from tests.teachers.conftest import SERVED, tiny_model, vllm_server  # noqa: E402, F401


def test_eval_against_a_running_server_with_base_url(vllm_server: str, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "eval"
    r = run_cli(
        "eval", SERVED, "--base-url", vllm_server,
        "--bench", "aime25", "--data-dir", str(SHARED_DATA / "benchmarks"),
        "--limit", "2", "--n", "2", "--k", "1,2", "--max-tokens", "8", "--output", str(out),
        timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [x for f in sorted(EvalLayout(out).ledger.glob("*.parquet")) for x in pq.read_table(f).to_pylist()]
    assert len(rows) == 2 * 2  # problems x n, sampled from the running server
    assert all(x["teacher_model"] == SERVED and x["error"] is None and x["completion_tokens"] for x in rows)
    assert not list(EvalLayout(out).logs.glob("vllm-*.log"))  # no managed server was started
    res = json.loads((out / "results.json").read_text())
    assert [b["benchmark"] for b in res["results"]] == ["aime25"] and res["results"][0]["samples"] == 4
