"""ChatClient: async chat-completion requests over one or many OpenAI-compatible endpoints."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from tracekit.teachers.config import RetryConfig

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass
class ChatAnswer:
    """What one request gave: the sample, or the error that remained after the retries."""

    completion: str = ""
    reasoning: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    latency_s: float | None = None
    error: str | None = None
    attempts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChatAnswer:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})  # type: ignore[arg-type]


class RetryableError(Exception):
    """A failure worth another try (timeout, 429, 5xx, dropped connection, cut-off body)."""


class Endpoint:
    def __init__(self, base_url: str, cap: int) -> None:
        self.base_url = base_url.rstrip("/")
        self.cap = cap
        self.in_flight = 0
        self.failures = 0


def parse_answer(data: dict[str, Any]) -> ChatAnswer:
    """A chat-completion response body -> ChatAnswer (reasoning from `reasoning_content`/`reasoning`)."""
    choice = data["choices"][0]
    msg = choice.get("message") or {}
    reasoning = msg.get("reasoning_content")
    if reasoning is None:
        reasoning = msg.get("reasoning")
    usage = data.get("usage") or {}
    details = usage.get("completion_tokens_details") or {}
    return ChatAnswer(
        completion=msg.get("content") or "",
        reasoning=reasoning,
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        reasoning_tokens=details.get("reasoning_tokens"),
    )


class ChatClient:
    """Sends chat-completion bodies, at most `max_concurrency` in flight per endpoint, to the least busy one.

    Timeouts, 429, 5xx, dropped connections and cut-off bodies are retried with exponential backoff
    and jitter (`RetryConfig`); other 4xx answers fail at once. A request that still fails comes back
    as a `ChatAnswer` with `error` set, never as an exception. The API key goes into the
    Authorization header only; errors never include it.

    Example:
        client = ChatClient(base_urls=["http://localhost:8000/v1"], max_concurrency=8)
        answer = await client.complete({"model": "m", "messages": [...], "max_tokens": 16})
        await client.aclose()
    """

    def __init__(
        self,
        *,
        base_urls: list[str],
        api_key: str | None = None,
        max_concurrency: int = 64,
        timeout_s: float = 3600.0,
        retries: RetryConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.endpoints = [Endpoint(u, max_concurrency) for u in base_urls]
        self.retries = retries or RetryConfig()
        self.timeout_s = timeout_s
        self.rng = rng or random.Random()
        self.requests_sent = 0
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        total = max_concurrency * len(base_urls)
        self._http = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 30.0)),
            limits=httpx.Limits(max_connections=total, max_keepalive_connections=total),
        )
        self._free: asyncio.Condition | None = None
        self._turn = 0

    async def _acquire(self) -> Endpoint:
        if self._free is None:
            self._free = asyncio.Condition()
        async with self._free:
            while True:
                open_ = [e for e in self.endpoints if e.in_flight < e.cap]
                if open_:
                    self._turn += 1
                    n = len(open_)
                    # least busy first (fewest recent failures breaks ties), rotating among equals
                    ep = min(
                        (open_[(self._turn + i) % n] for i in range(n)),
                        key=lambda e: (e.in_flight, e.failures),
                    )
                    ep.in_flight += 1
                    return ep
                await self._free.wait()

    async def _release(self, ep: Endpoint) -> None:
        assert self._free is not None
        async with self._free:
            ep.in_flight -= 1
            self._free.notify()

    async def _once(self, ep: Endpoint, body: dict[str, Any]) -> ChatAnswer:
        self.requests_sent += 1
        t0 = time.monotonic()
        try:
            r = await self._http.post(f"{ep.base_url}/chat/completions", json=body)
        except httpx.TimeoutException as e:
            raise RetryableError(
                f"timeout after {self.timeout_s:g}s ({type(e).__name__}) at {ep.base_url}"
            ) from e
        except httpx.TransportError as e:  # refused, reset, dropped mid-body
            raise RetryableError(f"connection error at {ep.base_url}: {type(e).__name__}: {e}") from e
        latency = time.monotonic() - t0
        if r.status_code in RETRY_STATUS or r.status_code >= 500:
            err = RetryableError(f"HTTP {r.status_code} from {ep.base_url}: {r.text[:200]}")
            err.retry_after = _retry_after(r)  # type: ignore[attr-defined]
            raise err
        if r.status_code != 200:
            return ChatAnswer(
                error=f"HTTP {r.status_code} from {ep.base_url}: {r.text[:500]}", finish_reason="error"
            )
        try:
            answer = parse_answer(r.json())
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise RetryableError(f"unreadable response from {ep.base_url}: {type(e).__name__}: {e}") from e
        answer.latency_s = latency
        return answer

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1-based): exponential, capped, jittered."""
        c = self.retries
        base = min(c.max_backoff_s, c.backoff_s * 2 ** (retry - 1))
        return base * (1 + c.jitter * (2 * self.rng.random() - 1))

    async def complete(self, body: dict[str, Any]) -> ChatAnswer:
        last = ""
        for attempt in range(1, self.retries.attempts + 1):
            ep = await self._acquire()
            try:
                answer = await self._once(ep, body)
                ep.failures = 0
                answer.attempts = attempt
                return answer
            except RetryableError as e:
                ep.failures += 1
                last = str(e)
                wait = getattr(e, "retry_after", None)
            finally:
                await self._release(ep)
            if attempt < self.retries.attempts:
                delay = self.backoff(attempt)
                if wait is not None:
                    delay = min(max(delay, wait), self.retries.max_backoff_s)
                await asyncio.sleep(delay)
        return ChatAnswer(
            error=f"failed after {self.retries.attempts} attempts: {last}",
            finish_reason="error",
            attempts=self.retries.attempts,
        )

    async def aclose(self) -> None:
        await self._http.aclose()


def _retry_after(r: httpx.Response) -> float | None:
    v = r.headers.get("retry-after")
    try:
        return float(v) if v is not None else None
    except ValueError:
        return None
