"""AnswerPresentFilter: math traces must end with a final answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from datatrove.data import Document
from pydantic import Field

from tracekit.filters.base import Keep, TraceFilter


class AnswerPresentFilter(TraceFilter):
    """Drop traces of the given domains (default: math) with no extracted final answer.

    The answer is `extracted_answer` (the parse or verify step's last `\\boxed{}`); an empty or
    whitespace-only value counts as missing.

    Example:
        >>> from datatrove.data import Document
        >>> AnswerPresentFilter().check(Document(text="", id="t", metadata={"domain": "math"}))
        False
    """

    name = "answer_present"
    reason = "no_answer"

    def __init__(
        self,
        *,
        domains: Annotated[Sequence[str], Field(description="domains that need an answer")] = ("math",),
    ) -> None:
        super().__init__()
        self.domains = tuple(domains)

    def check(self, doc: Document) -> Keep:
        md = doc.metadata
        if md.get("domain") not in self.domains:
            return True
        return bool((md.get("extracted_answer") or "").strip())
