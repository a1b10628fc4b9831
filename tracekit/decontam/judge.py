"""The LLM judge of the rephrase check: is a prompt the same problem as a benchmark item?

Requests go through the teachers' backends: `ChatClient` (retries with backoff on timeouts, 429,
5xx, dropped connections and unreadable bodies) to OpenAI-compatible endpoints (`kind: openai`),
or to a vLLM server the judge starts and stops (`kind: vllm`, `ManagedVllmServer`). Every answer
is written to a `RequestCache` the moment it arrives, keyed by the judge model and the two texts, so
a build that stopped (the judge went down, Ctrl-C, `kill -9`) asks only what is still unanswered
when it runs again. A request that still fails after its retries stops the stage with
`JudgeUnavailable` once the others have finished (their answers are kept).

The reply's first SAME / DIFFERENT (or YES / NO) word is the verdict; any other reply is `None`
(unclear) and is recorded as it was.

Example:
    >>> parse_verdict("SAME."), parse_verdict("Different problems"), parse_verdict("maybe")
    (True, False, None)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tracekit.decontam.config import OpenAIJudgeConfig, VllmJudgeConfig
from tracekit.record import stable_hash
from tracekit.teachers.chat_client import ChatClient
from tracekit.teachers.request_cache import RequestCache

JUDGE_PROMPT = (
    "Below are two problems. Decide whether they are the same problem, possibly reworded: the same "
    "question about the same objects and the same numbers, so that both have the same answer. A "
    "problem that shares the wording but changes a number, an object or what is asked is a different "
    "problem. Reply with one word: SAME or DIFFERENT.\n\nProblem A:\n{a}\n\nProblem B:\n{b}"
)
_WORDS = {"SAME": True, "YES": True, "DIFFERENT": False, "NO": False, "NOT": False}
ANSWER_CHARS = 200  # what the ledger keeps of a reply


class JudgeUnavailable(RuntimeError):
    """The judge did not answer after its retries; the build stops and a rerun resumes."""


def parse_verdict(text: str) -> bool | None:
    """True (same problem), False (different) or None (the reply says neither)."""
    for word in re.findall(r"[A-Za-z]+", text.upper()):
        if word in _WORDS:
            return _WORDS[word]
    return None


@dataclass(frozen=True)
class JudgeReply:
    same: bool | None  # None: unclear reply
    answer: str  # the reply (cut to ANSWER_CHARS)


def pair_key(model: str, prompt: str, item_text: str) -> str:
    """Cache key of one question: the judge model, its prompt template and the two texts."""
    return stable_hash("judge", model, JUDGE_PROMPT, prompt, item_text, size=16)


class Judge:
    """Asks the configured judge about (prompt, benchmark item) pairs, with a crash-safe answer cache.

    Example:
        judge = Judge(config=OpenAIJudgeConfig(base_urls=["http://localhost:8000/v1"], model="m"),
                      cache_path=Path("out/x/work/decisions/judge.jsonl"))
        verdicts = judge.ask({key: (prompt, item_text)})   # key -> JudgeReply
    """

    def __init__(
        self, *, config: OpenAIJudgeConfig | VllmJudgeConfig, cache_path: Path, log_dir: Path | None = None
    ) -> None:
        self.config = config
        self.cache_path = cache_path
        self.log_dir = log_dir
        self.sent = 0
        self.cached = 0

    def key(self, prompt: str, item_text: str) -> str:
        return pair_key(self.config.model, prompt, item_text)

    def ask(self, pairs: dict[str, tuple[str, str]]) -> dict[str, JudgeReply]:
        """The verdict on each pair (key -> (prompt, item text)); cached answers are not asked again."""
        cache = RequestCache(self.cache_path, fsync_every=self.config.cache_fsync_every)
        try:
            out = {k: _verdict(cache.get(k)) for k in pairs if k in cache}
            self.cached = len(out)
            todo = {k: v for k, v in pairs.items() if k not in cache}
            if todo:
                with self._endpoints() as (base_urls, model):
                    errors = asyncio.run(self._send(todo, cache, base_urls, model))
                    if errors:
                        where = ", ".join(base_urls)
                        raise JudgeUnavailable(
                            f"the judge ({self.config.kind}, {model} at {where}) did not answer {len(errors)} of "
                            f"{len(todo)} question(s) after {self.config.retries.attempts} attempt(s): {errors[0]}. "
                            f"{len(cache)} answer(s) are kept in {self.cache_path}; run the same command again "
                            "to resume once the judge is reachable"
                        )
                out.update({k: _verdict(cache.get(k)) for k in todo})
        finally:
            cache.close()
        return out

    async def _send(
        self, todo: dict[str, tuple[str, str]], cache: RequestCache, base_urls: list[str], model: str
    ) -> list[str]:
        c = self.config
        client = ChatClient(
            base_urls=base_urls,
            api_key=self._api_key(),
            max_concurrency=c.max_concurrency,
            timeout_s=c.timeout_s,
            retries=c.retries,
        )
        errors: list[str] = []

        async def one(key: str, prompt: str, item_text: str) -> None:
            body = {
                "model": model,
                "messages": [{"role": "user", "content": JUDGE_PROMPT.format(a=item_text, b=prompt)}],
                "temperature": 0.0,
                "max_tokens": c.max_tokens,
            }
            answer = await client.complete(body)
            if answer.error is not None:
                errors.append(answer.error)
                return
            cache.put(key, {"answer": (answer.completion or "").strip()[:ANSWER_CHARS]})

        try:
            await asyncio.gather(*(one(k, p, t) for k, (p, t) in todo.items()))
        finally:
            self.sent += client.requests_sent
            await client.aclose()
        return errors

    def _api_key(self) -> str | None:
        name = getattr(self.config, "api_key_env", None)
        if name is None:
            return None
        key = os.environ.get(name)
        if not key:
            raise JudgeUnavailable(f"environment variable {name} (rephrase.judge.api_key_env) is not set")
        return key

    @contextlib.contextmanager
    def _endpoints(self) -> Iterator[tuple[list[str], str]]:
        c = self.config
        if isinstance(c, OpenAIJudgeConfig):
            yield list(c.base_urls), c.model
            return
        assert isinstance(c, VllmJudgeConfig)
        from tracekit.teachers.vllm_server import ManagedVllmServer

        server = ManagedVllmServer(
            model=c.model,
            engine=c.engine,
            startup_timeout_s=c.startup_timeout_s,
            env=c.env,
            log_path=self.log_dir / "vllm-judge.log" if self.log_dir else None,
        )
        with server as base_url:
            yield [base_url], server.served_model_name


def _verdict(cached: dict | None) -> JudgeReply:
    answer = str((cached or {}).get("answer") or "")
    return JudgeReply(same=parse_verdict(answer), answer=answer)
