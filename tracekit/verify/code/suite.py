"""Tests of one problem in tracekit's own shape, whatever published shape they came in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

TestMode = Literal["stdio", "call", "assert"]


@dataclass(frozen=True, slots=True)
class TestCase:
    """One test: `stdin` (stdio), `args` (call) or `assert_code` (assert); `expected` stays on the host.

    Example:
        >>> TestCase(stdin="1 2\\n", expected="3\\n").request(0)
        {'i': 0, 'stdin': '1 2\\n'}
    """

    __test__ = False  # not a pytest class

    stdin: str | None = None
    args: list[Any] | None = None
    assert_code: str | None = None
    expected: Any = None

    def request(self, index: int) -> dict[str, Any]:
        """What the harness gets for this test (never the expected output)."""
        if self.assert_code is not None:
            return {"i": index, "assert": self.assert_code}
        if self.args is not None:
            return {"i": index, "args": self.args}
        return {"i": index, "stdin": self.stdin or ""}


@dataclass(frozen=True, slots=True)
class TestSuite:
    """All tests of a problem. `wrapped_outputs`: APPS/TACO call tests may wrap the expected return
    value in a one-element list, and their grader accepts either. `checker` is a special-judge
    `check(input, output[, expected]) -> bool` (Python source), run in the sandbox.

    Example:
        >>> TestSuite(mode="stdio", cases=(TestCase(stdin="", expected="1\\n"),)).total
        1
    """

    __test__ = False  # not a pytest class

    mode: TestMode
    cases: tuple[TestCase, ...]
    fn_name: str | None = None
    entry_point: str | None = None
    checker: str | None = None
    wrapped_outputs: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.cases)
