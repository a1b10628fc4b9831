"""Fixtures of the sandbox tests: a strict config, and looking for processes from outside."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest

from tracekit.sandbox import SandboxOptions
from tracekit.verify.code import CodeVerifier, CodeVerifyConfig


def strict_config(**kw: object) -> CodeVerifyConfig:
    options = SandboxOptions(disk_mb=16, max_output_kb=1024, max_processes=16)
    base: dict[str, object] = {
        "time_limit_s": 1.0,
        "memory_mb": 256,
        "max_retries": 0,
        "stop_on_first_failure": False,
        "sandbox_options": options,
    }
    return CodeVerifyConfig(**{**base, **kw})  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def bwrap_verifier() -> CodeVerifier:
    return CodeVerifier(strict_config())


def processes_with(marker: str) -> list[int]:
    """PIDs (host view) whose command line contains `marker`."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            comm = (d / "comm").read_text()
        except OSError:
            continue
        if marker in cmd or marker in comm:
            found.append(int(d.name))
    return found


def wait_gone(marker: str, seconds: float = 3.0) -> list[int]:
    """Give the kernel a moment to reap, then return survivors (and kill them so nothing leaks)."""
    deadline = time.monotonic() + seconds
    left = processes_with(marker)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = processes_with(marker)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, 9)
    return left
