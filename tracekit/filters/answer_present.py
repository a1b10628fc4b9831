"""AnswerPresentFilter: math traces must end with a final answer."""

from __future__ import annotations

from collections.abc import Sequence

from datatrove.data import Document

from tracekit.filters.base import TraceFilter


class AnswerPresentFilter(TraceFilter):
    """Drop traces of the given domains (default: math) with no extracted final answer.

    The answer is `extracted_answer` (the parse or verify step's last `\\boxed{}`); an empty or
    whitespace-only value counts as missing.

    Example:
        >>> from datatrove.data import Document
        >>> AnswerPresentFilter().check(Document(text="", id="t", metadata={"domain": "math"}))
        True
    """

    name = "answer_present"
    reason = "no_answer"

    def __init__(self, *, domains: Sequence[str] = ("math",)) -> None:
        super().__init__()
        self.domains = tuple(domains)

    def check(self, doc: Document) -> bool:
        md = doc.metadata
        if md.get("domain") not in self.domains:
            return False
        return not (md.get("extracted_answer") or "").strip()
