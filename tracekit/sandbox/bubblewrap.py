"""Bubblewrap runner: warm harness servers in their own namespaces, each test in nested ones."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path

from tracekit.sandbox.base import SandboxRunner, SandboxUnavailable, harness_source
from tracekit.sandbox.config import SandboxOptions
from tracekit.sandbox.limits import SandboxLimits

# The few /etc files programs and compilers need; nothing else of the host's /etc is visible.
ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
)
TOP_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
SANDBOX_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONIOENCODING": "utf-8",
}

_CHECKED: set[tuple[object, ...]] = set()  # runner set-ups that passed `check()` in this process


@cache
def _bwrap_path() -> str | None:
    for d in os.environ.get("PATH", "/usr/bin:/bin").split(":") + ["/usr/bin"]:
        p = Path(d) / "bwrap"
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


class BubblewrapRunner(SandboxRunner):
    """Harness inside `bwrap`: no network, read-only /usr, private tmpfs /tmp, own PID/IPC/UTS/user
    namespaces, empty environment, new session, killed with its parent.

    Example:
        >>> runner = BubblewrapRunner()  # doctest: +SKIP
        >>> runner.check()  # raises SandboxUnavailable with the reason if bwrap cannot run  # doctest: +SKIP
    """

    name = "code_sandbox"
    isolated = True
    own_pid1 = True

    def __init__(self, *, options: SandboxOptions | None = None) -> None:
        super().__init__(options=options)
        self.bwrap = _bwrap_path()

    def mounts(self) -> list[str]:
        args = ["--ro-bind", "/usr", "/usr"]
        for d in TOP_DIRS:
            p = Path("/") / d
            if p.is_symlink():
                args += ["--symlink", os.readlink(p), str(p)]
            elif p.is_dir():
                args += ["--ro-bind", str(p), str(p)]
        for f in ETC_FILES:
            args += ["--ro-bind-try", f, f]
        py_real = os.path.realpath(self.python)
        if not py_real.startswith("/usr/"):
            prefix = str(Path(py_real).parent.parent)  # <prefix>/bin/python3 -> <prefix>
            args += ["--ro-bind", prefix, prefix]
        for extra in self.options.ro_binds:
            args += ["--ro-bind", extra, extra]
        return args

    def command(self, *, limits: SandboxLimits) -> tuple[list[str], Callable[[], None] | None]:
        if self.bwrap is None:
            raise SandboxUnavailable(self._unavailable("bwrap is not installed"))
        argv = [
            self.bwrap,
            "--unshare-all",  # user, ipc, pid, net (only loopback), uts, cgroup
            "--die-with-parent",
            "--new-session",
            "--hostname",
            "sandbox",
            "--clearenv",
        ]
        for k, v in SANDBOX_ENV.items():
            argv += ["--setenv", k, v]
        argv += self.mounts()
        argv += ["--proc", "/proc", "--dev", "/dev"]
        # /dev itself read-only and a small private /dev/shm: no unbounded writable place besides /tmp
        argv += [
            "--size",
            str(self.options.shm_mb * 1024 * 1024),
            "--tmpfs",
            "/dev/shm",
            "--remount-ro",
            "/dev",
        ]
        argv += ["--size", str(self.options.disk_mb * 1024 * 1024), "--tmpfs", "/tmp", "--chdir", "/tmp"]
        argv += [
            "--remount-ro",
            "/",
        ]  # bwrap's root tmpfs (/, /etc, ...) read-only: /tmp is the only rw place
        # The harness server empties /tmp and /dev/shm before each solution it runs.
        argv += ["--", self.python, "-I", "-B", "-c", harness_source(), "/tmp", "/dev/shm"]
        return argv, None

    @staticmethod
    def _unavailable(reason: str) -> str:
        return (
            f"bubblewrap sandbox cannot run here: {reason}. Install bubblewrap (apt-get install bubblewrap) "
            "and allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, or the "
            "AppArmor userns restriction off), or set `verify: {code: {sandbox: process}}` to run "
            "code with rlimits only (no isolation; recorded as code_process in the ledger)."
        )

    def check(self) -> None:
        """Start one empty sandbox the way real runs do; raise `SandboxUnavailable` if it fails.
        A success is remembered for this process (same bwrap, interpreter, user and mounts)."""
        if self.bwrap is None:
            raise SandboxUnavailable(self._unavailable("bwrap is not installed"))
        argv, _ = self.command(limits=SandboxLimits())
        key = (tuple(argv[: argv.index("--")]), self.python, str(self.popen_kwargs()))
        if key in _CHECKED:
            return
        probe = argv[: argv.index("--") + 1] + [
            self.python,
            "-I",
            "-c",
            "import ctypes; assert ctypes.CDLL(None).unshare(0x30000000) == 0, 'nested namespaces refused'",
        ]
        try:
            proc = subprocess.run(probe, capture_output=True, timeout=60, **self.popen_kwargs())
        except (OSError, subprocess.TimeoutExpired) as e:
            raise SandboxUnavailable(self._unavailable(str(e))) from e
        if proc.returncode != 0:
            msg = proc.stderr.decode("utf-8", "replace").strip()[-400:] or f"exit status {proc.returncode}"
            raise SandboxUnavailable(self._unavailable(msg))
        _CHECKED.add(key)
