"""The verifier audit (issue 15, item 4): a second opinion on a random sample of verdicts, false-accept and
false-reject rates per source with Wilson intervals, disagreements listed, in stats, report and card."""

from __future__ import annotations

import json
import math
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tracekit.verify.math import MathAuditConfig, MathJudgeConfig, MathVerifyConfig
from tracekit.verify.math.audit import (
    AUDIT_FILE,
    AuditCase,
    audit_tables,
    read_audit,
    run_audit,
    sample_cases,
    summarize,
    wilson,
    write_audit,
)


def _score_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The score interval by its definition: the p where |k/n - p| = z sqrt(p (1 - p) / n), by bisection."""

    def outside(p: float) -> float:
        return abs(k / n - p) - z * math.sqrt(p * (1 - p) / n)

    def root(lo: float, hi: float) -> float:
        for _ in range(200):
            mid = (lo + hi) / 2
            if (outside(lo) > 0) == (outside(mid) > 0):
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    p = k / n
    low = 0.0 if k == 0 else root(0.0, p)
    high = 1.0 if k == n else root(p, 1.0)
    return low, high


def test_wilson_interval_is_the_score_interval() -> None:
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 400)
        k = rng.randint(0, n)
        low, high = wilson(k, n)
        ref_low, ref_high = _score_interval(k, n)
        assert abs(low - ref_low) < 1e-4 and abs(high - ref_high) < 1e-4, (k, n)
        assert low <= k / n <= high
    assert wilson(0, 0) == (0.0, 1.0)


def _cases(n_sources: int = 2, per: int = 30) -> list[AuditCase]:
    out = []
    for s in range(n_sources):
        for i in range(per):
            out.append(
                AuditCase(
                    f"s{s}-{i}", f"src{s}", "correct" if i % 3 else "incorrect", str(i), f"\\boxed{{{i}}}"
                )
            )
    return out


def test_the_sample_is_per_source_and_verdict_and_reproducible() -> None:
    cases = _cases()
    picked = sample_cases(cases, per_source=5, seed=1)
    counts: dict[tuple[str, str], int] = {}
    for c in picked:
        counts[(c.source, c.verdict)] = counts.get((c.source, c.verdict), 0) + 1
    assert counts == {
        ("src0", "correct"): 5,
        ("src0", "incorrect"): 5,
        ("src1", "correct"): 5,
        ("src1", "incorrect"): 5,
    }
    assert [c.trace_id for c in picked] == [
        c.trace_id for c in sample_cases(list(reversed(cases)), per_source=5, seed=1)
    ]
    assert [c.trace_id for c in picked] != [c.trace_id for c in sample_cases(cases, per_source=5, seed=2)]
    # fewer cases than asked: all of them
    assert len(sample_cases(cases, per_source=100, seed=0)) == len(cases)


def planted(n: int, wrong_accepts: int, wrong_rejects: int) -> list[AuditCase]:
    """n accepted and n rejected answers of one source; some verdicts planted wrong."""
    cases = []
    for i in range(n):
        right = i >= wrong_accepts  # the first ones are accepted although the answer is wrong
        ans = f"The answer is $\\boxed{{{i + 2 if right else i + 3}}}$."
        cases.append(AuditCase(f"a{i}", "toy", "correct", str(i + 2), ans, str(i + 2 if right else i + 3)))
    for i in range(n):
        right = i < wrong_rejects  # rejected although the answer is right
        ans = f"So $\\boxed{{\\frac{{{2 * i + 2}}}{{2}}}}$." if right else f"So $\\boxed{{{i + 9}}}$."
        cases.append(AuditCase(f"r{i}", "toy", "incorrect", str(i + 1), ans))
    return cases


@pytest.mark.slow
def test_math_verify_finds_the_planted_wrong_verdicts(tmp_path: Path) -> None:
    cfg = MathVerifyConfig(audit=MathAuditConfig(sample=12, seed=3))
    records = run_audit(planted(12, wrong_accepts=3, wrong_rejects=2), cfg)
    assert {r.opinion for r in records} == {"math_verify"}
    (row,) = summarize(records)
    assert row[:4] == ("toy", "math_verify", 12, 3)
    assert row[4] == 0.25 and (row[5], row[6]) == wilson(3, 12)
    assert row[7:9] == (12, 2) and (row[10], row[11]) == wilson(2, 12)
    dis = {r.trace_id for r in records if r.disagrees}
    assert dis == {"a0", "a1", "a2", "r0", "r1"}
    # the table round-trips and is what stats, report and card show
    write_audit(tmp_path / AUDIT_FILE, records)
    assert [r.trace_id for r in read_audit(tmp_path / AUDIT_FILE)] == [r.trace_id for r in records]
    tables = audit_tables(tmp_path)
    assert tables[0][0] == "math verifier audit" and tables[0][2] == summarize(records)
    assert len(tables[1][2]) == 5 and tables[1][1][:4] == ["source", "trace_id", "verifier", "second_opinion"]


class _Judge(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = body["messages"][0]["content"]
        gold = text.split("Reference answer: ")[1].split("\n")[0].strip()
        answer = text.split("Student answer: ")[1].strip()
        content = "EQUIVALENT" if gold == answer else "DIFFERENT"
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def judge_url() -> Iterator[str]:
    srv = HTTPServer(("127.0.0.1", 0), _Judge)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}/v1"
    srv.shutdown()
    srv.server_close()


def test_the_configured_judge_is_the_second_opinion(judge_url: str) -> None:
    cases = [
        AuditCase("t1", "s", "correct", "5", "...", "5"),
        AuditCase("t2", "s", "correct", "5", "...", "6"),  # accepted, the judge disagrees
        AuditCase("t3", "s", "incorrect", "7", "...", "7"),  # rejected, the judge disagrees
        AuditCase("t4", "s", "incorrect", "7", "...", "8"),
    ]
    cfg = MathVerifyConfig(
        judge=MathJudgeConfig(enabled=True, base_url=judge_url, model="m"),
        audit=MathAuditConfig(sample=10, math_verify=False),
    )
    records = run_audit(cases, cfg)
    assert [(r.trace_id, r.opinion, r.judge, r.disagrees) for r in records] == [
        ("t1", "judge", True, False),
        ("t2", "judge", False, True),
        ("t3", "judge", True, True),
        ("t4", "judge", False, False),
    ]
    # without any second opinion nothing is counted
    none = run_audit(cases, MathVerifyConfig(audit=MathAuditConfig(sample=10, math_verify=False)))
    assert summarize(none) == [("s", "none", 0, 0, None, 0.0, 1.0, 0, 0, None, 0.0, 1.0)]


@pytest.mark.slow
def test_verify_math_audit_command(tmp_path: Path) -> None:
    rows = [
        {"source": "A" if i % 2 else "B", "gold": str(i), "prediction": f"\\boxed{{{i}}}"} for i in range(8)
    ]
    rows += [
        {"source": "A", "gold": "3", "prediction": "\\boxed{4}"},
        {"source": "B", "gold": "1", "prediction": "\\boxed{2}"},
    ]
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = run_cli("verify", "math", "--input", str(src), "--output", str(dst), "--audit", "3", "--workers", "1")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    by_source = {row["source"]: row for row in summary["audit"]}
    assert set(by_source) == {"A", "B", "ALL"}
    assert by_source["A"]["accepted_checked"] == 3 and by_source["A"]["rejected_checked"] == 1
    assert by_source["ALL"]["false_accepts"] == 0 and by_source["ALL"]["false_rejects"] == 0
    audited = [json.loads(x) for x in Path(summary["audit_file"]).read_text().splitlines()]
    assert len(audited) == 8 and all(a["opinion"] == "math_verify" for a in audited)
    bad = run_cli("verify", "code", "--input", str(src), "--output", str(dst), "--audit", "3")
    assert bad.returncode == 2 and "--audit applies to `tracekit verify math` only" in bad.stderr


@pytest.mark.slow
def test_a_build_with_an_audit_shows_it_in_stats_report_and_card(tmp_path: Path) -> None:
    recipe = (REPO / "pipelines" / "quickstart.yaml").read_text()
    recipe = recipe.replace("output: ../out/quickstart", f"output: {tmp_path / 'out'}")
    recipe = recipe.replace("path: data/", f"path: {REPO / 'pipelines' / 'data'}/")
    recipe = recipe.replace("math: {timeout_s: 5}", "math: {timeout_s: 5, audit: {sample: 5, seed: 1}}")
    (tmp_path / "r.yaml").write_text(recipe)
    r = run_cli("build", str(tmp_path / "r.yaml"))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    records = read_audit(out / AUDIT_FILE)
    assert records and {r.source for r in records} == {"toy-math"}
    assert all(r.opinion == "math_verify" for r in records)
    stats = run_cli("stats", str(out), "--format", "json")
    assert stats.returncode == 0, stats.stderr
    table = json.loads(stats.stdout)["math verifier audit"]
    assert table[0]["source"] == "toy-math" and table[0]["accepted_checked"] + table[0][
        "rejected_checked"
    ] == len(records)
    card = (out / "dataset" / "README.md").read_text()
    assert "Math verifier audit (95% Wilson intervals)" in card
    assert "math verifier audit" in (out / "report.html").read_text()
