"""The output folder's life cycle: a fingerprint of what the recipe builds, refusing a folder written by
another recipe, and the resolved recipe written beside the results."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from tracekit.engine.layout import BuildLayout
from tracekit.engine.plan import layout_of
from tracekit.recipe import LoadedRecipe
from tracekit.record import stable_hash
from tracekit.versions import tool_versions


class OutputConflict(Exception):
    """The output folder holds a build of a different recipe."""


def resolved_recipe(loaded: LoadedRecipe) -> dict[str, Any]:
    """The recipe with every default filled in (JSON-able)."""
    return loaded.recipe.model_dump(mode="json")


_TEACHER_RUNTIME_KEYS = (
    "base_urls",
    "api_key_env",
    "max_concurrency",
    "timeout_s",
    "retries",
    "cache_fsync_every",
    "startup_timeout_s",
    "env",
    "price",
)


def fingerprint(loaded: LoadedRecipe) -> str:
    """Identity of what a recipe builds: everything but where it runs and where it is pushed.

    Only the number of tasks of the executor counts (shards are cut by it); moving a build from local
    to Slurm, or changing workers or partitions, resumes it.
    """
    data = resolved_recipe(loaded)
    data["executor"] = {"tasks": data["executor"].get("tasks")}
    data.pop("publish", None)
    teacher = data["teacher"]
    tools = [data.get("rewrite") and data["rewrite"]["teacher"]]  # models used as tools, same rule
    tools += [v["llm"]["judge"] for v in [data["verify"], *(s.get("verify") for s in data["sources"])] if v and v.get("llm")]
    select = data.get("select") or {}
    students = select.get("pass_rate")  # the students (one block or a list), the labeller
    tools += [*(students if isinstance(students, list) else [students]), (select.get("labels") or {}).get("judge")]
    tools.append(((data.get("decontaminate") or {}).get("rephrase") or {}).get("judge"))
    for model in [teacher, *tools]:  # where and how fast they run, not what they write
        if isinstance(model, dict):
            _drop_runtime(model)
    return stable_hash(json.dumps(_without_nones(data), sort_keys=True), size=16)


def _drop_runtime(model: dict[str, Any]) -> None:
    for key in _TEACHER_RUNTIME_KEYS:
        model.pop(key, None)
    if isinstance(model.get("engine"), dict):
        from tracekit.teachers.live import RUNTIME_ENGINE_ARGS

        model["engine"] = {k: v for k, v in model["engine"].items() if k not in RUNTIME_ENGINE_ARGS}


def _without_nones(value: Any) -> Any:
    """Drop unset (None) keys, so a tracekit upgrade that adds an optional setting still resumes old builds."""
    if isinstance(value, dict):
        return {k: _without_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nones(v) for v in value]
    return value


def prepare_output(loaded: LoadedRecipe, *, overwrite: bool = False) -> Path:
    """Create (or re-open for resume) the output folder; refuse one written by another recipe."""
    layout = layout_of(loaded)
    out = layout.out
    fp = fingerprint(loaded)
    if out.exists() and any(out.iterdir()):
        if overwrite:
            shutil.rmtree(out)
        else:
            _refuse_other_builds(layout, fp)
    out.mkdir(parents=True, exist_ok=True)
    if not layout.marker.exists():
        layout.marker.write_text(
            json.dumps({"fingerprint": fp, "recipe_file": str(loaded.file), "name": loaded.recipe.name})
        )
    resolved = {**resolved_recipe(loaded), "tool_versions": tool_versions(), "fingerprint": fp}
    layout.resolved_recipe.write_text(yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True))
    return out


def _refuse_other_builds(layout: BuildLayout, fp: str) -> None:
    out = layout.out
    if not layout.marker.exists():
        raise OutputConflict(
            f"output folder {out} is not empty and was not written by tracekit; "
            "choose another `output:` or pass --overwrite"
        )
    old = json.loads(layout.marker.read_text())
    if old.get("fingerprint") != fp:
        raise OutputConflict(
            f"output folder {out} holds a build of a different recipe ({old.get('recipe_file')}, "
            f"fingerprint {old.get('fingerprint')} != {fp}); its rows would be mixed with this one's. "
            "Choose another `output:` or pass --overwrite to start over."
        )
