"""`tracekit verify math|code` on a JSONL file with a bad line: exit 2, the file and line named, no
traceback, no output written. Bad lines are generated (kind of damage x position x blank lines)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tracekit.cli import main

GOOD = {
    "math": {"gold": "\\frac{1}{2}", "prediction": "\\boxed{0.5}"},
    "code": {"code": "print(input())", "tests": {"inputs": ["a\n"], "outputs": ["a\n"]}},
}

# each: a damaged line (as written) and what the message must say about it
DAMAGE = [
    (lambda good: json.dumps(good)[:-3], "not JSON"),  # cut short
    (lambda good: json.dumps(good) + " }", "not JSON"),  # trailing garbage
    (lambda good: "{'gold': 1}", "not JSON"),  # Python, not JSON
    (lambda good: json.dumps([good]), "must be a JSON object, got list"),
    (lambda good: '"just a string"', "must be a JSON object, got str"),
    (lambda good: "42", "must be a JSON object, got int"),
    (lambda good: "null", "must be a JSON object, got NoneType"),
]


def _bad_file(path: Path, kind: str, rng: random.Random, damage: int) -> tuple[int, str]:
    """Good rows with blank lines in between and one damaged row; (its line number, expected text)."""
    n_rows = rng.randint(1, 6)
    bad_at = rng.randrange(n_rows)
    lines: list[str] = []
    bad_line = 0
    make, expect = DAMAGE[damage]
    for k in range(n_rows):
        lines.extend([""] * rng.randint(0, 2))
        if k == bad_at:
            lines.append(make(GOOD[kind]))
            bad_line = len(lines)
        else:
            lines.append(json.dumps(GOOD[kind]))
    path.write_text("\n".join(lines) + "\n")
    return bad_line, expect


@pytest.mark.parametrize("kind", ["math", "code"])
def test_every_kind_of_bad_line_is_named_with_its_line(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(f"bad-lines-{kind}")
    for trial in range(3 * len(DAMAGE)):
        damage = trial % len(DAMAGE)
        src, dst = tmp_path / f"in{trial}.jsonl", tmp_path / f"out{trial}.jsonl"
        line, expect = _bad_file(src, kind, rng, damage)
        rc = main(["verify", kind, "--input", str(src), "--output", str(dst), "--workers", "1"])
        err = capsys.readouterr().err
        assert rc == 2, (trial, err)
        assert f"{src}:{line}: " in err and expect in err, (line, err)
        assert not dst.exists()


def test_code_rows_without_their_fields_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(GOOD["code"]) + "\n\n" + json.dumps({"code": "print(1)"}) + "\n")
    assert main(["verify", "code", "--input", str(src), "--output", str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err
    assert f"{src}:3: " in err and "missing `tests`" in err


@pytest.mark.parametrize("kind", ["math", "code"])
def test_missing_and_undecodable_files(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.jsonl"
    assert main(["verify", kind, "--input", str(missing), "--output", str(tmp_path / "o.jsonl")]) == 2
    assert f"{missing}: no such file" in capsys.readouterr().err
    latin = tmp_path / "latin1.jsonl"
    latin.write_bytes(json.dumps(GOOD[kind]).encode() + b"\n" + '{"gold": "café"}'.encode("latin-1") + b"\n")
    assert main(["verify", kind, "--input", str(latin), "--output", str(tmp_path / "o.jsonl")]) == 2
    assert f"{latin}: not UTF-8" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv",
    [
        [sys.executable, "-m", "tracekit.cli", "verify", "math"],
        [sys.executable, "-m", "tracekit.cli", "verify", "code"],
        [sys.executable, "-m", "tracekit.verify.math.cli"],
    ],
    ids=["tracekit-verify-math", "tracekit-verify-code", "module-entry-point"],
)
def test_the_commands_exit_2_without_a_traceback(argv: list[str], tmp_path: Path) -> None:
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    kind = "code" if argv[-1] == "code" else "math"
    src.write_text(json.dumps(GOOD[kind]) + "\n" + json.dumps(GOOD[kind])[:-1] + "\n")
    proc = subprocess.run(
        [*argv, "--input", str(src), "--output", str(dst)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"{src}:2: not JSON" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not dst.exists()
