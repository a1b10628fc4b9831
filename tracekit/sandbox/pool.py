"""Warm sandboxes kept per runner: one per concurrent worker, reused solution after solution."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tracekit.sandbox.warm import WarmSandbox


class SandboxPool:
    """Hands out idle warm sandboxes (starting one when none is idle) and takes them back.

    A sandbox comes back only when its last solution ended cleanly; a broken one is killed, and the
    next `acquire` starts a fresh one. Sandboxes are started from one long-lived thread because
    bubblewrap's --die-with-parent (PR_SET_PDEATHSIG) fires when the *thread* that started it exits:
    a pool thread of `verify_many` would otherwise take its sandbox with it. After a fork (e.g. a
    multiprocessing worker) the child ignores the parent's sandboxes and starts its own.

    Example:
        >>> pool = SandboxPool(start=lambda: WarmSandbox(argv=argv, popen_kwargs={}))  # doctest: +SKIP
        >>> sb = pool.acquire(); ...; pool.release(sb, healthy=True)  # doctest: +SKIP
    """

    def __init__(self, *, start: Callable[[], WarmSandbox], max_solutions: int = 1000) -> None:
        self._start = start
        self.max_solutions = max_solutions
        self._lock = threading.Lock()
        self._idle: list[WarmSandbox] = []
        self._busy: set[WarmSandbox] = set()
        self._pid = os.getpid()
        self._starter: ThreadPoolExecutor | None = None
        self.started = 0  # sandboxes started over the pool's life (tests, benchmarks)

    def _check_fork(self) -> None:
        if os.getpid() != self._pid:  # inherited from a parent process: not ours to use or kill
            self._idle, self._busy, self._starter = [], set(), None
            self._pid = os.getpid()

    def acquire(self) -> WarmSandbox:
        """An idle live sandbox, else a newly started one (raises `SandboxBroken` if it cannot start)."""
        with self._lock:
            self._check_fork()
            while self._idle:
                sb = self._idle.pop()
                if sb.alive():
                    self._busy.add(sb)
                    return sb
                sb.kill()
            if self._starter is None:
                self._starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracekit-sandbox-start")
            starter = self._starter
        sb = starter.submit(self._start).result()
        with self._lock:
            self.started += 1
            self._busy.add(sb)
        return sb

    def release(self, sb: WarmSandbox, *, healthy: bool) -> None:
        """Take a sandbox back: idle if healthy (and not worn out), else killed."""
        with self._lock:
            self._busy.discard(sb)
            keep = healthy and sb.alive() and sb.solutions < self.max_solutions and os.getpid() == self._pid
            if keep:
                self._idle.append(sb)
                return
        sb.kill()

    def busy(self) -> list[WarmSandbox]:
        """Sandboxes running a solution now."""
        with self._lock:
            return list(self._busy)

    def close(self) -> None:
        """Stop the idle sandboxes; busy ones stop when released. The pool stays usable."""
        with self._lock:
            if os.getpid() != self._pid:
                return
            idle, self._idle = self._idle, []
            starter, self._starter = self._starter, None
        for sb in idle:
            sb.kill()  # idle: nothing runs in it, and the whole sandbox dies at once
        if starter is not None:
            starter.shutdown(wait=False)
