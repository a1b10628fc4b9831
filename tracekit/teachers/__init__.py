"""Teachers: where traces come from (replay of existing traces, vLLM, OpenAI-compatible servers)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from datatrove.pipeline.base import PipelineStep

from tracekit.record import stable_hash

if TYPE_CHECKING:
    from tracekit.sources.config import SourceConfig
    from tracekit.teachers.config import TeacherConfig


def teacher_config_hash(config: TeacherConfig) -> str:
    """Hash of the teacher settings that decide what sample i of a prompt is (not how many are taken)."""
    settings = config.model_dump(mode="json", exclude={"max_generations"})
    return stable_hash("teacher", json.dumps(settings, sort_keys=True))


def build_teacher(
    config: TeacherConfig,
    *,
    sources: list[SourceConfig],
    cache_dir: str | None = None,
    usage_dir: str | None = None,
) -> PipelineStep:
    """The teacher step of `config` over `sources`.

    Live teachers keep their request cache in `cache_dir` (resume) and write token totals to
    `usage_dir/usage-RANK.json` (and a managed vLLM server's logs next to them).
    """
    if config.kind == "dataset":
        from tracekit.teachers.replay import ReplayTeacher

        return ReplayTeacher(
            config_hash=teacher_config_hash(config),
            model=config.model,
            sources=sources,
            max_generations=config.max_generations,
        )
    if config.kind == "vllm":
        from tracekit.teachers.vllm_managed import VllmTeacher

        return VllmTeacher(
            config=config, sources=sources, log_dir=usage_dir, cache_dir=cache_dir, usage_dir=usage_dir
        )
    if config.kind == "openai":
        from tracekit.teachers.openai_compatible import OpenAITeacher

        return OpenAITeacher(config=config, sources=sources, cache_dir=cache_dir, usage_dir=usage_dir)
    raise ValueError(f"unknown teacher kind {config.kind!r}")
