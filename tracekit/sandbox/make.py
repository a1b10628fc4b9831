"""Pick the runner a recipe asks for."""

from __future__ import annotations

from typing import Literal

from tracekit.sandbox.base import SandboxRunner
from tracekit.sandbox.bubblewrap import BubblewrapRunner
from tracekit.sandbox.config import SandboxOptions
from tracekit.sandbox.process import ProcessRunner


def make_runner(*, kind: Literal["bwrap", "process"], options: SandboxOptions | None = None) -> SandboxRunner:
    """`bwrap` (checked: raises `SandboxUnavailable` with the reason) or `process` (rlimits only).

    Example:
        >>> make_runner(kind="process").name
        'code_process'
    """
    if kind == "process":
        return ProcessRunner(options=options)
    runner = BubblewrapRunner(options=options)
    runner.check()
    return runner
