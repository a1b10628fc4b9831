"""TruncatedFilter: the teacher hit its token limit, or the reasoning never closed."""

from __future__ import annotations

from datatrove.data import Document

from tracekit.filters.base import TraceFilter
from tracekit.parse.split import THINK_CLOSE, THINK_OPEN


class TruncatedFilter(TraceFilter):
    """Drop traces with `finish_reason == "length"` or an unclosed reasoning block.

    Example:
        >>> from datatrove.data import Document
        >>> TruncatedFilter().check(Document(text="<think>so", id="t", metadata={"think_format": "unclosed"}))
        True
    """

    name = "truncated"
    reason = "truncated"

    def check(self, doc: Document) -> bool:
        md = doc.metadata
        if md.get("finish_reason") == "length" or md.get("think_format") == "unclosed":
            return True
        text = doc.text or ""
        # no parse metadata: an opening tag after the last closing tag means a cut-off block
        return md.get("think_format") is None and text.rfind(THINK_OPEN) > text.rfind(THINK_CLOSE)
