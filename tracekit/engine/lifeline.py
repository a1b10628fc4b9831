"""Keep a local build's worker processes tied to the command that started them.

If `tracekit build` is killed (even with SIGKILL), its pool workers must not go on writing shards
while a resumed build writes the same ones. Each task of a local build starts a `Lifeline`: a daemon
thread that ends the process as soon as the build's main process is gone. Tasks also hold a shared
lock on the output folder's workers lock (`BuildLayout.workers_lock`), as does the build process
itself for its whole life; a new build takes it exclusively (waiting for stragglers) before it starts.
Fault points (`TRACEKIT_FAULT=point:count`) let tests kill the main process at exact moments.
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
from pathlib import Path
from typing import IO

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

MAIN_PID_ENV = "TRACEKIT_MAIN_PID"
FAULT_ENV = "TRACEKIT_FAULT"


def _watch(pid: int) -> None:
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(137)
        except PermissionError:
            pass
        time.sleep(0.2)


def hold_shared(lock_path: str | Path) -> IO[str]:
    """Open `lock_path` and take a shared lock on it; the lock lasts as long as the returned file."""
    f = open(lock_path, "a")  # noqa: SIM115 - the caller keeps it open for as long as it holds the lock
    fcntl.flock(f, fcntl.LOCK_SH)
    return f


class Lifeline(PipelineStep):
    """First step of every local stage: die with the main process; hold the workers' lock.

    It ties the task when the pipeline is assembled, not when its (empty) output is read: a stage
    whose next step reads its own input and ignores the stream (finalize) never iterates it.
    """

    type = "🛟 - LIFELINE"
    name = "lifeline"

    def __init__(self, *, lock_path: str) -> None:
        super().__init__()
        self.lock_path = lock_path
        self._lock: IO[str] | None = None

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        pid = os.environ.get(MAIN_PID_ENV)
        if pid and int(pid) != os.getpid():
            threading.Thread(target=_watch, args=(int(pid),), daemon=True).start()
        self._lock = hold_shared(self.lock_path)
        return data if data is not None else iter(())


def is_locked(lock_path: Path, *, shared: bool = False) -> bool:
    """True when an open file holds a lock on `lock_path` that the one asked for would conflict with:
    any lock (the default: an exclusive one is asked), or an exclusive one (`shared=True`)."""
    if not lock_path.exists():
        return False
    with open(lock_path) as f:
        try:
            fcntl.flock(f, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


def wait_for_stragglers(lock_path: Path, timeout_s: float = 30.0) -> None:
    """Block until no process of an earlier (killed) build still holds the workers' lock."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    while is_locked(lock_path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes of an earlier build still hold {lock_path} after {timeout_s:.0f}s")
        time.sleep(0.1)


class OutputLock:
    """Exclusive lock on the output folder for the duration of one build command."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: IO[str] | None = None

    def __enter__(self) -> OutputLock:
        self._f = open(self.path, "a")  # noqa: SIM115
        try:
            fcntl.flock(self._f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another tracekit build is running on {self.path.parent}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._f is not None:
            self._f.close()


def fault_spec() -> tuple[str, int] | None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return None
    point, _, n = spec.partition(":")
    return point, int(n or 0)


def fault(point: str, count: int, spec: tuple[str, int] | None) -> None:
    """Test hook: SIGKILL the build's main process when `point` reaches `count`."""
    if spec is not None and spec == (point, count):
        pid = int(os.environ.get(MAIN_PID_ENV, os.getpid()))
        os.kill(pid, signal.SIGKILL)
        if pid != os.getpid():
            time.sleep(5)  # the lifeline ends this worker
