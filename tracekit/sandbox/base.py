"""Base of the sandbox runners: warm sandboxes per worker, talked to solution by solution, test by test."""

from __future__ import annotations

import os
import pwd
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from tracekit.sandbox.config import SandboxOptions
from tracekit.sandbox.errors import SandboxBroken, SandboxUnavailable
from tracekit.sandbox.lane import SandboxLane
from tracekit.sandbox.limits import SandboxLimits
from tracekit.sandbox.pool import SandboxPool
from tracekit.sandbox.warm import WarmSandbox

__all__ = ["SandboxBroken", "SandboxRunner", "SandboxSession", "SandboxUnavailable"]

HARNESS_PATH = Path(__file__).with_name("harness.py")
# Slack on top of a test's own wall limit before the host decides the harness itself hangs.
HOST_SLACK_S = 15.0
MAX_REPLY_BYTES_EXTRA = 1 << 20
# How long closing a session waits for tests it queued but no longer needs, before it kills the sandbox.
DRAIN_S = 1.0

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
    """One solution in a warm sandbox. Use as a context manager; `run_test` per test, or open it with
    `tests` and read `run_tests()`.

    The sandbox's harness handles the solution in a fresh fork, in fresh user/PID/IPC namespaces,
    with emptied writable dirs, so the session shares no state with earlier or later solutions. The
    setup and the tests are sent without waiting (the ready reply is read when `compile_error` or the
    first result is asked for). On close the sandbox goes back to its pool (or lane), unless anything
    went wrong (a `SandboxBroken`, or a queued test that does not finish within `DRAIN_S`): then it is
    killed and another is started when needed.

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
        tests: Sequence[dict[str, Any]] | None = None,
        lookahead: int = 1,
    ) -> None:
        self.sandbox = sandbox
        self.limits = limits
        self._release: Callable[[WarmSandbox, bool], None] | None = release
        self._done_sent = False
        self._inflight: deque[Any] = deque()  # test indices sent and not answered yet
        self._done_sent = False
        self._ready_pending = True
        self._compile_error: str | None = None
        self._max_reply = limits.max_output_bytes * 6 + MAX_REPLY_BYTES_EXTRA
        sandbox.solutions += 1
        self._tests: list[dict[str, Any]] | None = list(tests) if tests is not None else None
        self._sent = 0
        self._lookahead = max(0, lookahead)
        try:
            sandbox.send(setup)
            if self._tests is not None:  # queued behind the setup: no round trip before the first test
                self._fill()
        except BaseException:
            self.close()
            raise

    @property
    def compile_error(self) -> str | None:
        """The compiler's message when the solution does not compile (waits for the harness)."""
        self._await_ready()
        return self._compile_error

    @property
    def started(self) -> bool:
        """The harness has taken this solution up (its ready reply was read)."""
        return not self._ready_pending

    @property
    def sent_all(self) -> bool:
        """Every request of this session, "done" included, is in the pipe: another session may be
        queued behind it on the same sandbox (see `SandboxLane`)."""
        return self._done_sent

    def _await_ready(self) -> None:
        if not self._ready_pending:
            return
        if self._release is None:
            raise SandboxBroken("session is closed")
        ready = self.sandbox.recv(
            timeout=self.limits.compile_time_limit_s + HOST_SLACK_S, max_bytes=self._max_reply
        )
        if "ready" not in ready:
            self.sandbox.broken = True
            raise SandboxBroken(f"harness sent no ready reply: {str(ready)[:200]}")
        self._ready_pending = False
        if not ready["ready"]:
            self._compile_error = str(ready.get("compile_error", "compile failed"))

    def run_test(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one test ({"i", "stdin"|"args"|"assert"}); return the harness's raw outcome."""
        if self._release is None or self._done_sent or self._tests is not None or self._inflight:
            raise SandboxBroken("session is closed, finished, running queued tests, or its sandbox broke")
        self._await_ready()
        self._send(request)
        return self._next_reply(timeout=self.limits.wall_limit_s + HOST_SLACK_S)

    def run_tests(self, requests: Sequence[dict[str, Any]] | None = None) -> Iterator[dict[str, Any]]:
        """Run tests in order, yielding each raw outcome: `requests`, or the `tests` the session was
        opened with (those are already queued behind the setup). Up to `lookahead` further requests
        wait in the harness while the caller judges a reply, and "done" follows the last one, so the
        harness never waits for the host between tests. A caller that stops early (first failure)
        leaves at most `lookahead` tests running: `close()` drains or discards them.
        """
        if self._release is None or self._done_sent and self._tests is None:
            raise SandboxBroken("session is closed, finished, or its sandbox broke")
        if requests is not None:
            if self._tests is not None:
                raise ValueError("this session was opened with its tests; call run_tests() without them")
            self._tests, self._sent = list(requests), 0
        if self._tests is None:
            raise ValueError("no tests: pass requests, or open the session with tests")
        self._await_ready()
        self._fill()
        while self._inflight:
            reply = self._next_reply(timeout=self.limits.wall_limit_s + HOST_SLACK_S)
            self._fill()
            yield reply

    def _fill(self) -> None:
        """Send queued tests until `lookahead` + 1 are in flight; "done" after the last one."""
        assert self._tests is not None
        while self._sent < len(self._tests) and len(self._inflight) <= self._lookahead:
            self._send(self._tests[self._sent])
            self._sent += 1
        if self._sent == len(self._tests) and not self._done_sent:
            self.sandbox.send({"done": True})
            self._done_sent = True

    def _send(self, request: dict[str, Any]) -> None:
        self._inflight.append(request.get("i"))
        self.sandbox.send(request)

    def _next_reply(self, *, timeout: float) -> dict[str, Any]:
        reply = self.sandbox.recv(timeout=timeout, max_bytes=self._max_reply)
        if not self._inflight or reply.get("i") != self._inflight[0] or "outcome" not in reply:
            self.sandbox.broken = True
            raise SandboxBroken(f"harness answered out of turn: {str(reply)[:200]}")
        self._inflight.popleft()
        return reply

    def stderr_tail(self, n: int = 600) -> str:
        return self.sandbox.stderr_tail(n)

    def close(self) -> None:
        """Give the sandbox back: after draining tests still queued (briefly: a slow one means the
        sandbox is killed and replaced instead, which costs less than waiting for it)."""
        if self._release is None:
            return
        release, self._release = self._release, None
        healthy = self.sandbox.alive()
        try:
            if healthy and self._ready_pending:
                self._await_ready()
            while healthy and self._inflight:
                self._next_reply(timeout=DRAIN_S)
            if healthy and not self._done_sent:
                self.sandbox.send({"done": True})
                self._done_sent = True
        except SandboxBroken:
            healthy = False
        release(self.sandbox, healthy and not self._inflight)

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
    # the started process's child is the sandbox's pid 1 (bubblewrap's inner process), killed first
    own_pid1 = False

    def __init__(self, *, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self.python = self.options.python or default_python()
        self._pool: SandboxPool | None = None
        self._pool_lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """A copy (datatrove deep-copies and pickles every step to its tasks) starts with no warm
        sandboxes: they are processes of this one, and a lock cannot be copied."""
        state = self.__dict__.copy()
        state["_pool"] = None
        del state["_pool_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
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
        return WarmSandbox(argv=argv, popen_kwargs=self.popen_kwargs(), cleanup=cleanup, own_pid1=self.own_pid1)

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
        tests: Sequence[dict[str, Any]] | None = None,
        lookahead: int = 1,
        lane: SandboxLane | None = None,
    ) -> SandboxSession:
        """A session for one solution in a warm sandbox from the pool, or in `lane`'s sandbox. With
        `tests`, they are queued behind the setup at once (see `SandboxSession.run_tests`)."""
        setup = {
            "language": language,
            "code": code,
            "mode": mode,
            "fn_name": fn_name,
            "entry_point": entry_point,
            "limits": limits.as_dict(),
        }
        if lane is not None:
            sandbox, release = lane.sandbox_for_session()
        else:
            pool = self.pool
            sandbox = pool.acquire()

            def release(sb: WarmSandbox, healthy: bool) -> None:
                pool.release(sb, healthy=healthy)

        return SandboxSession(
            sandbox=sandbox, setup=setup, limits=limits, release=release, tests=tests, lookahead=lookahead
        )

    def lane(self) -> SandboxLane:
        """A warm sandbox held by one worker across solutions (see `SandboxLane`)."""
        return SandboxLane(pool=self.pool)
