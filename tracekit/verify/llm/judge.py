"""The judge's question and how its reply is read.

    >>> read_reply("The reference is 1/2 and the student wrote 0.5.\\nYES")
    'correct'
    >>> read_reply("Not the same: 3 is not 4. **No**")
    'incorrect'
    >>> read_reply("I cannot tell.") is None
    True
"""

from __future__ import annotations

import re

from tracekit.record import Verdict

_WORD = re.compile(r"[A-Za-z]+")


def judge_messages(template: str, *, prompt: str, answer: str, gold: str) -> list[dict[str, str]]:
    """The user message of one judgement (plain replacement: answers are full of braces)."""
    text = template.replace("{prompt}", prompt).replace("{answer}", answer).replace("{gold}", gold)
    return [{"role": "user", "content": text}]


def read_reply(reply: str) -> Verdict | None:
    """`correct` / `incorrect` from the last YES or NO word of the reply; None when it has neither."""
    for word in reversed(_WORD.findall(reply or "")):
        w = word.upper()
        if w == "YES":
            return "correct"
        if w == "NO":
            return "incorrect"
    return None
