"""LiveTeacher: the base of the teachers that sample (`vllm`, `openai`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import random
import threading
import time
from collections import deque
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from loguru import logger

from tracekit.record import seed_from_trace_id, stable_hash
from tracekit.sources.config import SourceConfig
from tracekit.teachers.base import Teacher, render_messages, template_hash
from tracekit.teachers.chat_client import ChatClient
from tracekit.teachers.config import LiveTeacherConfig, SamplingConfig
from tracekit.teachers.request_cache import RequestCache

# engine arguments that change how fast, not what, a model samples: left out of trace ids
RUNTIME_ENGINE_ARGS = frozenset(
    {
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "data_parallel_size",
        "gpu_memory_utilization",
        "max_num_seqs",
        "max_num_batched_tokens",
        "enable_prefix_caching",
        "enable_chunked_prefill",
        "port",
        "host",
        "disable_log_requests",
        "enable_log_requests",
        "disable_log_stats",
        "swap_space",
        "enforce_eager",
        "kv_cache_memory_bytes",
        "distributed_executor_backend",
        "uvicorn_log_level",
    }
)
NOT_SENT = ("n", "seed")  # n samples = n requests; seeds come from trace ids


class SourcePlan:
    """How one source's prompts are rendered and sampled (teacher defaults + the source's overrides)."""

    def __init__(self, teacher: LiveTeacherConfig, src: SourceConfig, base_hash: str) -> None:
        if src.reasoning:
            self.template = src.prompt_template or teacher.prompt_template
        else:
            self.template = src.prompt_template or teacher.general_prompt_template
        self.system_prompt = src.system_prompt if src.system_prompt is not None else teacher.system_prompt
        merged = {**teacher.sampling.model_dump(exclude_none=True), **(src.sampling or {})}
        self.sampling = SamplingConfig.model_validate(merged).model_dump(exclude_none=True)
        self.n: int = self.sampling["n"]
        self.template_hash = template_hash(self.system_prompt, self.template)
        # n is left out: sample i has the same id (and seed) whether 4 or 8 samples are asked for, so
        # asking for more later (mix `fill: resample`) re-uses the cached first ones
        per_sample = {k: v for k, v in self.sampling.items() if k != "n"}
        self.config_hash = stable_hash(
            "live", base_hash, self.template_hash, json.dumps(per_sample, sort_keys=True), src.reasoning
        )
        self.sampling_json = json.dumps(self.sampling, sort_keys=True)

    def body(
        self, model: str, messages: list[dict[str, str]], seed: int, max_tokens: int | None = None
    ) -> dict[str, Any]:
        b = {k: v for k, v in self.sampling.items() if k not in NOT_SENT}
        b.update(model=model, messages=messages, n=1, seed=seed)
        if max_tokens is not None:
            b["max_tokens"] = max_tokens
        return b


def live_config_hash(config: LiveTeacherConfig) -> str:
    """What decides the samples: model, revision, engine arguments that change outputs (not where or how fast)."""
    engine = getattr(config, "engine", {}) or {}
    semantic = {k: v for k, v in sorted(engine.items()) if k not in RUNTIME_ENGINE_ARGS}
    return stable_hash(
        "teacher", config.model, config.revision, json.dumps(semantic, sort_keys=True, default=str)
    )


class LoopThread:
    """An asyncio loop in a daemon thread; the pipeline thread submits coroutines and waits on futures."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="tracekit-teacher-loop", daemon=True
        )
        self.thread.start()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        async def _cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.submit(_cancel_all()).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


class LiveTeacher(Teacher):
    """Samples `n` traces per prompt from OpenAI-compatible endpoints, `n` requests per prompt.

    Each request's seed derives from its trace id (reruns reproduce; identical prompts in different rows
    differ). Answers are cached per task under `cache_dir` (see `RequestCache`): a task re-run after a
    crash or `kill -9` sends only the requests that had no answer yet. Traces come out in input order.
    Token totals (and cost, with a price table) are written to `usage_dir/usage-RANK.json`.
    Subclasses provide the endpoints (`endpoints()`: a context manager yielding base URLs).
    """

    name = "live"

    def __init__(
        self,
        *,
        config: LiveTeacherConfig,
        sources: list[SourceConfig],
        cache_dir: str | None = None,
        usage_dir: str | None = None,
    ) -> None:
        self.config = config
        base = live_config_hash(config)
        super().__init__(
            config_hash=base, model=config.model, sampling=config.sampling.model_dump(exclude_none=True)
        )
        self.plans = {s.name: SourcePlan(config, s, base) for s in sources}
        self.cache_dir = cache_dir
        self.usage_dir = usage_dir
        self.request_model = config.model  # the served model name (a managed server may rename it)
        self.last_usage: dict[str, Any] = {}  # usage of the last run() (read by `validate --estimate`)

    # ---- endpoints (subclasses) ----
    def endpoints(self, rank: int) -> contextlib.AbstractContextManager[list[str]]:
        raise NotImplementedError

    def api_key(self) -> str | None:
        return None

    # ---- rendering ----
    def render_for(self, prompt_doc: Document) -> list[dict[str, str]]:
        """The request messages of a prompt document, as they would be sent."""
        plan = self.plans[prompt_doc.metadata["source"]]
        return render_messages(
            prompt_doc.metadata["prompt"], system_prompt=plan.system_prompt, template=plan.template
        )

    # ---- sampling ----
    async def _sample(
        self, client: ChatClient, body: dict[str, Any], tid: str, cache: RequestCache | None
    ) -> dict[str, Any]:
        answer = await client.complete(body)
        answer_max = body.get("max_tokens")
        rt = self.config.retry_truncated
        if rt is not None and answer.error is None and answer.finish_reason == "length":
            answer = await client.complete({**body, "max_tokens": rt.max_tokens})
            answer_max = rt.max_tokens
        d = answer.to_dict()
        d["max_tokens"] = answer_max
        if cache is not None and answer.error is None:
            cache.put(tid, d)  # errors are not cached: a resumed run tries them again
        return d

    def _finish(
        self, trace: Document, plan: SourcePlan, answer: dict[str, Any], usage: dict[str, Any]
    ) -> Document:
        md = trace.metadata
        trace.text = answer.get("completion") or ""
        md["completion"] = trace.text
        if answer.get("reasoning") is not None:
            md["reasoning"] = answer["reasoning"]
        for k in (
            "finish_reason",
            "prompt_tokens",
            "completion_tokens",
            "reasoning_tokens",
            "latency_s",
            "error",
        ):
            md[k] = answer.get(k)
        if answer.get("error"):
            md["verdict"] = "error"
        if answer.get("max_tokens") not in (None, plan.sampling.get("max_tokens")):
            md["sampling"] = json.dumps({**plan.sampling, "max_tokens": answer["max_tokens"]}, sort_keys=True)
        usage["traces"] += 1
        if answer.get("error"):
            usage["errors"] += 1
            self.stat_update("teacher_errors")
        if answer.get("finish_reason") == "length":
            usage["truncated"] += 1
        for k in ("prompt_tokens", "completion_tokens"):
            v = answer.get(k) or 0
            usage[k] += v
            if v:
                self.stat_update(k, value=v)
        self.stat_update("traces")
        return trace

    def _end_run(
        self,
        rank: int,
        usage: dict[str, Any],
        cache: RequestCache | None,
        *,
        t0: float,
        t_ready: float,
        t_done: float | None,
    ) -> None:
        """Close the request cache and record the run's usage (sampling time without the engine's or
        server's start and stop)."""
        if cache is not None:
            cache.close()
        usage["wall_s"] = round(time.monotonic() - t0, 3)
        usage["sampling_s"] = round((t_done or time.monotonic()) - t_ready, 3)
        self.last_usage = usage
        self._write_usage(rank, usage)

    def _write_usage(self, rank: int, usage: dict[str, Any]) -> None:
        price = self.config.price
        if price is not None:
            usage["cost"] = (
                usage["prompt_tokens"] * price.prompt_per_million
                + usage["completion_tokens"] * price.completion_per_million
            ) / 1e6
        if self.usage_dir:
            p = Path(self.usage_dir)
            p.mkdir(parents=True, exist_ok=True)
            tmp = p / f".usage-{rank:05d}.json"
            tmp.write_text(json.dumps(usage, indent=1))
            os.replace(tmp, p / f"usage-{rank:05d}.json")

    def open_cache(self, rank: int) -> RequestCache | None:
        """The request cache of task `rank` (None without a cache folder)."""
        if not self.cache_dir:
            return None
        cache = RequestCache(
            Path(self.cache_dir) / f"{rank:05d}.jsonl", fsync_every=self.config.cache_fsync_every
        )
        if len(cache):
            logger.info(
                f"teacher: {len(cache)} answered requests found for task {rank}; they are not sent again"
            )
        return cache

    @staticmethod
    def new_usage() -> dict[str, Any]:
        keys = (
            "traces",
            "requests_sent",
            "cached",
            "errors",
            "truncated",
            "prompt_tokens",
            "completion_tokens",
        )
        return dict.fromkeys(keys, 0)

    def new_traces(self, prompt_doc: Document) -> Iterator[tuple[Document, SourcePlan]]:
        """The `n` empty traces of a prompt document (ids, seeds, rendered messages set)."""
        plan = self.plans[prompt_doc.metadata["source"]]
        msgs = self.render_for(prompt_doc)
        for i in range(plan.n):
            trace = self.new_trace(
                prompt_doc,
                i,
                completion="",
                prompt_messages=msgs,
                template_hash=plan.template_hash,
                config_hash=plan.config_hash,
                sampling_json=plan.sampling_json,
            )
            trace.metadata["teacher_revision"] = self.config.revision
            yield trace, plan

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        cache = self.open_cache(rank)
        usage = self.new_usage()
        t0 = t_ready = time.monotonic()
        t_done: float | None = None
        loop: LoopThread | None = None
        client: ChatClient | None = None
        try:
            with self.endpoints(rank) as base_urls:
                loop = LoopThread()

                async def _make() -> ChatClient:
                    return ChatClient(
                        base_urls=base_urls,
                        api_key=self.api_key(),
                        max_concurrency=self.config.max_concurrency,
                        timeout_s=self.config.timeout_s,
                        retries=self.config.retries,
                        rng=random.Random(rank),
                    )

                client = loop.submit(_make()).result()
                t_ready = time.monotonic()
                window_cap = max(64, 2 * self.config.max_concurrency * len(base_urls))
                window: deque[
                    tuple[Document, SourcePlan, concurrent.futures.Future[Any] | dict[str, Any]]
                ] = deque()

                def _ready() -> Iterator[Document]:
                    while window:
                        trace, plan, fut = window[0]
                        if isinstance(fut, concurrent.futures.Future):
                            if len(window) < window_cap and not fut.done():
                                return
                            answer = fut.result()
                        else:
                            answer = fut
                        window.popleft()
                        yield self._finish(trace, plan, answer, usage)

                for prompt_doc in data or []:
                    for trace, plan in self.new_traces(prompt_doc):
                        cached = cache.get(trace.id) if cache is not None else None
                        if cached is not None:
                            usage["cached"] += 1
                            window.append((trace, plan, cached))
                        else:
                            msgs = trace.metadata["prompt_messages"]
                            body = plan.body(self.request_model, msgs, seed_from_trace_id(trace.id))
                            window.append(
                                (trace, plan, loop.submit(self._sample(client, body, trace.id, cache)))
                            )
                        yield from _ready()
                window_cap = 0
                yield from _ready()
                t_done = time.monotonic()
        finally:
            if client is not None and loop is not None:
                usage["requests_sent"] = client.requests_sent
                with contextlib.suppress(Exception):
                    loop.submit(client.aclose()).result(timeout=10)
            if loop is not None:
                loop.close()
            self._end_run(rank, usage, cache, t0=t0, t_ready=t_ready, t_done=t_done)
