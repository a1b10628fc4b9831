"""One long-lived sandbox process (bwrap + harness server) and the pipes to it."""

from __future__ import annotations

import contextlib
import json
import marshal
import os
import selectors
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tracekit.sandbox.errors import SandboxBroken

STDERR_KEEP_BYTES = 1 << 20


class WarmSandbox:
    """A started harness server: solutions are sent to it one after another, each handled by a fresh
    fork (see harness.py), so it never carries state from one solution to the next. Any failure to
    talk to it raises `SandboxBroken`; the owner then `kill`s it and starts another.

    Example:
        >>> sb = WarmSandbox(argv=["python3", "-c", HARNESS, "/tmp"], popen_kwargs={})  # doctest: +SKIP
        >>> sb.send({"language": "python", ...}); sb.recv(timeout=30)  # doctest: +SKIP
        {'ready': True}
    """

    def __init__(
        self,
        *,
        argv: list[str],
        popen_kwargs: dict[str, Any],
        cleanup: Callable[[], None] | None = None,
        own_pid1: bool = False,
    ) -> None:
        self._cleanup = cleanup
        self._own_pid1 = own_pid1
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in kill())
        self._buf = b""
        self.broken = False
        self._killed = False
        self.solutions = 0  # solutions started in this sandbox
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

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return not self.broken and self.proc.poll() is None

    def send(self, obj: dict[str, Any]) -> None:
        """Framed marshal (the harness avoids importing json for requests)."""
        assert self.proc.stdin is not None
        if self._killed:
            raise SandboxBroken("the sandbox was stopped (an earlier session on it broke)")
        blob = marshal.dumps(obj)
        try:
            self.proc.stdin.write(len(blob).to_bytes(4, "big") + blob)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as e:
            self.broken = True
            raise SandboxBroken(f"harness stopped reading: {e}; {self.stderr_tail()}") from e

    def recv(self, *, timeout: float, max_bytes: int) -> dict[str, Any]:
        """The next JSON line from the harness; `SandboxBroken` on EOF, timeout, garbage or a
        harness-error report."""
        if self._killed:
            raise SandboxBroken("the sandbox was stopped (an earlier session on it broke)")
        try:
            obj = self._recv(timeout=timeout, max_bytes=max_bytes)
        except SandboxBroken:
            self.broken = True
            raise
        if obj.get("outcome") == "harness_error":
            self.broken = True
            raise SandboxBroken(f"harness error: {str(obj.get('detail', ''))[-500:]}")
        return obj

    def _recv(self, *, timeout: float, max_bytes: int) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SandboxBroken(f"harness did not answer within {timeout:.0f}s; {self.stderr_tail()}")
            if not self._sel.select(timeout=left):
                continue
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError as e:
                raise SandboxBroken(f"cannot read from the harness: {e}") from e
            if not chunk:
                code = self.proc.poll()
                raise SandboxBroken(f"harness exited (status {code}); {self.stderr_tail()}")
            self._buf += chunk
            if len(self._buf) > max_bytes:
                raise SandboxBroken("harness reply exceeds the output cap")
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            obj: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError as e:
            raise SandboxBroken(f"harness sent invalid JSON: {line[:200]!r}") from e
        return obj

    def stderr_tail(self, n: int = 600) -> str:
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - n))
            text = self._stderr.read().decode("utf-8", "replace").strip()
            if size > STDERR_KEEP_BYTES:  # a long-lived sandbox: keep only the recent part
                self._stderr.truncate(0)
            return "stderr: " + text
        except (OSError, ValueError):
            return ""

    def kill(self) -> None:
        """Kill the whole sandbox (its own session), reap it and free its resources. Idempotent."""
        self.broken = True
        self._killed = True
        if self.proc.poll() is None and self._own_pid1:
            # bubblewrap's inner process (the sandbox's pid 1, in a session of its own) goes first, so
            # the outer one reaps it and exits. The other way round, the inner one outlives its parent
            # for a moment and is handed to the host's pid 1, which may never reap it: a zombie `bwrap`.
            for pid in _children(self.proc.pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=2)
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # stuck in the kernel (e.g. a tmpfs being torn down): reap it later
            threading.Thread(target=self.proc.wait, name="tracekit-sandbox-reap", daemon=True).start()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                with contextlib.suppress(OSError, ValueError):
                    f.close()
        with contextlib.suppress(OSError, ValueError, KeyError):
            self._sel.close()
        with contextlib.suppress(OSError, ValueError):
            self._stderr.close()
        if self._cleanup is not None:
            cleanup, self._cleanup = self._cleanup, None
            cleanup()


def _children(pid: int) -> list[int]:
    """The direct children of `pid` (Linux's /proc/PID/task/PID/children; empty if unavailable)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []
