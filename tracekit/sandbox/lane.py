"""A warm sandbox one worker holds across solutions, so the next solution is queued behind the current."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from tracekit.sandbox.pool import SandboxPool
from tracekit.sandbox.warm import WarmSandbox


class SandboxLane:
    """Sessions opened through a lane all go to the same warm sandbox (a new one after a break), in
    order: a session may be opened while the previous one is still being read, once the previous one
    has sent everything (`SandboxSession.sent_all`); the harness then starts the next solution the
    moment the previous one ends, without waiting for the host. Replies are read in the same order.
    If a session breaks its sandbox, the sessions queued behind it break too (`SandboxBroken`).

    Example:
        >>> with runner.lane() as lane:  # doctest: +SKIP
        ...     a = runner.open_session(..., tests=ta, lane=lane)
        ...     b = runner.open_session(..., tests=tb, lane=lane)  # when a.sent_all
        ...     with a: ra = list(a.run_tests())
        ...     with b: rb = list(b.run_tests())
    """

    def __init__(self, *, pool: SandboxPool) -> None:
        self.pool = pool
        self._sandbox: WarmSandbox | None = None

    def sandbox_for_session(self) -> tuple[WarmSandbox, Callable[[WarmSandbox, bool], None]]:
        """The lane's sandbox (started or replaced as needed) and the release hook for the session."""
        sb = self._sandbox
        if sb is None or not sb.alive() or sb.solutions >= self.pool.max_solutions:
            if sb is not None:
                self.pool.release(sb, healthy=sb.alive())  # worn out: the pool retires it
            sb = self._sandbox = self.pool.acquire()
        return sb, self._session_ended

    def _session_ended(self, sb: WarmSandbox, healthy: bool) -> None:
        if not healthy:
            sb.kill()  # sessions queued behind this one break with it

    def close(self) -> None:
        if self._sandbox is not None:
            sb, self._sandbox = self._sandbox, None
            self.pool.release(sb, healthy=sb.alive())

    def __enter__(self) -> SandboxLane:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
