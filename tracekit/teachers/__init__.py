"""Teachers: where traces come from (replay of existing traces, vLLM, OpenAI-compatible servers)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from datatrove.pipeline.base import PipelineStep

from tracekit.record import stable_hash

if TYPE_CHECKING:
    from tracekit.recipe import LoadedRecipe


def teacher_config_hash(loaded: LoadedRecipe) -> str:
    """Hash of the teacher settings that decide what sample i of a prompt is (not how many are taken)."""
    t = loaded.recipe.teacher
    return stable_hash("teacher", json.dumps(t.model_dump(mode="json", exclude={"max_generations"}), sort_keys=True))


def build_teacher(loaded: LoadedRecipe) -> PipelineStep:
    """The teacher step a recipe asks for.

    Live teachers keep their request cache in `OUT/work/requests/` (resume) and write token totals to
    `OUT/logs/teacher/usage-RANK.json` (and managed vLLM logs next to them).
    """
    r = loaded.recipe
    t = r.teacher
    if t.kind == "dataset":
        from tracekit.teachers.replay import ReplayTeacher

        return ReplayTeacher(
            config_hash=teacher_config_hash(loaded),
            model=t.model,
            sources=r.sources,
            max_generations=t.max_generations,
        )
    from tracekit.engine import output_dir

    out = output_dir(loaded)
    dirs = {"cache_dir": str(out / "work" / "requests"), "usage_dir": str(out / "logs" / "teacher")}
    if t.kind == "vllm":
        from tracekit.teachers.vllm_managed import VllmTeacher

        return VllmTeacher(config=t, sources=r.sources, log_dir=dirs["usage_dir"], **dirs)
    if t.kind == "openai":
        from tracekit.teachers.openai_compatible import OpenAITeacher

        return OpenAITeacher(config=t, sources=r.sources, **dirs)
    raise ValueError(f"unknown teacher kind {t.kind!r}")
