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
        from tracekit.teachers.vllm_offline import OfflineVllmEngine

        c = self.vllm_config
        cache = self.open_cache(rank)
        usage = self.new_usage()
        rt = c.retry_truncated
        t0 = t_ready = time.monotonic()
        t_done: float | None = None
        eng: OfflineVllmEngine | None = None
        try:
            with OfflineVllmEngine(model=c.model, engine=c.engine, env=c.env) as eng:
                t_ready = time.monotonic()
                cap = max(c.max_concurrency, 2 * eng.max_num_seqs)  # the scheduler always has work queued
                window_cap = 8 * cap  # traces held for in-order output while a long one finishes
                window: deque[_Pending] = deque()
                in_engine: dict[str, _Pending] = {}

                def _send(p: _Pending, max_tokens: int | None = None) -> None:
                    assert eng is not None and p.body is not None
                    body = p.body if max_tokens is None else {**p.body, "max_tokens": max_tokens}
                    rid = f"{p.trace.id}#{2 if max_tokens is not None else 1}"
                    err = eng.add(rid, body)
                    if err is None:
                        in_engine[rid] = p
                    else:  # refused (e.g. prompt longer than the context): an error trace, not cached
                        p.answer = {"completion": "", "finish_reason": "error", "error": err, "attempts": 1}

                def _step() -> None:
                    assert eng is not None
                    for rid, answer in eng.step():
                        p = in_engine.pop(rid)
                        if rt is not None and not p.retried and answer["finish_reason"] == "length":
                            p.retried = True
                            _send(p, rt.max_tokens)
                            continue
                        answer["max_tokens"] = rt.max_tokens if p.retried and rt else p.body["max_tokens"]  # type: ignore[index]
                        if cache is not None and answer["error"] is None:
                            cache.put(p.trace.id, answer)
                        p.answer = answer

                def _ready() -> Iterator[Document]:
                    while window and window[0].answer is not None:
                        p = window.popleft()
                        assert p.answer is not None
                        yield self._finish(p.trace, p.plan, p.answer, usage)

                def _wait(more: bool) -> None:
                    # step while the engine is full, or while the window is full behind an unfinished head
                    while in_engine and (
                        len(in_engine) >= cap
                        or (window and window[0].answer is None and (not more or len(window) >= window_cap))
                    ):
                        _step()

                for prompt_doc in data or []:
                    for trace, plan in self.new_traces(prompt_doc):
                        cached = cache.get(trace.id) if cache is not None else None
                        if cached is not None:
                            usage["cached"] += 1
                            p = _Pending(trace, plan, None)
                            p.answer = cached
                            window.append(p)
                        else:
                            msgs = trace.metadata["prompt_messages"]
                            p = _Pending(
                                trace, plan, plan.body(self.request_model, msgs, seed_from_trace_id(trace.id))
                            )
                            window.append(p)
                            _send(p)
                        _wait(more=True)
                        yield from _ready()
                while window:
                    if window[0].answer is None and not in_engine:
                        raise RuntimeError("offline vLLM: a trace has no answer and no request in the engine")
                    _wait(more=False)
                    yield from _ready()
                t_done = time.monotonic()
        finally:
            self._close_offline(cache, usage, eng, rank, t0, t_ready, t_done)

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
