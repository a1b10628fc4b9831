"""OpenAITeacher (`teacher: {kind: openai}`): sample from OpenAI-compatible endpoints that already run."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from tracekit.sources.config import SourceConfig
from tracekit.teachers.config import OpenAITeacherConfig
from tracekit.teachers.live import LiveTeacher


class MissingApiKey(RuntimeError):
    """`api_key_env` names an environment variable that is not set."""


class OpenAITeacher(LiveTeacher):
    """Requests spread over `base_urls` (least busy first, `max_concurrency` in flight per endpoint).

    The API key is read from the environment variable named by `api_key_env` when the task starts;
    it is never stored on the step (so never in logs, pickles or the resolved recipe).

    Example:
        OpenAITeacher(config=OpenAITeacherConfig(base_urls=["http://localhost:8000/v1"], model="m"), sources=[...])
    """

    name = "openai"
    backend = "openai"

    def __init__(
        self,
        *,
        config: OpenAITeacherConfig,
        sources: list[SourceConfig],
        cache_dir: str | None = None,
        usage_dir: str | None = None,
    ) -> None:
        super().__init__(config=config, sources=sources, cache_dir=cache_dir, usage_dir=usage_dir)
        self.openai_config = config

    def api_key(self) -> str | None:
        name = self.openai_config.api_key_env
        if name is None:
            return None
        key = os.environ.get(name)
        if not key:
            raise MissingApiKey(f"environment variable {name} (teacher.api_key_env) is not set")
        return key

    @contextlib.contextmanager
    def endpoints(self, rank: int) -> Iterator[list[str]]:
        yield list(self.openai_config.base_urls)
