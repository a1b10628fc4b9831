"""EndpointCalls: a pipeline step's requests to a tool model (a judge, a rewriter), from synchronous code.

The step hands over items in order, each with the messages to send (or none: the item passes without
a request); answers come back in the same order. Requests run concurrently on an event loop in a
thread (the teacher's `ChatClient`: retries, backoff, several endpoints), at most `window` items are
held at once, and every answer is cached by key as it arrives, so a task re-run after a crash sends
only what had no answer yet. Token totals (and cost, with a price) go to `usage_path`.

    >>> calls = EndpointCalls(config=cfg, cache_path=None)  # doctest: +SKIP
    >>> with calls:  # doctest: +SKIP
    ...     for doc, answer in calls.answers([(doc, doc.id, [{"role": "user", "content": "hi"}])]):
    ...         print(answer["completion"])
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import random
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from tracekit.record import seed_from_trace_id
from tracekit.teachers.chat_client import ChatClient
from tracekit.teachers.config import EndpointModelConfig
from tracekit.teachers.live import LoopThread
from tracekit.teachers.request_cache import RequestCache

T = TypeVar("T")
Messages = list[dict[str, str]]


class MissingKey(RuntimeError):
    """`api_key_env` names an environment variable that is not set."""


class EndpointCalls:
    """Ordered, concurrent, cached chat requests to one tool model (see the module docstring)."""

    def __init__(
        self,
        *,
        config: EndpointModelConfig,
        cache_path: Path | None = None,
        usage_path: Path | None = None,
        rank: int = 0,
        window: int | None = None,
    ) -> None:
        self.config = config
        self.cache_path = cache_path
        self.usage_path = usage_path
        self.rank = rank
        self.window = window or max(64, 2 * config.max_concurrency * len(config.base_urls))
        self.usage: dict[str, Any] = dict.fromkeys(
            ("requests", "cached", "errors", "prompt_tokens", "completion_tokens"), 0
        )
        self._loop: LoopThread | None = None
        self._client: ChatClient | None = None
        self._cache: RequestCache | None = None

    def _api_key(self) -> str | None:
        name = self.config.api_key_env
        if name is None:
            return None
        key = os.environ.get(name)
        if not key:
            raise MissingKey(f"environment variable {name} (api_key_env of {self.config.model!r}) is not set")
        return key

    def __enter__(self) -> EndpointCalls:
        key = self._api_key()
        self._cache = RequestCache(self.cache_path) if self.cache_path is not None else None
        self._loop = LoopThread()
        c = self.config

        async def make() -> ChatClient:
            return ChatClient(
                base_urls=c.base_urls,
                api_key=key,
                max_concurrency=c.max_concurrency,
                timeout_s=c.timeout_s,
                retries=c.retries,
                rng=random.Random(self.rank),
            )

        self._client = self._loop.submit(make()).result()
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is not None and self._loop is not None:
            self.usage["requests"] = self._client.requests_sent
            with contextlib.suppress(Exception):  # a client whose loop is gone has nothing left to release
                self._loop.submit(self._client.aclose()).result(timeout=10)
        if self._loop is not None:
            self._loop.close()
        if self._cache is not None:
            self._cache.close()
        self._write_usage()

    def body(self, key: str, messages: Messages) -> dict[str, Any]:
        """The request sent for one item: the config's sampling, one answer, a seed from the key."""
        msgs = ([{"role": "system", "content": self.config.system_prompt}] if self.config.system_prompt else []) + messages
        seed = seed_from_trace_id(key) if all(ch in "0123456789abcdef" for ch in key[:15]) else None
        b: dict[str, Any] = {**self.config.sampling, "model": self.config.model, "messages": msgs, "n": 1}
        if seed is not None and "seed" not in b:
            b["seed"] = seed
        return b

    async def _ask(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self._client is not None
        answer = (await self._client.complete(body)).to_dict()
        if self._cache is not None and answer.get("error") is None:
            self._cache.put(key, answer)  # errors are not cached: a re-run tries them again
        return answer

    def answers(
        self, items: Iterable[tuple[T, str | None, Messages | None]]
    ) -> Iterator[tuple[T, dict[str, Any] | None]]:
        """(item, key, messages) in, (item, answer) out in the same order; no messages: answer None.

        An answer is a `ChatAnswer` dict: `completion`, `finish_reason`, token counts, and `error` when
        the request still failed after its retries.
        """
        assert self._loop is not None, "use EndpointCalls as a context manager"
        held: deque[tuple[T, concurrent.futures.Future[Any] | dict[str, Any] | None]] = deque()

        def ready(limit: int) -> Iterator[tuple[T, dict[str, Any] | None]]:
            while held:
                item, fut = held[0]
                if isinstance(fut, concurrent.futures.Future):
                    if len(held) < limit and not fut.done():
                        return
                    answer: dict[str, Any] | None = fut.result()
                else:
                    answer = fut
                held.popleft()
                if answer is not None:
                    self._count(answer)
                yield item, answer

        for item, key, messages in items:
            if messages is None or key is None:
                held.append((item, None))
            elif self._cache is not None and (cached := self._cache.get(key)) is not None:
                self.usage["cached"] += 1
                held.append((item, cached))
            else:
                held.append((item, self._loop.submit(self._ask(key, self.body(key, messages)))))
            yield from ready(self.window)
        yield from ready(0)

    def _count(self, answer: dict[str, Any]) -> None:
        if answer.get("error"):
            self.usage["errors"] += 1
        for k in ("prompt_tokens", "completion_tokens"):
            self.usage[k] += answer.get(k) or 0

    def _write_usage(self) -> None:
        if self.usage_path is None:
            return
        price = self.config.price
        if price is not None:
            self.usage["cost"] = (
                self.usage["prompt_tokens"] * price.prompt_per_million
                + self.usage["completion_tokens"] * price.completion_per_million
            ) / 1e6
        self.usage_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.usage_path.with_name(f".{self.usage_path.name}")
        tmp.write_text(json.dumps({"model": self.config.model, **self.usage}, indent=1))
        os.replace(tmp, self.usage_path)
