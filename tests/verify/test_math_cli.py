"""`tracekit verify math` file mode: input order kept, all rows annotated, same verdicts as the verifier."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tracekit.verify.math.cli import verify_math_file

ROWS = [
    {"id": 0, "gold": "7425000", "prediction": "<think>maybe \\boxed{1}</think>\\boxed{7,425,000}"},
    {"id": 1, "gold": "\\frac{1}{2}", "prediction": "\\boxed{0.5}"},
    {"id": 2, "gold": "3", "prediction": "\\boxed{4}"},
    {"id": 3, "gold": "x^2+2x+1", "prediction": "\\boxed{(x+1)^2}"},
    {"id": 4, "gold": "", "prediction": "\\boxed{4}"},
    {"id": 5, "gold": "2", "prediction": "I really have no idea how to solve this problem."},
]


def _write(path: Path, rows: list[dict], n: int = 1) -> None:
    path.write_text("".join(json.dumps(dict(r, id=r["id"] + 100 * k)) + "\n" for k in range(n) for r in rows))


def test_file_mode_annotates_in_order(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(src, ROWS)
    counts = verify_math_file(input=src, output=dst, workers=1)
    out = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [r["id"] for r in out] == [r["id"] for r in ROWS]
    assert [r["verdict"] for r in out] == ["correct", "correct", "incorrect", "correct", "error", "incorrect"]
    assert out[4]["detail"] == "gold_unparseable" and out[5]["detail"] == "no_answer"
    assert all(r["method"] == "math_rule" for r in out)
    assert counts == {"rows": 6, "correct": 3, "incorrect": 2, "error": 1}


@pytest.mark.slow
def test_file_mode_with_a_process_pool_keeps_order(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(src, ROWS, n=40)  # 240 rows: several chunks over 2 processes
    verify_math_file(input=src, output=dst, workers=2)
    out = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [r["id"] for r in out] == [r["id"] + 100 * k for k in range(40) for r in ROWS]
    assert [r["verdict"] for r in out[:6]] * 40 == [r["verdict"] for r in out]


@pytest.mark.slow
def test_module_entry_point(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps({"answer": "1/3", "model": "\\boxed{\\frac{2}{6}}"}) + "\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tracekit.verify.math.cli",
            "--input",
            str(src),
            "--output",
            str(dst),
            "--gold-field",
            "answer",
            "--pred-field",
            "model",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(dst.read_text())["verdict"] == "correct"
