"""CodeVerifyStep on datatrove Documents, `verify_code_file`, C++ and the bwrap-unavailable message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datatrove.data import Document

from tracekit.sandbox import BubblewrapRunner, SandboxOptions, SandboxUnavailable
from tracekit.verify.code import CodeItem, CodeVerifier, CodeVerifyConfig
from tracekit.verify.code.cli import verify_code_file
from tracekit.verify.code_step import CodeVerifyStep

TESTS = json.dumps({"inputs": ["2\n", "5\n"], "outputs": ["4\n", "25\n"]})


def doc(i: int, answer: str, *, domain: str = "code", tests: str = TESTS) -> Document:
    md = {"domain": domain, "tests": tests, "answer_text": answer, "kept": True}
    return Document(id=f"t{i}", text="<think>...</think>" + answer, metadata=md)


@pytest.mark.slow
def test_step_writes_verdicts_and_drops_incorrect() -> None:
    docs = [
        doc(0, "Square it.\n```python\nn = int(input())\nprint(n * n)\n```"),
        doc(1, "```python\nn = int(input())\nprint(n + n)\n```"),
        doc(2, "I think the answer is n squared."),
        doc(3, "```python\nprint(1)\n```", domain="math"),
        doc(4, "```python\nprint(1)\n```", tests=""),
    ]
    out = list(CodeVerifyStep(config=CodeVerifyConfig()).run(docs))
    md = [d.metadata for d in out]
    assert [m.get("verdict") for m in md] == ["correct", "incorrect", "incorrect", None, None]
    assert md[0]["kept"] is True and md[0]["verify_method"] == "code_sandbox"
    assert md[0]["extracted_answer"].startswith("n = int(input())")
    assert md[1]["kept"] is False and md[1]["drop_reason"] == "incorrect"
    assert json.loads(md[1]["verify_detail"])["first_failing_test"] == 1
    assert json.loads(md[2]["verify_detail"])["reason"] == "no_code"


@pytest.mark.slow
def test_verify_code_file_keeps_order_and_adds_verdicts(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "code": "print(int(input()) ** 2)", "tests": json.loads(TESTS)},
        {"id": "b", "code": "print(1)", "tests": TESTS},
        {
            "id": "c",
            "code": "def f(x):\n    return x * 2\n",
            "tests": {"fn_name": "f", "inputs": [[2]], "outputs": [4]},
        },
        {"id": "d", "code": "x = ", "tests": TESTS},
        {"id": "e", "code": "print(1)", "tests": "garbage"},
        {"id": "f", "code": "print(int(input())*2.0000001)", "tests": TESTS, "compare": "float:1e-3"},
    ]
    src, dst = tmp_path / "in.jsonl", tmp_path / "out" / "verdicts.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = verify_code_file(input=src, output=dst, workers=2)
    out = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [o["id"] for o in out] == ["a", "b", "c", "d", "e", "f"]
    assert [o["verdict"] for o in out] == ["pass", "fail", "pass", "fail", "error", "fail"]
    assert out[0]["tests_passed"] == out[0]["tests_total"] == 2
    assert out[3]["detail"]["reason"] == "compile_error"
    assert out[4]["detail"]["reason"] == "bad_tests"
    assert out[1]["code"] == "print(1)"  # input fields kept as they were
    assert summary["pass"] == 2 and summary["fail"] == 3 and summary["error"] == 1
    assert summary["method"] == "code_sandbox"


@pytest.mark.slow
def test_cpp_solutions_compile_and_run_in_the_sandbox() -> None:
    ok = '#include <cstdio>\nint main(){long long n; scanf("%lld",&n); printf("%lld\\n", n*n);}\n'
    wrong = ok.replace("n*n", "n+n")
    bomb = "#include <vector>\nint main(){std::vector<char*> v; for(;;) v.push_back(new char[1<<24]());}\n"
    broken = "int main( {"
    items = [CodeItem(code=c, tests=TESTS, language="cpp") for c in (ok, wrong, bomb, broken)]
    v = CodeVerifier(CodeVerifyConfig(memory_mb=256, time_limit_s=2.0))
    got = v.verify_many(items)
    assert [x.verdict for x in got] == ["pass", "fail", "fail", "fail"]
    assert got[2].detail["reason"] in ("killed_by_signal", "runtime_error")
    assert got[3].detail["reason"] == "compile_error"


def test_bwrap_unavailable_stops_with_a_clear_message(tmp_path: Path) -> None:
    runner = BubblewrapRunner(options=SandboxOptions(python=str(tmp_path / "no-python")))
    with pytest.raises(SandboxUnavailable, match="sandbox: process"):
        runner.check()
    runner.bwrap = None
    with pytest.raises(SandboxUnavailable, match="bwrap is not installed"):
        runner.check()


def test_a_broken_sandbox_is_error_not_fail_and_is_retried(tmp_path: Path) -> None:
    # an interpreter that dies at once stands in for a sandbox that breaks
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    cfg = CodeVerifyConfig(sandbox="process", max_retries=2, sandbox_options=SandboxOptions(python=str(fake)))
    v = CodeVerifier(cfg)
    verdict = v.verify(CodeItem(code="print(4)", tests=TESTS))
    assert verdict.verdict == "error"
    assert verdict.detail["reason"] == "sandbox_error" and verdict.detail["attempts"] == 3
    assert verdict.to_verify_result().verdict == "error"
