"""Teachers: where traces come from (replay of existing traces, vLLM, OpenAI-compatible servers)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from datatrove.pipeline.base import PipelineStep

from tracekit.record import stable_hash

if TYPE_CHECKING:
    from tracekit.recipe import LoadedRecipe


def teacher_config_hash(loaded: LoadedRecipe) -> str:
    t = loaded.recipe.teacher
    return stable_hash("teacher", json.dumps(t.model_dump(mode="json"), sort_keys=True))


def build_teacher(loaded: LoadedRecipe) -> PipelineStep:
    """The teacher step a recipe asks for."""
    r = loaded.recipe
    t = r.teacher
    if t.kind == "dataset":
        from tracekit.teachers.replay import ReplayTeacher

        return ReplayTeacher(
            config_hash=teacher_config_hash(loaded), model=t.model, sources=r.sources, max_generations=t.max_generations
        )
    raise ValueError(f"unknown teacher kind {t.kind!r}")
