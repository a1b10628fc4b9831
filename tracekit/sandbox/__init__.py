"""Run untrusted programs: bubblewrap isolation (or rlimits only), warm sandboxes reused per worker,
a fresh fork and emptied work dirs per solution, fresh namespaces per test.

Example:
    >>> from tracekit.sandbox import SandboxOptions, SandboxLimits, make_runner
    >>> runner = make_runner(kind="bwrap", options=SandboxOptions())  # doctest: +SKIP
    >>> with runner.open_session(code="print(input())", language="python", mode="stdio",
    ...                          limits=SandboxLimits()) as s:  # doctest: +SKIP
    ...     s.run_test({"i": 0, "stdin": "hi\\n"})["stdout"]
    'hi\\n'
"""

from tracekit.sandbox.base import SandboxBroken, SandboxRunner, SandboxSession, SandboxUnavailable
from tracekit.sandbox.bubblewrap import BubblewrapRunner
from tracekit.sandbox.config import SandboxOptions
from tracekit.sandbox.lane import SandboxLane
from tracekit.sandbox.limits import SandboxLimits
from tracekit.sandbox.make import make_runner
from tracekit.sandbox.pool import SandboxPool
from tracekit.sandbox.process import ProcessRunner
from tracekit.sandbox.warm import WarmSandbox

__all__ = [
    "BubblewrapRunner",
    "ProcessRunner",
    "SandboxBroken",
    "SandboxLane",
    "SandboxLimits",
    "SandboxOptions",
    "SandboxPool",
    "SandboxRunner",
    "SandboxSession",
    "SandboxUnavailable",
    "WarmSandbox",
    "make_runner",
]
