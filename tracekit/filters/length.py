"""LengthFilter: prompt and completion token bounds."""

from __future__ import annotations

import math
from typing import Any

from datatrove.data import Document

from tracekit.filters.base import TraceFilter

CHARS_PER_TOKEN = 4.0  # approximation used only without token counts and without a tokenizer


class LengthFilter(TraceFilter):
    """Drop traces whose prompt or completion token count is outside the given bounds.

    Counts come from metadata `prompt_tokens` / `completion_tokens` when present (the parse step
    fills them with the recipe's tokenizer); otherwise they are counted here with `tokenizer` (a
    Hugging Face tokenizer name or local path, loaded once, lazily); without either, a count is
    approximated as ceil(characters / 4), about right for English with BPE tokenizers and
    rougher for code and CJK text. The prompt is the `prompt` text (the rendered messages are
    not re-counted here).

    Example:
        >>> from datatrove.data import Document
        >>> f = LengthFilter(max_completion_tokens=100)
        >>> f.check(Document(text="", id="t", metadata={"completion_tokens": 101, "prompt_tokens": 5}))
        True
    """

    name = "length"
    reason = "length"

    def __init__(
        self,
        *,
        min_prompt_tokens: int | None = None,
        max_prompt_tokens: int | None = None,
        min_completion_tokens: int | None = None,
        max_completion_tokens: int | None = 32768,
        tokenizer: str | None = None,
    ) -> None:
        super().__init__()
        self.min_prompt_tokens, self.max_prompt_tokens = min_prompt_tokens, max_prompt_tokens
        self.min_completion_tokens, self.max_completion_tokens = min_completion_tokens, max_completion_tokens
        self.tokenizer = tokenizer
        self._tok: Any = None

    def count(self, text: str) -> int:
        if self.tokenizer:
            if self._tok is None:
                from transformers import AutoTokenizer

                self._tok = AutoTokenizer.from_pretrained(self.tokenizer)
            return len(self._tok(text, add_special_tokens=False)["input_ids"])
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    @staticmethod
    def _outside(n: int, lo: int | None, hi: int | None) -> bool:
        return (lo is not None and n < lo) or (hi is not None and n > hi)

    def check(self, doc: Document) -> bool:
        md = doc.metadata
        if self.min_prompt_tokens is not None or self.max_prompt_tokens is not None:
            n = md.get("prompt_tokens")
            n = self.count(md.get("prompt") or "") if n is None else n
            if self._outside(n, self.min_prompt_tokens, self.max_prompt_tokens):
                return True
        if self.min_completion_tokens is not None or self.max_completion_tokens is not None:
            n = md.get("completion_tokens")
            n = self.count(doc.text or "") if n is None else n
            if self._outside(n, self.min_completion_tokens, self.max_completion_tokens):
                return True
        return False
