"""RepetitionFilter: degenerate loops (a looping tail, or most lines repeated)."""

from __future__ import annotations

import zlib
from collections import Counter

from datatrove.data import Document

from tracekit.filters.base import TraceFilter


class RepetitionFilter(TraceFilter):
    """Drop completions that loop.

    Three signals, each calibrated on 520 real long-CoT traces (the SkyThought files in
    shared/data/traces: no completed trace trips any of them, most looping truncated ones do):
    - the last `tail_chars` characters compress to under `min_tail_compression` of their size with
      zlib (a looping tail compresses extremely well; completed traces: 0.21 at the lowest);
    - more than `max_tail_ngram_repeat` of the word `ngram`-grams in the last `tail_words` words are
      repeats (completed traces: 0.26 at most);
    - more than `max_repeated_lines` of the lines of at least `min_line_chars` characters repeat an
      earlier line, with at least `min_repeated_lines` repeats (completed traces: 0.44 at most).

    Example:
        >>> from datatrove.data import Document
        >>> loop = "Let me compute the sum again and check it. " * 200
        >>> RepetitionFilter().check(Document(text="<think>" + loop, id="t"))
        True
    """

    name = "repetition"
    reason = "repetition"

    def __init__(
        self,
        *,
        tail_chars: int = 2000,
        min_tail_compression: float = 0.15,
        tail_words: int = 400,
        ngram: int = 8,
        max_tail_ngram_repeat: float = 0.5,
        min_line_chars: int = 20,
        max_repeated_lines: float = 0.6,
        min_repeated_lines: int = 10,
    ) -> None:
        super().__init__()
        self.tail_chars, self.min_tail_compression = tail_chars, min_tail_compression
        self.tail_words, self.ngram, self.max_tail_ngram_repeat = tail_words, ngram, max_tail_ngram_repeat
        self.min_line_chars = min_line_chars
        self.max_repeated_lines, self.min_repeated_lines = max_repeated_lines, min_repeated_lines

    def tail_compression(self, text: str) -> float:
        tail = text[-self.tail_chars :].encode("utf-8")
        return len(zlib.compress(tail, 6)) / len(tail)

    def tail_ngram_repeat(self, text: str) -> float:
        words = text[-self.tail_words * 20 :].split()[-self.tail_words :]
        grams = [tuple(words[i : i + self.ngram]) for i in range(len(words) - self.ngram + 1)]
        return 1 - len(set(grams)) / len(grams) if grams else 0.0

    def repeated_lines(self, text: str) -> tuple[float, int]:
        lines = [s for line in text.splitlines() if len(s := line.strip()) >= self.min_line_chars]
        repeats = len(lines) - len(Counter(lines))
        return (repeats / len(lines) if lines else 0.0), repeats

    def check(self, doc: Document) -> bool:
        text = doc.text or ""
        if len(text) >= self.tail_chars and self.tail_compression(text) < self.min_tail_compression:
            return True
        if self.tail_ngram_repeat(text) > self.max_tail_ngram_repeat:
            return True
        share, repeats = self.repeated_lines(text)
        return repeats >= self.min_repeated_lines and share > self.max_repeated_lines
