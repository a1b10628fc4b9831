"""Clean an extracted answer without changing what it means.

Only what never carries a value goes: math delimiters (`$`, `\\[ \\]`, `\\( \\)`), markdown bold,
currency signs, LaTeX thousands-separator spacing (`10,\\!080`, `14{,}916`), a trailing period, the
words "percent"/"pct" (they become `\\%`). Units, percent signs, degree signs and every brace stay: the
parser (`latex.py`) reads them. An answer that is only words (`\\text{Evelyn}`, `odd`, `no solution`)
is marked `is_text` and compared as words.

Example:
    >>> clean_answer(r"$\\dfrac{1}{2}\\text{ m}$").text
    '\\\\dfrac{1}{2}\\\\text{ m}'
    >>> clean_answer(r"\\text{Evelyn}")
    CleanAnswer(text='Evelyn', is_text=True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tracekit.verify.math.units import looks_like_word

_TEXT_WRAP_RE = re.compile(r"\\(?:text|textbf|mathrm|textnormal|mbox|mathbf|textit|textrm)\s*\{([^{}]*)\}")
_WORDS_RE = re.compile(r"[A-Za-z][A-Za-z'\-]*(?:\s+[A-Za-z][A-Za-z'\-]*)*")
_MATH_WORDS = {
    "sin", "cos", "tan", "cot", "sec", "csc", "ln", "log", "exp", "sqrt", "pi", "and", "or", "inf",
    "infty", "infinity", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
}  # fmt: skip
_PERCENT_WORD_RE = re.compile(r"\s*\b(?:percent|percentage|pct)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class CleanAnswer:
    text: str
    is_text: bool = False  # only words: compare as words


def _strip_delims(s: str) -> str:
    s = s.strip()
    changed = True
    while changed:
        changed = False
        for a, b in (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)")):
            if s.startswith(a) and s.endswith(b) and len(s) >= len(a) + len(b):
                s = s[len(a) : len(s) - len(b)].strip()
                changed = True
    return s


def is_word_answer(text: str) -> bool:
    """Only words (`Evelyn`, `no solution`, `odd`), not mathematics (`x`, `xy`, `\\sin x`)."""
    t = _TEXT_WRAP_RE.sub(r" \1 ", text).strip()
    if not _WORDS_RE.fullmatch(t):
        return False
    words = re.split(r"[\s'\-]+", t)
    if all(w.lower() in _MATH_WORDS for w in words):
        return False
    if len(words) == 1 and words[0].lower() in ("no", "yes", "none", "all", "neither", "both"):
        return True
    return any(looks_like_word(w) and w.lower() not in _MATH_WORDS for w in words) or (
        len(words) > 1 and all(w.isalpha() for w in words) and any(len(w) > 1 for w in words)
    )


def clean_answer(raw: str) -> CleanAnswer:
    """Normalise one extracted answer (see the module docstring)."""
    s = raw.strip().replace("**", "")
    s = _strip_delims(s)
    s = re.sub(r",\\!\s*", ",", s)  # 11,\! 111 is one number
    s = re.sub(r"\s*\{\s*,\s*\}\s*", ",", s).replace("\\!", "")
    # a doubled backslash before a command name (JSON-escaped LaTeX): \\frac -> \frac
    s = re.sub(
        r"(?<!\\)\\\\(?=(?:left|right|frac|dfrac|tfrac|sqrt|pi|le|leq|ge|geq|neq|infty|cdot|times|text|mathrm|in|cup|cap|pm|mp|sin|cos|tan|log|ln|quad|qquad|alpha|beta|gamma|theta|circ|%)(?![A-Za-z]))",
        r"\\",
        s,
    )
    if "$" in s:
        s = s.replace("\\$", " ").replace("$", " ")
    s = re.sub(r"\\(?:euro|pounds?|yen)(?![A-Za-z])|€|£|¥", " ", s)
    # an ordinal mark: 12^{\text{th}} grade, 3^{rd}
    s = re.sub(r"(?<=\d)\^\s*\{?\s*(?:\\(?:text|mathrm|textrm)\s*\{\s*)?(?:st|nd|rd|th)\s*\}?\s*\}?", "", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = s.rstrip("\\").strip()
    s = re.sub(r"(?<!\\)[.。]+$", "", s).strip()
    s = _PERCENT_WORD_RE.sub("\\%", s) if re.search(r"\d", s) else s
    if is_word_answer(s):
        words = _TEXT_WRAP_RE.sub(r" \1 ", s)
        return CleanAnswer(text=re.sub(r"\s+", " ", words).strip(), is_text=True)
    return CleanAnswer(text=s)
