"""Take the program out of a model's answer: the last fenced ```python or ```cpp block."""

from __future__ import annotations

import re
from typing import Literal

FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+#-]*)[^\n]*\n(.*?)```", re.DOTALL)
LANGUAGES: dict[str, Literal["python", "cpp"]] = {
    "python": "python",
    "python3": "python",
    "py": "python",
    "cpp": "cpp",
    "c++": "cpp",
    "cxx": "cpp",
    "cc": "cpp",
}


def extract_code(text: str | None) -> tuple[str, Literal["python", "cpp"]] | None:
    """(code, language) of the last fenced block tagged python/py or cpp/c++; else the last untagged
    block as Python; None when the answer has no fenced block.

    Example:
        >>> extract_code("Idea...\\n```python\\nprint(1)\\n```\\nDone.")
        ('print(1)\\n', 'python')
        >>> extract_code("no code") is None
        True
    """
    if not text:
        return None
    tagged: tuple[str, Literal["python", "cpp"]] | None = None
    untagged: str | None = None
    for m in FENCE.finditer(text):
        tag, body = m.group(1).lower(), m.group(2)
        if tag in LANGUAGES:
            tagged = (body, LANGUAGES[tag])
        elif tag == "":
            untagged = body
    if tagged is not None:
        return tagged
    if untagged is not None:
        return untagged, "python"
    return None
