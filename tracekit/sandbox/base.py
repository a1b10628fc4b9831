"""Base of the sandbox runners: start the harness in some isolation, talk to it test by test."""

from __future__ import annotations

import contextlib
import json
import marshal
import os
import pwd
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from tracekit.sandbox.config import SandboxOptions
from tracekit.sandbox.limits import SandboxLimits

HARNESS_PATH = Path(__file__).with_name("harness.py")
# Slack on top of a test's own wall limit before the host decides the harness itself hangs.
HOST_SLACK_S = 15.0
MAX_REPLY_BYTES_EXTRA = 1 << 20

Mode = Literal["stdio", "call", "assert"]
Language = Literal["python", "cpp"]


class SandboxUnavailable(RuntimeError):
    """The chosen sandbox cannot run on this machine (e.g. no user namespaces for bubblewrap)."""


class SandboxBroken(RuntimeError):
    """The sandbox or its harness failed (not the solution): the verdict is `error`, retried."""


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
    """One running harness for one solution. Use as a context manager; `run_test` per test.

    Example:
        >>> with runner.open_session(code="print(1)", language="python", mode="stdio",
        ...                          limits=SandboxLimits()) as s:  # doctest: +SKIP
        ...     s.compile_error, s.run_test({"i": 0, "stdin": ""})["outcome"]
        (None, 'ok')
    """

    def __init__(
        self,
        *,
        argv: list[str],
        popen_kwargs: dict[str, Any],
        setup: dict[str, Any],
        limits: SandboxLimits,
        cleanup: Callable[[], None] | None = None,
    ) -> None:
        self.limits = limits
        self._cleanup = cleanup
        self.compile_error: str | None = None
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self._buf = b""
        self._max_reply = limits.max_output_bytes * 6 + MAX_REPLY_BYTES_EXTRA
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                start_new_session=True,
                close_fds=True,
                **popen_kwargs,
            )
        except OSError as e:
            self._stderr.close()
            if cleanup is not None:
                cleanup()
            raise SandboxBroken(f"cannot start sandbox: {e}") from e
        self._sel = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            self._send(setup)
            ready = self._recv(timeout=limits.compile_time_limit_s + HOST_SLACK_S)
        except SandboxBroken:
            self.close()
            raise
        if not ready.get("ready"):
            self.compile_error = str(ready.get("compile_error", "compile failed"))

    def _send(self, obj: dict[str, Any]) -> None:
        """Framed marshal (the harness avoids importing json: it costs more than the test)."""
        assert self.proc.stdin is not None
        blob = marshal.dumps(obj)
        try:
            self.proc.stdin.write(len(blob).to_bytes(4, "big") + blob)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise SandboxBroken(f"harness stopped reading: {e}; {self.stderr_tail()}") from e

    def _recv(self, *, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SandboxBroken(f"harness did not answer within {timeout:.0f}s; {self.stderr_tail()}")
            if not self._sel.select(timeout=left):
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                code = self.proc.poll()
                raise SandboxBroken(f"harness exited (status {code}); {self.stderr_tail()}")
            self._buf += chunk
            if len(self._buf) > self._max_reply:
                raise SandboxBroken("harness reply exceeds the output cap")
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            obj: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError as e:
            raise SandboxBroken(f"harness sent invalid JSON: {line[:200]!r}") from e
        return obj

    def run_test(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one test ({"i", "stdin"|"args"|"assert"}); return the harness's raw outcome."""
        self._send(request)
        reply = self._recv(timeout=self.limits.wall_limit_s + HOST_SLACK_S)
        if reply.get("outcome") == "harness_error":
            raise SandboxBroken(f"harness error: {str(reply.get('detail', ''))[-500:]}")
        return reply

    def stderr_tail(self, n: int = 600) -> str:
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - n))
            return "stderr: " + self._stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                if self.proc.stdin is not None:
                    done = marshal.dumps({"done": True})
                    self.proc.stdin.write(len(done).to_bytes(4, "big") + done)
                    self.proc.stdin.close()
            except OSError:
                pass
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        self._sel.close()
        self._stderr.close()
        if self._cleanup is not None:
            self._cleanup()
            self._cleanup = None

    def __enter__(self) -> SandboxSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SandboxRunner:
    """Base class: subclasses say how to start the harness (`command`, `popen_kwargs`).

    `name` is what the ledger records as the verify method (`code_sandbox`, `code_process`).
    """

    name = "sandbox"
    isolated = True

    def __init__(self, *, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self.python = self.options.python or default_python()

    def check(self) -> None:
        """Raise `SandboxUnavailable` with a clear message when this runner cannot work here."""

    def command(self, *, limits: SandboxLimits) -> tuple[list[str], Callable[[], None] | None]:
        """argv starting the harness, and what to clean up after the session (or None)."""
        raise NotImplementedError

    def popen_kwargs(self) -> dict[str, Any]:
        ids = unprivileged_ids(self.options.run_as_user)
        if ids is None:
            return {}
        return {"user": ids[0], "group": ids[1], "extra_groups": []}

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
        argv, cleanup = self.command(limits=limits)
        return SandboxSession(
            argv=argv, popen_kwargs=self.popen_kwargs(), setup=setup, limits=limits, cleanup=cleanup
        )
