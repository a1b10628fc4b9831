"""One thing to verify: a program, its language and its tests (any published shape)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class CodeItem:
    """A solution and its tests. `tests` may be an object or JSON/Python-literal text in any shape
    `read_tests` knows; `None` fields fall back to the verifier's config.

    Example:
        >>> CodeItem(code="print(input())", tests={"inputs": ["a\\n"], "outputs": ["a\\n"]}).language
        'python'
    """

    code: str
    tests: Any
    language: Literal["python", "cpp"] = "python"
    time_limit_s: float | None = None
    memory_mb: int | None = None
    compare: str | None = None
    fn_name: str | None = None
    entry_point: str | None = None
