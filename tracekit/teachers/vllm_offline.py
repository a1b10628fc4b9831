"""OfflineVllmEngine: vLLM's engine in this process, fed request by request and stepped until each finishes."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from loguru import logger

from tracekit.teachers.process_reaper import ProcessReaper, child_pids


class OfflineVllmEngine:
    """`vllm.LLM(model, **engine)` driven through its engine's `add_request`/`step` loop.

    Requests are chat-completion bodies, the very ones the server path POSTs: each one is rendered
    with the model's chat template (and its `chat_template_kwargs`) and turned into sampling
    parameters the way vLLM's OpenAI server does it (`ChatCompletionRequest.to_sampling_params`,
    with the model's generation-config defaults and the same `max_tokens` clamp), so both paths ask
    the engine for the same thing. `step()` returns the answers of the requests that finished, as
    `ChatAnswer` dicts (the completion is the raw text: `<think>` is split later by the parse stage).

    The engine core runs in a child process (vLLM V1); it is shut down when the block ends, also on
    errors, and a `ProcessReaper` stops it if this process is killed. Engine arguments that only the
    server knows (`host`, `port`, `uvicorn_log_level`, ...) are left out, with a log line.

    Example:
        with OfflineVllmEngine(model="/models/tiny", engine={"max_model_len": 2048}) as eng:
            eng.add("t1", {"messages": [{"role": "user", "content": "1+1?"}], "max_tokens": 16, "seed": 1})
            while eng.in_flight:
                for key, answer in eng.step():
                    print(key, answer["completion"], answer["finish_reason"])
    """

    def __init__(
        self, *, model: str, engine: dict[str, Any] | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.model = model
        self.engine_args = dict(engine or {})
        self.env = dict(env or {})
        self.llm: Any = None
        self.reaper: ProcessReaper | None = None
        self._added: dict[str, float] = {}  # request id -> time added
        self._defaults: dict[str, Any] = {}
        self._chat_template: str | None = None
        self.requests_sent = 0

    # ---- life ----
    def llm_kwargs(self) -> dict[str, Any]:
        """The engine arguments `vllm.LLM` accepts (server-only flags dropped)."""
        from vllm.engine.arg_utils import EngineArgs

        known = {f.name for f in dataclasses.fields(EngineArgs)}
        args = {k: v for k, v in self.engine_args.items() if k not in ("model", "chat_template")}
        dropped = sorted(k for k in args if k not in known)
        if dropped:
            logger.info(f"teacher: offline vLLM ignores server-only engine arguments {dropped}")
        return {k: v for k, v in args.items() if k in known}

    def start(self) -> None:
        os.environ.update(self.env)  # the engine core (a child) reads them when it starts
        from vllm import LLM

        template = self.engine_args.get("chat_template")
        if template is not None:  # as `vllm serve --chat-template`: a file or the template itself
            path = Path(str(template))
            self._chat_template = path.read_text() if path.is_file() else str(template)
        kwargs = self.llm_kwargs()
        before = child_pids()
        self.reaper = ProcessReaper()
        done = threading.Event()

        def _watch_children() -> None:  # the engine core appears while LLM() loads: reap it if we die now
            while not done.wait(0.2):
                for pid in child_pids() - before:
                    with contextlib.suppress(OSError, ValueError):
                        assert self.reaper is not None
                        self.reaper.add(pid)

        watcher = threading.Thread(target=_watch_children, name="tracekit-engine-watch", daemon=True)
        watcher.start()
        try:
            self.llm = LLM(model=self.model, **kwargs)
        finally:
            done.set()
            watcher.join()
            for pid in child_pids() - before:
                self.reaper.add(pid)
        self._defaults = self.llm.model_config.get_diff_sampling_param()

    def stop(self) -> None:
        llm, self.llm = self.llm, None
        if llm is not None:
            with contextlib.suppress(Exception):
                llm.llm_engine.engine_core.shutdown()
        if self.reaper is not None:
            self.reaper.reap_now()  # whatever the shutdown left behind
            self.reaper = None

    def __enter__(self) -> OfflineVllmEngine:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- requests ----
    @property
    def max_num_seqs(self) -> int:
        return int(self.llm.llm_engine.vllm_config.scheduler_config.max_num_seqs)

    @property
    def in_flight(self) -> int:
        return len(self._added)

    def add(self, request_id: str, body: dict[str, Any]) -> str | None:
        """Hand one chat-completion body to the engine; returns an error text if vLLM refuses it."""
        from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
        from vllm.entrypoints.serve.utils.api_utils import get_max_tokens

        self.requests_sent += 1
        try:
            req = ChatCompletionRequest.model_validate({"model": self.model, **body})
            # LLM.chat's own rendering: chat template + tokenisation without extra special tokens
            engine_input = self.llm._preprocess_chat_one(
                body["messages"],
                chat_template=req.chat_template or self._chat_template,
                chat_template_kwargs=req.chat_template_kwargs,
                add_generation_prompt=req.add_generation_prompt,
                continue_final_message=req.continue_final_message,
            )
            asked = (
                req.max_completion_tokens if req.max_completion_tokens is not None else body.get("max_tokens")
            )
            max_tokens = get_max_tokens(
                self.llm.model_config.max_model_len,
                asked,
                len(engine_input["prompt_token_ids"]),
                self._defaults,
                truncate_prompt_tokens=req.truncate_prompt_tokens,
            )
            params = req.to_sampling_params(max_tokens, self._defaults)
            self.llm.llm_engine.add_request(request_id, engine_input, params)
        except (ValueError, TypeError, KeyError) as e:  # what the server answers with HTTP 400
            return f"vLLM refused the request: {type(e).__name__}: {e}"
        self._added[request_id] = time.monotonic()
        return None

    def step(self) -> list[tuple[str, dict[str, Any]]]:
        """Run one engine step; the (request id, answer) of every request that finished in it."""
        done = []
        for out in self.llm.llm_engine.step():
            if not out.finished:
                continue
            t_added = self._added.pop(out.request_id, None)
            sample = out.outputs[0]
            answer: dict[str, Any] = {
                "completion": sample.text,
                "reasoning": None,
                "finish_reason": sample.finish_reason,
                "prompt_tokens": len(out.prompt_token_ids or []),
                "completion_tokens": len(sample.token_ids),
                "reasoning_tokens": None,
                "latency_s": None if t_added is None else time.monotonic() - t_added,
                "error": None,
                "attempts": 1,
            }
            if sample.finish_reason == "abort":
                answer["error"] = "request aborted by the vLLM engine"
                answer["finish_reason"] = "error"
            done.append((out.request_id, answer))
        return done
