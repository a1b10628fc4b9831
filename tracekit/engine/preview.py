"""What `tracekit validate` shows before a build: the first rendered prompt, and `--estimate N`."""

from __future__ import annotations

import random

from datatrove.data import Document

from tracekit.engine.plan import layout_of
from tracekit.recipe import LoadedRecipe
from tracekit.sources.reader import SourceReader
from tracekit.teachers import build_teacher
from tracekit.teachers.estimate import Estimate, measure_teacher


def first_prompt(loaded: LoadedRecipe) -> list[dict[str, str]] | None:
    """The first rendered request of the first source, as the teacher would see it."""
    sources = loaded.recipe.sources[:1]
    reader = SourceReader(sources=sources, base_dir=str(loaded.base_dir))
    layout = layout_of(loaded)
    teacher = build_teacher(loaded.recipe.teacher, sources=sources, usage_dir=str(layout.teacher_logs))
    for doc in reader.run(None, 0, 1):
        prompt_msgs = getattr(teacher, "render_for", None)
        if prompt_msgs is not None:
            return prompt_msgs(doc)
        for trace in teacher.run(iter([doc]), 0, 1):
            return list(trace.metadata["prompt_messages"])
        return [{"role": "user", "content": doc.metadata["prompt"]}]
    return None


def sample_prompts(loaded: LoadedRecipe, n: int, *, seed: int = 0) -> tuple[list[Document], dict[str, int]]:
    """A uniform sample of `n` prompt documents over every source (reservoir), and the prompt count per source."""
    rng = random.Random(seed)
    reservoir: list[Document] = []
    counts: dict[str, int] = {}
    reader = SourceReader(sources=loaded.recipe.sources, base_dir=str(loaded.base_dir))
    for seen, doc in enumerate(reader.run(None, 0, 1), start=1):
        counts[doc.metadata["source"]] = counts.get(doc.metadata["source"], 0) + 1
        if len(reservoir) < n:
            reservoir.append(doc)
        else:
            j = rng.randrange(seen)
            if j < n:
                reservoir[j] = doc
    return reservoir, counts


def estimate_recipe(loaded: LoadedRecipe, *, n: int, seed: int = 0) -> Estimate:
    """Sample `n` prompts (all their samples) with the recipe's teacher and project tokens, time and cost.

    Nothing is written to the recipe's output folder. Throughput is measured with at most `n x n_samples`
    requests in flight, so with a small `n` it (and so the wall time) is on the pessimistic side.

    Example:
        est = estimate_recipe(load_recipe("pipelines/r1-800k.yaml"), n=64)
        print(format_estimate(est))
    """
    t = loaded.recipe.teacher
    if t.kind == "dataset":
        raise ValueError(
            "teacher kind `dataset` replays existing traces: there is nothing to sample or estimate"
        )
    docs, counts = sample_prompts(loaded, n, seed=seed)
    return measure_teacher(t, loaded.recipe.sources, docs, counts)
