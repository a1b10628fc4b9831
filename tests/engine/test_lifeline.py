"""Every process of a local build holds the workers' lock and dies with the `tracekit build` command.

A resumed build waits for that lock before it starts, so nothing of a killed build writes beside it.
The stage that broke this was finalize: its step reads its own shards and never iterates the stream
the lifeline yields, so a lifeline that tied the task lazily never ran there.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO
from tracekit.engine.config import LocalExecutorConfig
from tracekit.engine.executors import LocalRunner
from tracekit.engine.layout import BuildLayout
from tracekit.engine.lifeline import is_locked

# A task as datatrove assembles it (each step called on the one before), whose second step ignores
# the stream as finalize does. It reports whether the lock was held while it ran, then waits.
TASK = textwrap.dedent(
    """
    import fcntl, sys, time
    from tracekit.engine.lifeline import Lifeline

    lock = sys.argv[1]

    def reads_its_own_input(data, rank=0, world_size=1):
        with open(lock, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                print("free", flush=True)
            except BlockingIOError:
                print("held", flush=True)
        time.sleep(60)
        yield from ()

    pipeline = [Lifeline(lock_path=lock), reads_its_own_input]  # kept, as the executor keeps its steps
    stream = None
    for step in pipeline:
        stream = step(stream, 0, 1)
    for _ in stream:
        pass
    """
)


def test_a_task_whose_step_ignores_the_stream_holds_the_lock_and_dies_with_the_build(tmp_path: Path) -> None:
    lock = tmp_path / "workers.lock"
    build = subprocess.Popen(["sleep", "60"])  # stands for the `tracekit build` command
    task = subprocess.Popen(
        [sys.executable, "-c", TASK, str(lock)],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "TRACEKIT_MAIN_PID": str(build.pid), "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert task.stdout is not None
        assert task.stdout.readline().strip() == "held"
        assert is_locked(lock)
        build.kill()
        build.wait()
        assert task.wait(timeout=30) == 137  # the lifeline ended it, long before its step would have
        assert not is_locked(lock)
    finally:
        for p in (build, task):
            p.kill()
            p.wait()


def test_the_local_runner_holds_the_lock_for_its_whole_life(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRACEKIT_MAIN_PID", raising=False)  # the runner sets it; put back afterwards
    layout = BuildLayout(tmp_path / "out")
    runner = LocalRunner(LocalExecutorConfig(), layout)
    with runner:
        assert is_locked(layout.workers_lock)
    assert not is_locked(layout.workers_lock)


def test_is_locked_tells_a_shared_holder_from_an_exclusive_one(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    assert not is_locked(lock) and not is_locked(lock, shared=True)  # no file yet
    for mode, any_lock, exclusive in ((fcntl.LOCK_SH, True, False), (fcntl.LOCK_EX, True, True)):
        with open(lock, "a") as f:
            fcntl.flock(f, mode)
            assert is_locked(lock) is any_lock
            assert is_locked(lock, shared=True) is exclusive  # what `tracekit status` asks of the build lock
        assert not is_locked(lock) and not is_locked(lock, shared=True)
