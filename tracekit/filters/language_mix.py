"""LanguageMixFilter: the chain of thought switches language, or is not in the prompt's language."""

from __future__ import annotations

import re
from collections import Counter
from typing import Annotated

from datatrove.data import Document
from pydantic import Field

from tracekit.filters.base import Keep, TraceFilter

# Writing systems told apart (Greek is left out: its letters are math symbols in reasoning).
_SCRIPTS: dict[str, str] = {
    "latin": r"A-Za-z\u00C0-\u024F",
    "cjk": r"\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF",
    "hangul": r"\u1100-\u11FF\uAC00-\uD7AF",
    "cyrillic": r"\u0400-\u04FF",
    "arabic": r"\u0600-\u06FF",
    "hebrew": r"\u0590-\u05FF",
    "devanagari": r"\u0900-\u097F",
    "thai": r"\u0E00-\u0E7F",
}
# A CJK character is one unit (about a word); elsewhere a run of letters is one word.
_UNIT = re.compile("|".join(f"(?P<{n}>[{r}]{'' if n == 'cjk' else '+'})" for n, r in _SCRIPTS.items()))
# Not language: math, code, LaTeX commands, URLs.
_NOISE = re.compile(
    r"```.*?```|`[^`\n]*`|\$\$.*?\$\$|\$[^$\n]*\$|\\\[.*?\\\]|\\\(.*?\\\)|\\[A-Za-z]+|https?://\S+",
    re.DOTALL,
)


def script_units(text: str) -> Counter[str]:
    """Language units per writing system, outside math, code and LaTeX.

    Example:
        >>> dict(script_units("So $x^2 = 4$, 所以 x = 2"))
        {'latin': 2, 'cjk': 2}
    """
    counts: Counter[str] = Counter()
    for m in _UNIT.finditer(_NOISE.sub(" ", text)):
        counts[m.lastgroup or "latin"] += 1
    return counts


class LanguageMixFilter(TraceFilter):
    """Drop traces whose reasoning mixes writing systems or is not in the prompt's, as R1 did.

    The expected script is the prompt's main one (the reasoning's own when the prompt has no
    letters). A trace is dropped when its reasoning is mainly in another script, or when the units (words; single CJK characters) of the reasoning and
    answer in other scripts exceed `max_foreign_ratio` of all units and number at least
    `min_foreign_units`. Latin words inside non-Latin text are allowed by default (variable names,
    code identifiers and technical terms are written in Latin letters everywhere).
    Math, code, LaTeX commands and URLs are ignored.

    Example:
        >>> from datatrove.data import Document
        >>> doc = Document(text="", id="t", metadata={"prompt": "What is 2+2?",
        ...     "reasoning": "We add two and two. 所以答案是四。 So the answer is four.", "answer_text": "4"})
        >>> LanguageMixFilter().check(doc)
        (False, 'foreign_units')
    """

    name = "language_mix"
    reason = "language_mix"

    def __init__(
        self,
        *,
        max_foreign_ratio: Annotated[
            float, Field(ge=0, le=1, description="largest share of words in another script")
        ] = 0.01,
        min_foreign_units: Annotated[int, Field(ge=1, description="foreign words needed before dropping")] = 3,
        allow_latin_in_non_latin: Annotated[
            bool, Field(description="Latin words in e.g. Chinese reasoning are not a mix")
        ] = True,
    ) -> None:
        super().__init__()
        self.max_foreign_ratio = max_foreign_ratio
        self.min_foreign_units = min_foreign_units
        self.allow_latin_in_non_latin = allow_latin_in_non_latin

    def check(self, doc: Document) -> Keep:
        md = doc.metadata
        text = "\n".join(t for t in (md.get("reasoning"), md.get("answer_text")) if t) or (doc.text or "")
        units = script_units(text)
        total = sum(units.values())
        if not total:
            return True
        prompt_units = script_units(md.get("prompt") or "")
        expected = (prompt_units or units).most_common(1)[0][0]
        if units.most_common(1)[0][0] != expected:
            return False, "not_prompt_language"  # the reasoning is written in another language than the prompt
        foreign = sum(
            c
            for s, c in units.items()
            if s != expected and not (self.allow_latin_in_non_latin and s == "latin" and expected != "latin")
        )
        if foreign >= self.min_foreign_units and foreign / total > self.max_foreign_ratio:
            return False, "foreign_units"
        return True
