"""Checks of a recipe beyond its schema: files exist, named columns exist in the sources."""

from __future__ import annotations

from tracekit.recipe.loader import LoadedRecipe, Problem
from tracekit.sources.base import peek_columns, source_files


def check_sources(loaded: LoadedRecipe) -> list[Problem]:
    problems: list[Problem] = []
    for i, src in enumerate(loaded.recipe.sources):
        if src.hub is not None:
            continue
        files = source_files(src, loaded.base_dir)
        missing = [f for f in files if not f.exists()]
        if not files or missing:
            where = missing[0] if missing else loaded.resolve_path(src.path or "")
            path: tuple[str | int, ...] = ("sources", i, "path")
            problems.append(Problem(path, f"file not found: {where}", loaded.line(path)))
            continue
        cols = peek_columns(src, loaded.base_dir)
        if cols is None:
            continue
        for key, col in src.columns.model_dump().items():
            if col is None or col in cols:
                continue
            if key == "prompt" and src.columns.messages and "prompt" not in src.columns.model_fields_set:
                continue  # the default prompt column is optional when messages carry the prompt
            path = ("sources", i, "columns", key)
            problems.append(
                Problem(path, f"column {col!r} does not exist in {files[0].name} (it has: {', '.join(cols)})", loaded.line(path))
            )
    return problems
