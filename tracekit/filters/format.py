"""FormatFilter: exactly one closed reasoning block and a non-empty answer after it."""

from __future__ import annotations

from datatrove.data import Document

from tracekit.filters.base import Keep, TraceFilter
from tracekit.parse.split import CLOSE_TAGS, OPEN_TAGS


class FormatFilter(TraceFilter):
    """Keep a reasoning trace only if it has exactly one closed reasoning block, non-empty, followed
    by a non-empty answer; the answer must not open another block.

    Reads the parse step's metadata (`think_format`, `think_blocks`, `reasoning`, `answer_text`).
    Traces sampled without thinking (`reasoning_enabled` false) only need a non-empty answer.

    Example:
        >>> from datatrove.data import Document
        >>> doc = Document(text="<think>2+2=4</think> 4", id="t", metadata={
        ...     "think_format": "think", "think_blocks": 1, "reasoning": "2+2=4", "answer_text": "4"})
        >>> FormatFilter().check(doc)
        True
    """

    name = "format"
    reason = "bad_format"

    def check(self, doc: Document) -> Keep:
        md = doc.metadata
        answer = (md.get("answer_text") or "").strip()
        if not answer:
            return False
        if md.get("reasoning_enabled") is False:
            return True
        if md.get("think_format") not in ("think", "thought", "field"):
            return False  # no reasoning block, or it never closed
        if not (md.get("reasoning") or "").strip():
            return False
        text = doc.text or ""
        blocks = md.get("think_blocks")
        if blocks is None:
            blocks = max(sum(text.count(t) for t in OPEN_TAGS), 1)
        if blocks != 1 or sum(text.count(t) for t in CLOSE_TAGS) > 1:
            return False
        return not any(t in answer for t in (*OPEN_TAGS, *CLOSE_TAGS))
