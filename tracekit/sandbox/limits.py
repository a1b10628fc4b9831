"""Per-solution resource limits, as the harness applies them to every test process."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Limits of one test process (rlimits + wall clock) and of compiling a solution.

    A test fails on timeout when its CPU time exceeds `time_limit_s` or its wall time exceeds
    `time_limit_s * wall_factor + 1` (sleepers); both kill the whole process tree.

    Example:
        >>> SandboxLimits(time_limit_s=2.0, memory_mb=512).as_dict()["memory_mb"]
        512
    """

    time_limit_s: float = 4.0
    memory_mb: int = 1024
    wall_factor: float = 2.0
    max_processes: int = 32
    max_output_bytes: int = 32 * 1024 * 1024
    max_open_files: int = 64
    compile_time_limit_s: float = 30.0
    compile_memory_mb: int = 2048

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @property
    def wall_limit_s(self) -> float:
        return self.time_limit_s * self.wall_factor + 1.0
