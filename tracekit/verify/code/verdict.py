"""The verdict on one solution, and its mapping to the ledger's `VerifyResult`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from tracekit.verify.base import VerifyResult

CodeVerdictStr = Literal["pass", "fail", "error"]
LEDGER_VERDICT = {"pass": "correct", "fail": "incorrect", "error": "error"}
DETAIL_CHARS = 1000


@dataclass(frozen=True, slots=True)
class CodeVerdict:
    """`pass` (every test passed), `fail` (the program is wrong, crashed, too slow or too big) or
    `error` (the sandbox or harness broke: never a `fail`). `detail` names the first failing test,
    expected vs got excerpts, stderr tail, time and peak memory.

    Example:
        >>> CodeVerdict("pass", 3, 3, method="code_sandbox").to_verify_result().verdict
        'correct'
    """

    verdict: CodeVerdictStr
    tests_passed: int
    tests_total: int
    detail: dict[str, Any] = field(default_factory=dict)
    method: str = "code_sandbox"

    def detail_text(self) -> str:
        """Short JSON of the detail for the ledger's `verify_detail`."""
        text = json.dumps(
            {"passed": f"{self.tests_passed}/{self.tests_total}", **self.detail}, ensure_ascii=False
        )
        return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 3] + "..."

    def to_verify_result(self, *, extracted_answer: str | None = None) -> VerifyResult:
        return VerifyResult(
            verdict=LEDGER_VERDICT[self.verdict],  # type: ignore[arg-type]
            method=self.method,
            detail=self.detail_text(),
            extracted_answer=extracted_answer,
        )
