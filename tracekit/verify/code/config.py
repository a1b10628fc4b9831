"""`verify: {code: {...}}` recipe section."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tracekit.sandbox.config import SandboxOptions
from tracekit.verify.code.compare import validate_compare


class CodeVerifyConfig(BaseModel):
    """How code answers are verified. Per-item `time_limit_s`, `memory_mb`, `compare` override these.

    Example:
        >>> CodeVerifyConfig(sandbox="process", compare="float:1e-6").sandbox
        'process'
    """

    model_config = ConfigDict(extra="forbid")

    sandbox: Literal["bwrap", "process"] = Field(
        default="bwrap",
        description="bwrap: bubblewrap namespaces + rlimits (stops with a clear message if bubblewrap "
        "cannot run); process: rlimits only, no isolation (recorded as code_process).",
    )
    time_limit_s: float = Field(
        default=4.0, gt=0, description="CPU-time limit per test (wall limit is larger)."
    )
    memory_mb: int = Field(default=1024, ge=32, description="Address-space limit per test process.")
    compare: str = Field(
        default="tokens", description="stdout comparison: exact | tokens | tokens_nocase | float:TOL."
    )
    max_retries: int = Field(
        default=2, ge=0, description="Retries when the sandbox itself breaks (verdict error)."
    )
    workers: int | None = Field(
        default=None, ge=1, description="Solutions verified at once (default: all cores)."
    )
    stop_on_first_failure: bool = Field(
        default=True,
        description="Stop a solution at its first failing test (tests_passed then counts up to it).",
    )
    domains: list[str] = Field(
        default_factory=lambda: ["code"], description="Trace domains the verify step checks."
    )
    keep_errors: bool = Field(
        default=False, description="Keep traces whose verification broke (verdict error)."
    )
    batch_size: int = Field(
        default=64, ge=1, description="Traces handed to the verifier at once by the step."
    )
    sandbox_options: SandboxOptions = Field(
        default_factory=SandboxOptions, description="Sandbox construction."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_votes(cls, data: Any) -> Any:
        if isinstance(data, dict) and ({"no_gold", "gold_repair"} & set(data)):
            raise ValueError(
                "majority voting (`no_gold` / `gold_repair`) is for math answers; code is verified by its tests"
            )
        return data

    @field_validator("compare")
    @classmethod
    def _check_compare(cls, v: str) -> str:
        return validate_compare(v)
