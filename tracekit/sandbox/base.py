"""Base of the sandbox runners: warm sandboxes per worker, talked to solution by solution, test by test."""

from __future__ import annotations

import os
import pwd
import threading
import weakref
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from tracekit.sandbox.config import SandboxOptions
from tracekit.sandbox.errors import SandboxBroken, SandboxUnavailable
from tracekit.sandbox.limits import SandboxLimits
from tracekit.sandbox.pool import SandboxPool
from tracekit.sandbox.warm import WarmSandbox

__all__ = ["SandboxBroken", "SandboxRunner", "SandboxSession", "SandboxUnavailable"]

HARNESS_PATH = Path(__file__).with_name("harness.py")
# Slack on top of a test's own wall limit before the host decides the harness itself hangs.
HOST_SLACK_S = 15.0
MAX_REPLY_BYTES_EXTRA = 1 << 20

Mode = Literal["stdio", "call", "assert"]
Language = Literal["python", "cpp"]


@cache
def harness_source() -> str:
    return HARNESS_PATH.read_text(encoding="utf-8")


@cache
def default_python() -> str:
    """Interpreter for the sandbox: a system one (readable by any user), else tracekit's own base."""
    import sys

    for cand in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(cand, os.X_OK):
            return cand
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def unprivileged_ids(user: str) -> tuple[int, int] | None:
    """(uid, gid) to drop to when running as root; None when already unprivileged."""
    if os.geteuid() != 0:
        return None
    pw = pwd.getpwnam(user)
    return pw.pw_uid, pw.pw_gid


class SandboxSession:
    """One solution in a warm sandbox. Use as a context manager; `run_test` per test.

    The sandbox's harness handles the solution in a fresh fork with emptied writable dirs, so the
    session shares no state with earlier or later solutions. On close the sandbox goes back to its
    pool, unless anything went wrong (a `SandboxBroken`, or a reply still in flight): then it is
    killed and the pool starts another.

    Example:
        >>> with runner.open_session(code="print(1)", language="python", mode="stdio",
        ...                          limits=SandboxLimits()) as s:  # doctest: +SKIP
        ...     s.compile_error, s.run_test({"i": 0, "stdin": ""})["outcome"]
        (None, 'ok')
    """

    def __init__(
        self,
        *,
        sandbox: WarmSandbox,
        setup: dict[str, Any],
        limits: SandboxLimits,
        release: Callable[[WarmSandbox, bool], None],
    ) -> None:
        self.sandbox = sandbox
        self.limits = limits
        self._release: Callable[[WarmSandbox, bool], None] | None = release
        self._clean = False  # True only while no request is unanswered
        self.compile_error: str | None = None
        self._max_reply = limits.max_output_bytes * 6 + MAX_REPLY_BYTES_EXTRA
        sandbox.solutions += 1
        try:
            sandbox.send(setup)
            ready = sandbox.recv(
                timeout=limits.compile_time_limit_s + HOST_SLACK_S, max_bytes=self._max_reply
            )
        except BaseException:
            self.close()
            raise
        if "ready" not in ready:
            self.close()
            raise SandboxBroken(f"harness sent no ready reply: {str(ready)[:200]}")
        self._clean = True
        if not ready["ready"]:
            self.compile_error = str(ready.get("compile_error", "compile failed"))

    def run_test(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one test ({"i", "stdin"|"args"|"assert"}); return the harness's raw outcome."""
        if not self._clean or self._release is None:
            raise SandboxBroken("session is closed or its sandbox broke")
        self._clean = False
        self.sandbox.send(request)
        reply = self.sandbox.recv(timeout=self.limits.wall_limit_s + HOST_SLACK_S, max_bytes=self._max_reply)
        if reply.get("i") != request.get("i") or "outcome" not in reply:
            raise SandboxBroken(f"harness answered out of turn: {str(reply)[:200]}")
        self._clean = True
        return reply

    def stderr_tail(self, n: int = 600) -> str:
        return self.sandbox.stderr_tail(n)

    def close(self) -> None:
        if self._release is None:
            return
        release, self._release = self._release, None
        healthy = self._clean and self.sandbox.alive()
        if healthy:
            try:
                self.sandbox.send({"done": True})
            except SandboxBroken:
                healthy = False
        release(self.sandbox, healthy)

    def __enter__(self) -> SandboxSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SandboxRunner:
    """Base class: subclasses say how to start the harness (`command`, `popen_kwargs`).

    `name` is what the ledger records as the verify method (`code_sandbox`, `code_process`). A runner
    keeps warm sandboxes (one per concurrent session) until `close()` or until it is garbage
    collected; they also die with the process that started them.
    """

    name = "sandbox"
    isolated = True

    def __init__(self, *, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self.python = self.options.python or default_python()
        self._pool: SandboxPool | None = None
        self._pool_lock = threading.Lock()

    def check(self) -> None:
        """Raise `SandboxUnavailable` with a clear message when this runner cannot work here."""

    def command(self, *, limits: SandboxLimits) -> tuple[list[str], Callable[[], None] | None]:
        """argv starting the harness, and what to clean up after the sandbox stops (or None)."""
        raise NotImplementedError

    def popen_kwargs(self) -> dict[str, Any]:
        ids = unprivileged_ids(self.options.run_as_user)
        if ids is None:
            return {}
        return {"user": ids[0], "group": ids[1], "extra_groups": []}

    def start_sandbox(self) -> WarmSandbox:
        """Start one harness server in this runner's isolation."""
        argv, cleanup = self.command(limits=SandboxLimits())
        return WarmSandbox(argv=argv, popen_kwargs=self.popen_kwargs(), cleanup=cleanup)

    @property
    def pool(self) -> SandboxPool:
        with self._pool_lock:
            if self._pool is None:
                self._pool = SandboxPool(start=self.start_sandbox, max_solutions=self.options.warm_solutions)
                weakref.finalize(self, self._pool.close)
            return self._pool

    def close(self) -> None:
        """Stop the idle warm sandboxes (a later session starts new ones)."""
        if self._pool is not None:
            self._pool.close()

    def open_session(
        self,
        *,
        code: str,
        language: Language,
        mode: Mode,
        limits: SandboxLimits,
        fn_name: str | None = None,
        entry_point: str | None = None,
    ) -> SandboxSession:
        setup = {
            "language": language,
            "code": code,
            "mode": mode,
            "fn_name": fn_name,
            "entry_point": entry_point,
            "limits": limits.as_dict(),
            "isolate": self.isolated,
        }
        pool = self.pool
        sandbox = pool.acquire()
        return SandboxSession(
            sandbox=sandbox,
            setup=setup,
            limits=limits,
            release=lambda sb, healthy: pool.release(sb, healthy=healthy),
        )
