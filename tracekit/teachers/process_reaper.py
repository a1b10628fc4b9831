"""ProcessReaper: a small watcher process that kills given processes when the process that started it dies."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def die_with_parent(sig: int) -> None:
    """Have the kernel send this process `sig` when its parent dies, even by SIGKILL
    (PR_SET_PDEATHSIG; Linux only, a no-op elsewhere)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)  # 1 = PR_SET_PDEATHSIG


REAPER_CODE = r"""
import os, select, signal, sys, time
from pathlib import Path

parent, pids = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]

def children():
    kids = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    return kids

while True:
    ready, _, _ = select.select([sys.stdin], [], [], 0.5)
    if ready:
        line = sys.stdin.readline()
        if line.strip() == "exit":
            sys.exit(0)
        if line.startswith("pid "):
            pids.append(int(line.split()[1]))
            continue
        break  # end of file: the parent is gone
    if os.getppid() != parent:
        break
kids, todo, tree = children(), list(pids), []
while todo:
    p = todo.pop()
    tree.append(p)
    todo += kids.get(p, [])
for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
    for p in tree:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in tree):
        time.sleep(0.1)
"""


def child_pids(pid: int | None = None) -> set[int]:
    """Pids of the direct children of `pid` (this process by default), read from /proc."""
    pid = os.getpid() if pid is None else pid
    found = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            found.add(int(d.name))
    return found


class ProcessReaper:
    """Kill `pids` (and their descendants: SIGTERM, then SIGKILL after 5 s) if this process dies first.

    vLLM's offline engine runs its engine core in a child process that is not told when its parent dies:
    a `kill -9` of the task would leave it running with the model loaded. The reaper is a tiny Python
    process reading a pipe from this process: end of file (this process is gone, however it died) or a
    new parent makes it kill the processes; `close()` tells it to exit without killing anything.

    Example:
        reaper = ProcessReaper()
        llm = LLM(...)  # meanwhile a thread calls reaper.add_children() now and then
        reaper.add_children()
        ...  # use the engine
        reaper.close()  # after the engine was shut down normally
    """

    def __init__(self, *, pids: list[int] | None = None) -> None:
        self.pids = list(pids or [])
        self.proc: subprocess.Popen[str] | None = subprocess.Popen(
            [sys.executable, "-c", REAPER_CODE, str(os.getpid()), *map(str, self.pids)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def add(self, pid: int) -> None:
        """Watch one more process (e.g. a child that appeared while an engine was starting)."""
        if pid in self.pids or self.proc is None or pid == self.proc.pid:
            return
        self.pids.append(pid)
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"pid {pid}\n")
        self.proc.stdin.flush()

    def add_children(self) -> None:
        """Watch every direct child of this process (the reaper itself excepted)."""
        for pid in sorted(child_pids()):
            self.add(pid)

    def close(self) -> None:
        """The processes were stopped normally: let the reaper exit without killing them."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            assert proc.stdin is not None
            proc.stdin.write("exit\n")
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def reap_now(self, grace_s: float = 5.0) -> None:
        """Stop the processes from here (SIGTERM, then SIGKILL), then end the reaper."""
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 0.0)):
            for p in self.pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(p, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and any(_running(p) for p in self.pids):
                time.sleep(0.1)
        self.close()


def _running(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
