"""On a terminal, `tracekit build` draws a live table per stage: rows, rows/s, ETA."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, read_ledger, replay_recipe


@pytest.mark.slow
def test_build_on_a_terminal_shows_rows_rate_and_eta(tmp_path: Path) -> None:
    rows = [
        {"q": f"Problem {i}?", "a": "1", "g": "<think>\n" + "step " * 400 + "\n</think>\n\n\\boxed{1}"}
        for i in range(30000)
    ]
    recipe = replay_recipe(tmp_path, rows, executor={"kind": "local", "tasks": 2, "workers": 2})
    master, slave = pty.openpty()  # the build's stderr is a terminal, as in a user's shell
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracekit.cli", "build", str(recipe)],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"},
    )
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the build closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    assert proc.wait(timeout=600) == 0, out.decode(errors="replace")[-2000:]
    os.close(master)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode(errors="replace"))  # drop cursor moves
    assert re.search(r"stage\s+rows\s+rows/s\s+ETA", text), text[-2000:]
    sample_lines = re.findall(r"sample\s+([\d,]+)\s+([\d,]+)\s+(\S+)", text)
    assert sample_lines, text[-2000:]
    counts = [int(r.replace(",", "")) for r, _, _ in sample_lines]
    assert counts == sorted(counts) and max(counts) > 0  # rows only go up while it runs
    assert any(re.fullmatch(r"[\d,]+s", eta) for _, _, eta in sample_lines), sample_lines  # an ETA was shown
    assert len(read_ledger(tmp_path / "out")) == 30000
