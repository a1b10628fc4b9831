"""LLM-judge fallback: ask an OpenAI-compatible chat endpoint whether two answers are equivalent.

Example:
    >>> judge = MathAnswerJudge(base_url="http://localhost:8000/v1", model="qwen")  # doctest: +SKIP
    >>> judge(gold="1/2", answer="0.5")  # doctest: +SKIP
    True
"""

from __future__ import annotations

import os
import re

import httpx

_PROMPT = (
    "You compare a student's final answer to a reference answer of a math problem. Reply with exactly one "
    "word: EQUIVALENT if they are mathematically the same answer, DIFFERENT otherwise.\n\n"
    "Reference answer: {gold}\nStudent answer: {answer}"
)


class MathAnswerJudge:
    """Posts one chat/completions request per pair; returns True/False, or None if the reply is unclear.

    The API key is read from the environment variable named by `api_key_env` and never logged.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        timeout_s: float = 60.0,
        max_tokens: int = 16,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens

    def __call__(self, *, gold: str, answer: str) -> bool | None:
        headers = {"Content-Type": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if key:
                headers["Authorization"] = f"Bearer {key}"
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": _PROMPT.format(gold=gold, answer=answer)}],
            "temperature": 0.0,
            "max_tokens": self.max_tokens,
        }
        resp = httpx.post(
            f"{self.base_url}/chat/completions", json=body, headers=headers, timeout=self.timeout_s
        )
        resp.raise_for_status()
        text = resp.json()["choices"][0]["message"]["content"] or ""
        word = re.sub(r"[^A-Z]", " ", text.upper()).split()
        if "DIFFERENT" in word or "NOT" in word:
            return False
        if "EQUIVALENT" in word:
            return True
        return None
