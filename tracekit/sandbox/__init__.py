r"""Run untrusted programs: bubblewrap isolation (or rlimits only), warm sandboxes reused per worker,
a fresh fork and emptied work dirs per solution, fresh namespaces per test.

Example:
    >>> from tracekit.sandbox import SandboxOptions, SandboxLimits, make_runner
    >>> runner = make_runner(kind="bwrap", options=SandboxOptions())  # doctest: +SKIP
    >>> with runner.open_session(code="print(input())", language="python", mode="stdio",
    ...                          limits=SandboxLimits()) as s:  # doctest: +SKIP
    ...     s.run_test({"i": 0, "stdin": "hi\n"})["stdout"]
    'hi\n'
"""

from tracekit._lazy import lazy_exports

# names resolve on first use: importing a config module must not load the stage's dependencies
__getattr__ = lazy_exports(
    __name__,
    {
        "BubblewrapRunner": "bubblewrap",
        "ProcessRunner": "process",
        "SandboxBroken": "base",
        "SandboxLane": "lane",
        "SandboxLimits": "limits",
        "SandboxOptions": "config",
        "SandboxPool": "pool",
        "SandboxRunner": "base",
        "SandboxSession": "base",
        "SandboxUnavailable": "base",
        "WarmSandbox": "warm",
        "make_runner": "make",
    },
)

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
