"""LengthFilter: prompt and completion token bounds."""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar

from datatrove.data import Document
from pydantic import Field

from tracekit.filters.base import Keep, TraceFilter

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
        (False, 'long_completion')
    """

    name = "length"
    reason = "length"
    set_by_build: ClassVar[tuple[str, ...]] = ("tokenizer",)  # the recipe's tokenizer, not an option

    def __init__(
        self,
        *,
        min_prompt_tokens: Annotated[int | None, Field(ge=0, description="drop shorter prompts")] = None,
        max_prompt_tokens: Annotated[int | None, Field(ge=1, description="drop longer prompts")] = None,
        min_completion_tokens: Annotated[int | None, Field(ge=0, description="drop shorter completions")] = None,
        max_completion_tokens: Annotated[int | None, Field(ge=1, description="drop longer completions")] = 32768,
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
    def _outside(n: int, lo: int | None, hi: int | None) -> str | None:
        """"short" or "long" when n is outside [lo, hi], else None."""
        return "short" if lo is not None and n < lo else "long" if hi is not None and n > hi else None

    def check(self, doc: Document) -> Keep:
        md = doc.metadata
        if self.min_prompt_tokens is not None or self.max_prompt_tokens is not None:
            n = md.get("prompt_tokens")
            n = self.count(md.get("prompt") or "") if n is None else n
            if side := self._outside(n, self.min_prompt_tokens, self.max_prompt_tokens):
                return False, f"{side}_prompt"
        if self.min_completion_tokens is not None or self.max_completion_tokens is not None:
            n = md.get("completion_tokens")
            n = self.count(doc.text or "") if n is None else n
            if side := self._outside(n, self.min_completion_tokens, self.max_completion_tokens):
                return False, f"{side}_completion"
        return True
