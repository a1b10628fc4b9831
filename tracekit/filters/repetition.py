"""RepetitionFilter: degenerate loops (a looping tail, or most lines repeated)."""

from __future__ import annotations

import zlib
from collections import Counter
from typing import Annotated

from datatrove.data import Document
from pydantic import Field

from tracekit.filters.base import Keep, TraceFilter


class RepetitionFilter(TraceFilter):
    """Drop completions that loop, naming the signal that tripped (`tail_compression`,
    `tail_ngram_repeat` or `repeated_lines`, in `filter_flags` as `repetition:<signal>`).

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
        (False, 'tail_compression')
    """

    name = "repetition"
    reason = "repetition"

    def __init__(
        self,
        *,
        tail_chars: Annotated[int, Field(ge=100, description="tail length checked for compressibility")] = 2000,
        min_tail_compression: Annotated[
            float, Field(ge=0, le=1, description="zlib size ratio below which the tail loops")
        ] = 0.15,
        tail_words: Annotated[int, Field(ge=10, description="tail words checked for repeated n-grams")] = 400,
        ngram: Annotated[int, Field(ge=2, description="words per n-gram in the tail check")] = 8,
        max_tail_ngram_repeat: Annotated[
            float, Field(ge=0, le=1, description="largest share of repeated tail n-grams")
        ] = 0.5,
        min_line_chars: Annotated[int, Field(ge=1, description="shorter lines are not compared")] = 20,
        max_repeated_lines: Annotated[float, Field(ge=0, le=1, description="largest share of repeated lines")] = 0.6,
        min_repeated_lines: Annotated[int, Field(ge=1, description="repeated lines needed before dropping")] = 10,
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

    def check(self, doc: Document) -> Keep:
        text = doc.text or ""
        if len(text) >= self.tail_chars and self.tail_compression(text) < self.min_tail_compression:
            return False, "tail_compression"
        if self.tail_ngram_repeat(text) > self.max_tail_ngram_repeat:
            return False, "tail_ngram_repeat"
        share, repeats = self.repeated_lines(text)
        if repeats >= self.min_repeated_lines and share > self.max_repeated_lines:
            return False, "repeated_lines"
        return True
