"""VllmTeacher (`teacher: {kind: vllm}`): a managed vLLM server per task, stopped when the task ends."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tracekit.sources.config import SourceConfig
from tracekit.teachers.config import VllmTeacherConfig
from tracekit.teachers.live import LiveTeacher


class VllmTeacher(LiveTeacher):
    """Starts `ManagedVllmServer` with the recipe's `engine` arguments, samples through it, stops it.

    One server per datatrove task: give each task its own GPUs (one task per node, or `env:
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
