"""Sandbox options that are not per-problem limits (interpreter, user, work-dir size)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SandboxOptions(BaseModel):
    """How the sandbox is built. Per-problem limits (time, memory) live in `SandboxLimits`.

    Example:
        >>> SandboxOptions(disk_mb=128).disk_mb
        128
    """

    model_config = ConfigDict(extra="forbid")

    python: str | None = Field(
        default=None,
        description="Python interpreter used inside the sandbox (>= 3.10, standard library is enough). "
        "Default: /usr/bin/python3 or /usr/local/bin/python3, else the interpreter running tracekit.",
    )
    run_as_user: str = Field(
        default="nobody",
        description="When tracekit runs as root, sandboxes run as this unprivileged user instead.",
    )
    disk_mb: int = Field(
        default=256, ge=1, description="Size of the private writable /tmp (tmpfs) of a sandbox."
    )
    shm_mb: int = Field(default=16, ge=1, description="Size of the private /dev/shm (tmpfs) of a sandbox.")
    warm_solutions: int = Field(
        default=1000,
        ge=1,
        description="Solutions one warm sandbox runs (each in a fresh fork with emptied work dirs) "
        "before it is replaced by a new one; 1 starts a new sandbox per solution.",
    )
    max_processes: int = Field(default=32, ge=1, description="RLIMIT_NPROC of a test (processes + threads).")
    max_output_kb: int = Field(
        default=32 * 1024, ge=1, description="Cap on stdout/stderr and any file a test writes (RLIMIT_FSIZE)."
    )
    max_open_files: int = Field(default=64, ge=8, description="RLIMIT_NOFILE of a test.")
    wall_factor: float = Field(
        default=2.0,
        ge=1.0,
        description="Wall-clock limit = time_limit_s * wall_factor + 1 s (CPU limit is time_limit_s).",
    )
    compile_time_limit_s: float = Field(default=30.0, gt=0, description="Wall limit for g++ on one solution.")
    compile_memory_mb: int = Field(default=2048, ge=64, description="Address-space limit for g++.")
    ro_binds: list[str] = Field(
        default_factory=list, description="Extra host paths bound read-only at the same place (bwrap only)."
    )
