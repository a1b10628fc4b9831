"""A build killed with SIGKILL leaves no helper behind (datatrove's Manager is forked by the runner)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, replay_recipe


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False


@pytest.mark.slow
def test_helpers_forked_by_the_runner_die_with_it(tmp_path: Path) -> None:
    rows = [
        {"q": f"Q{i}?", "a": "1", "g": "<think>\n" + "x " * 3000 + "\n</think>\n\n\\boxed{1}"}
        for i in range(20000)
    ]
    # one worker: the tasks run inside the runner itself
    recipe = replay_recipe(tmp_path, rows, executor={"kind": "local", "tasks": 2, "workers": 1})
    cli = subprocess.Popen(
        [sys.executable, "-m", "tracekit.cli", "build", str(recipe)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        runner, helpers = None, []
        while time.monotonic() < deadline and cli.poll() is None:
            kids = _children(cli.pid)
            if kids:
                runner = kids[0]
                helpers = _children(runner)
                if helpers:
                    break
            time.sleep(0.1)
        assert runner and helpers, "the build finished before its runner forked a helper"
        os.kill(runner, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(h) for h in helpers):
            time.sleep(0.1)
        assert not any(_alive(h) for h in helpers), helpers
    finally:
        os.killpg(cli.pid, signal.SIGKILL)
        cli.wait()
