"""VllmTeacher (`teacher: {kind: vllm}`): vLLM per task (offline engine or managed server), stopped at its end."""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datatrove.data import Document, DocumentsPipeline

from tracekit.record import seed_from_trace_id
from tracekit.sources.config import SourceConfig
from tracekit.teachers.config import VllmTeacherConfig
from tracekit.teachers.live import LiveTeacher, SourcePlan
from tracekit.teachers.request_cache import RequestCache


class _Pending:
    """One trace in the offline window: its answer once known, or the request still in the engine."""

    __slots__ = ("answer", "body", "plan", "retried", "trace")

    def __init__(self, trace: Document, plan: SourcePlan, body: dict[str, Any] | None) -> None:
        self.trace, self.plan, self.body = trace, plan, body
        self.answer: dict[str, Any] | None = None
        self.retried = False


class _OfflineWindow:
    """A task's traces in input order, their requests in the offline engine.

    Every pending request is added to the engine (up to `cap` at once, so the scheduler always has
    work queued) and the engine is stepped; a trace's answer is cached the moment it finishes, and the
    answered traces leave from the head of the window, so the output keeps the input order. The window
    holds at most `8 * cap` traces behind an unfinished head. With `retry` set, a trace cut off at its
    token limit is asked once more with `retry.max_tokens`.
    """

    def __init__(
        self, eng: Any, *, cache: RequestCache | None, retry: Any, max_concurrency: int
    ) -> None:
        self.eng, self.cache, self.retry = eng, cache, retry
        self.cap = max(max_concurrency, 2 * eng.max_num_seqs)
        self.window_cap = 8 * self.cap
        self.window: deque[_Pending] = deque()
        self.in_engine: dict[str, _Pending] = {}

    def add(self, p: _Pending) -> None:
        self.window.append(p)
        if p.answer is None:
            self._send(p)

    def answered(self, *, more: bool) -> Iterator[_Pending]:
        """The answered traces at the head of the window, in order, after stepping the engine as far as
        needed; with `more=False` (no trace will be added) until the window is empty."""
        if more:
            self._wait(more=True)
            yield from self._head()
            return
        while self.window:
            if self.window[0].answer is None and not self.in_engine:
                raise RuntimeError("offline vLLM: a trace has no answer and no request in the engine")
            self._wait(more=False)
            yield from self._head()

    def _send(self, p: _Pending, max_tokens: int | None = None) -> None:
        assert p.body is not None
        body = p.body if max_tokens is None else {**p.body, "max_tokens": max_tokens}
        rid = f"{p.trace.id}#{2 if max_tokens is not None else 1}"
        err = self.eng.add(rid, body)
        if err is None:
            self.in_engine[rid] = p
        else:  # refused (e.g. prompt longer than the context): an error trace, not cached
            p.answer = {"completion": "", "finish_reason": "error", "error": err, "attempts": 1}

    def _step(self) -> None:
        rt = self.retry
        for rid, answer in self.eng.step():
            p = self.in_engine.pop(rid)
            if rt is not None and not p.retried and answer["finish_reason"] == "length":
                p.retried = True
                self._send(p, rt.max_tokens)
                continue
            answer["max_tokens"] = rt.max_tokens if p.retried and rt else p.body["max_tokens"]  # type: ignore[index]
            if self.cache is not None and answer["error"] is None:
                self.cache.put(p.trace.id, answer)
            p.answer = answer

    def _wait(self, *, more: bool) -> None:
        """Step while the engine is full, or while the window is full behind an unfinished head."""
        w = self.window
        while self.in_engine and (
            len(self.in_engine) >= self.cap
            or (w and w[0].answer is None and (not more or len(w) >= self.window_cap))
        ):
            self._step()

    def _head(self) -> Iterator[_Pending]:
        while self.window and self.window[0].answer is not None:
            yield self.window.popleft()


class VllmTeacher(LiveTeacher):
    """Samples from vLLM started for the task with the recipe's `engine` arguments, stopped at its end.

    `mode: offline` (default): `OfflineVllmEngine` in the task's process, every pending request added
    to the engine (up to `max(max_concurrency, 2 * max_num_seqs)` at once) and the engine stepped;
    each answer goes to the request cache the moment its request finishes. `mode: server`:
    `ManagedVllmServer`, requests over HTTP (LiveTeacher). Both render, seed and record alike.

    One engine per datatrove task: give each task its own GPUs (one task per node, or `env:
    {CUDA_VISIBLE_DEVICES: ...}` with one worker) and let `data_parallel_size` use a node's GPUs.
    Server logs go to `logs/teacher/vllm-RANK.log`.

    Example:
        VllmTeacher(config=VllmTeacherConfig(model="Qwen/QwQ-32B", engine={"tensor_parallel_size": 4}), sources=[...])
    """

    name = "vllm"
    backend = "vllm"

    def __init__(
        self,
        *,
        config: VllmTeacherConfig,
        sources: list[SourceConfig],
        cache_dir: str | None = None,
        usage_dir: str | None = None,
        log_dir: str | None = None,
    ) -> None:
        super().__init__(config=config, sources=sources, cache_dir=cache_dir, usage_dir=usage_dir)
        self.vllm_config = config
        self.log_dir = log_dir

    @contextlib.contextmanager
    def endpoints(self, rank: int) -> Iterator[list[str]]:
        from tracekit.teachers.vllm_server import ManagedVllmServer

        c = self.vllm_config
        server = ManagedVllmServer(
            model=c.model,
            engine=c.engine,
            startup_timeout_s=c.startup_timeout_s,
            env=c.env,
            log_path=Path(self.log_dir) / f"vllm-{rank:05d}.log" if self.log_dir else None,
        )
        self.request_model = server.served_model_name
        with server as base_url:
            yield [base_url]

    # ---- offline mode ----
    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        if self.vllm_config.mode == "server":
            yield from super().run(data, rank, world_size)
            return
        yield from self._run_offline(data, rank)

    def _run_offline(self, data: DocumentsPipeline, rank: int) -> Iterator[Document]:
        """Every trace of the task through the offline engine, yielded in input order (see `_OfflineWindow`)."""
        from tracekit.teachers.vllm_offline import OfflineVllmEngine

        c = self.vllm_config
        cache = self.open_cache(rank)
        usage = self.new_usage()
        t0 = t_ready = time.monotonic()
        t_done: float | None = None
        eng: OfflineVllmEngine | None = None
        try:
            with OfflineVllmEngine(model=c.model, engine=c.engine, env=c.env) as eng:
                t_ready = time.monotonic()
                window = _OfflineWindow(eng, cache=cache, retry=c.retry_truncated, max_concurrency=c.max_concurrency)
                for prompt_doc in data or []:
                    for trace, plan in self.new_traces(prompt_doc):
                        window.add(self._pending(trace, plan, cache, usage))
                        for p in window.answered(more=True):
                            yield self._finish(p.trace, p.plan, p.answer, usage)  # type: ignore[arg-type]
                for p in window.answered(more=False):
                    yield self._finish(p.trace, p.plan, p.answer, usage)  # type: ignore[arg-type]
                t_done = time.monotonic()
        finally:
            self._close_offline(cache, usage, eng, rank, t0, t_ready, t_done)

    def _pending(
        self, trace: Document, plan: SourcePlan, cache: RequestCache | None, usage: dict[str, Any]
    ) -> _Pending:
        """A trace for the window: answered from the request cache, or with the request to send."""
        cached = cache.get(trace.id) if cache is not None else None
        if cached is not None:
            usage["cached"] += 1
            p = _Pending(trace, plan, None)
            p.answer = cached
            return p
        body = plan.body(self.request_model, trace.metadata["prompt_messages"], seed_from_trace_id(trace.id))
        return _Pending(trace, plan, body)

    def _close_offline(
        self,
        cache: RequestCache | None,
        usage: dict[str, Any],
        eng: Any,
        rank: int,
        t0: float,
        t_ready: float,
        t_done: float | None,
    ) -> None:
        if eng is not None:
            usage["requests_sent"] = eng.requests_sent
        self._end_run(rank, usage, cache, t0=t0, t_ready=t_ready, t_done=t_done)
