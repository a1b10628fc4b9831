"""A persistent sympy worker process that is killed and restarted when a comparison runs too long.

SIGALRM only works in the main thread and cannot interrupt long C-level big-integer arithmetic
(`10^{10^{10^{10}}}`); a separate process can always be killed. The client talks to the worker over
pipes with length-prefixed pickles, so it works from any thread of any process.

Example:
    >>> w = SympyWorker()
    >>> w.compare(gold=clean_answer(r"\\tan^2 y + 1"), pred=clean_answer(r"\\sec^2 y"),
    ...           settings=EquivalenceSettings(), timeout_s=30.0)
    ('ok', Outcome(equal=True, detail='sympy'))
    >>> w.close()
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from typing import Any

from tracekit.verify.math.equivalence import EquivalenceSettings, Outcome, Unparseable, compare
from tracekit.verify.math.normalize import CleanAnswer, clean_answer

__all__ = ["Outcome", "SympyWorker", "clean_answer"]

_HEADER = struct.Struct("!I")
_STARTUP_TIMEOUT_S = 120.0


def _write_msg(fd: int, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    buf = _HEADER.pack(len(data)) + data
    while buf:
        n = os.write(fd, buf)
        buf = buf[n:]


def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n > 0:
        b = os.read(fd, n)
        if not b:
            raise EOFError("worker pipe closed")
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def _read_msg(fd: int) -> Any:
    (n,) = _HEADER.unpack(_read_exact(fd, _HEADER.size))
    return pickle.loads(_read_exact(fd, n))


class SympyWorker:
    """Client of one worker process; thread-safe (calls are serialised by a lock)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._owner_pid = os.getpid()  # a forked child must not kill its parent's worker
        self._ready = False
        self.restarts = 0

    def _spawn(self) -> None:
        """Start a worker without waiting for it (a replacement starts while the caller moves on)."""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tracekit.verify.math.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        self._ready = False

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout.fileno()], [], [], _STARTUP_TIMEOUT_S)
        if not ready or _read_msg(proc.stdout.fileno()) != "ready":
            proc.kill()
            proc.wait()
            self._proc = None
            raise RuntimeError("math verify worker did not start")
        self._ready = True

    def _kill(self, *, respawn: bool = False) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
            self.restarts += 1
        if respawn:
            self._spawn()

    def warm_up(self) -> None:
        """Start the worker (or wait for a replacement that is starting) so the next call does not."""
        with self._lock:
            if self._proc is not None and os.getpid() != self._owner_pid:
                self._proc, self._owner_pid = None, os.getpid()
            if self._proc is None or self._proc.poll() is not None:
                self._spawn()
            if not self._ready:
                assert self._proc is not None
                self._wait_ready(self._proc)

    def compare(
        self, *, gold: CleanAnswer, pred: CleanAnswer, settings: EquivalenceSettings, timeout_s: float
    ) -> tuple[str, Any]:
        """('ok', Outcome) | ('unparseable', 'gold: ...'/'pred: ...') | ('timeout', None) | ('error', msg)."""
        with self._lock:
            if self._proc is not None and os.getpid() != self._owner_pid:
                self._proc, self._owner_pid = None, os.getpid()  # forked: start our own worker
            if self._proc is None or self._proc.poll() is not None:
                self._spawn()
            proc = self._proc
            assert proc is not None
            if not self._ready:
                self._wait_ready(proc)
            assert proc.stdin is not None and proc.stdout is not None
            try:
                _write_msg(proc.stdin.fileno(), (gold, pred, settings))
                deadline = time.monotonic() + timeout_s
                out_fd = proc.stdout.fileno()
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self._kill(respawn=True)  # the replacement warms up while the caller moves on
                        return ("timeout", None)
                    ready, _, _ = select.select([out_fd], [], [], left)
                    if ready:
                        return tuple(_read_msg(out_fd))  # type: ignore[return-value]
            except (EOFError, BrokenPipeError, OSError) as exc:
                self._kill()  # crashed (e.g. out of memory): start a fresh one next time
                return ("error", f"worker died: {type(exc).__name__}")

    def close(self) -> None:
        with self._lock:
            if self._proc is not None and os.getpid() == self._owner_pid:
                self._proc.kill()
                self._proc.wait()
                self._proc = None

    def __del__(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None and os.getpid() == getattr(self, "_owner_pid", None) and proc.poll() is None:
            proc.kill()


def _serve() -> None:
    # keep the protocol pipe private: anything printed by a library goes to stderr instead
    out_fd = os.dup(1)
    os.dup2(2, 1)
    in_fd = 0
    import sympy  # noqa: F401  (loaded before saying ready)

    from tracekit.verify.math.symbolic import SympyValues

    values = SympyValues()
    _write_msg(out_fd, "ready")
    while True:
        try:
            gold, pred, settings = _read_msg(in_fd)
        except EOFError:
            return
        try:
            reply: tuple[str, Any] = ("ok", compare(gold, pred, settings, values=values))
        except Unparseable as exc:
            reply = ("unparseable", str(exc))
        except RecursionError:
            reply = ("error", "recursion")
        except Exception as exc:
            reply = ("error", f"{type(exc).__name__}: {str(exc)[:200]}")
        _write_msg(out_fd, reply)


if __name__ == "__main__":
    _serve()
