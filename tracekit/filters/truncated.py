"""TruncatedFilter: the teacher hit its token limit, or the reasoning never closed."""

from __future__ import annotations

from datatrove.data import Document

from tracekit.filters.base import Keep, TraceFilter
from tracekit.parse.split import THINK_CLOSE, THINK_OPEN


class TruncatedFilter(TraceFilter):
    """Drop traces with `finish_reason == "length"` or an unclosed reasoning block.

    Example:
        >>> from datatrove.data import Document
        >>> TruncatedFilter().check(Document(text="<think>so", id="t", metadata={"think_format": "unclosed"}))
        (False, 'unclosed')
    """

    name = "truncated"
    reason = "truncated"

    def check(self, doc: Document) -> Keep:
        md = doc.metadata
        if md.get("finish_reason") == "length":
            return False, "length"
        if md.get("think_format") == "unclosed":
            return False, "unclosed"
        text = doc.text or ""
        # no parse metadata: an opening tag after the last closing tag means a cut-off block
        if md.get("think_format") is None and text.rfind(THINK_OPEN) > text.rfind(THINK_CLOSE):
            return False, "unclosed"
        return True
