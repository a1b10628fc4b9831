"""What `tracekit validate` shows before a build: the first rendered prompt, and `--estimate N`."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from datatrove.data import Document

from tracekit.engine.plan import layout_of, select_carry, select_steps
from tracekit.recipe import LoadedRecipe
from tracekit.sources.reader import SourceReader
from tracekit.teachers import build_teacher
from tracekit.teachers.estimate import Estimate, format_estimate, measure_teacher, project
from tracekit.teachers.live import LiveTeacher


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
    reader = SourceReader(sources=loaded.recipe.sources, base_dir=str(loaded.base_dir), carry=select_carry(loaded))
    for seen, doc in enumerate(reader.run(None, 0, 1), start=1):
        counts[doc.metadata["source"]] = counts.get(doc.metadata["source"], 0) + 1
        if len(reservoir) < n:
            reservoir.append(doc)
        else:
            j = rng.randrange(seen)
            if j < n:
                reservoir[j] = doc
    return reservoir, counts


@dataclass
class RecipeEstimate:
    """The teacher's projection, and with `select:` the student's and the judge's (what selecting costs)
    and how many of the sampled prompts selection kept (the teacher's projection counts only those)."""

    teacher: Estimate | None
    students: list[tuple[str, Estimate]] = field(default_factory=list)  # (block name, projection) per live student
    judge: Estimate | None = None
    selected: tuple[int, int] | None = None  # (kept, sampled) prompts

    def parts(self) -> list[tuple[str, Estimate]]:
        named = [*((f"select: {s}", e) for s, e in self.students), ("select: judge", self.judge), ("teacher", self.teacher)]
        return [(name, e) for name, e in named if e is not None]

    def format(self) -> str:
        """Each part as `format_estimate` writes it; with selection, the share kept and the totals."""
        if self.selected is None and self.teacher is not None:
            return format_estimate(self.teacher)
        lines = []
        for name, e in self.parts():
            lines += [f"## {name}", format_estimate(e), ""]
        if self.selected is not None:
            kept, seen = self.selected
            lines.append(
                f"selection kept {kept} of {seen} sampled prompts ({kept / max(seen, 1):.0%}); "
                "the teacher's projection counts that share of each source's prompts"
            )
        hours = [e.gpu_hours for _, e in self.parts() if e.gpu_hours is not None]
        costs = [e.cost for _, e in self.parts() if e.cost is not None]
        if len(self.parts()) > 1 and hours:
            lines.append(f"GPU-hours, all parts      {sum(hours):.2f}")
        if len(self.parts()) > 1 and costs:
            lines.append(f"cost, all parts           {sum(costs):.2f}")
        return "\n".join(lines).rstrip()


def _live_models(step: Any) -> list[tuple[str, Any]]:
    """The live teachers inside a select step, named as their estimate blocks (replayed students and a
    source's pass rate have none)."""
    from tracekit.select.config import students_of
    from tracekit.select.pass_rate import PassRateStep

    if isinstance(step, PassRateStep):
        names = [f"{n} ({cfg.model})" if step.several else n for n, cfg in students_of(step.config)]
        models = [(n, m) for n, (_, m, _) in zip(names, step.students, strict=True)]
    else:
        models = [("judge", getattr(step, "judge", None))]
    return [(n, m) for n, m in models if isinstance(m, LiveTeacher)]


def estimate_recipe(loaded: LoadedRecipe, *, n: int, seed: int = 0) -> RecipeEstimate:
    """Sample `n` prompts (all their samples) with the recipe's teacher and project tokens, time and cost.

    With `select:`, the students (and the judge) run first on the same prompts, and the teacher samples
    only the ones they keep; each student's and the judge's costs are projected to every prompt they see.
    Nothing is written to the recipe's output folder. Throughput is measured with at most
    `n x n_samples` requests in flight, so with a small `n` it (and so the wall time) is on the
    pessimistic side.

    Example:
        est = estimate_recipe(load_recipe("pipelines/r1-800k.yaml"), n=64)
        print(est.format())
    """
    from tracekit.select.base import is_dropped
    from tracekit.select.labels import LabelStep
    from tracekit.select.pass_rate import PassRateStep

    r = loaded.recipe
    t = r.teacher
    if t.kind == "dataset" and (r.select is None or not select_spends(loaded)):
        raise ValueError(
            "teacher kind `dataset` replays existing traces: there is nothing to sample or estimate"
        )
    docs, counts = sample_prompts(loaded, n, seed=seed)
    est = RecipeEstimate(teacher=None)
    if r.select is not None:
        seen = {name: 0 for name in counts}
        for d in docs:
            seen[d.metadata["source"]] += 1
        stream: list[Document] = list(docs)
        for step in select_steps(loaded, None):
            asked = sum(1 for d in stream if step.wants(d))  # before the step marks its drops
            stream = list(step.run(iter(stream), 0, 1))
            share = asked / max(len(docs), 1)
            scale = len(r.select.labels.ask) if isinstance(step, LabelStep) and r.select.labels else 1
            for name, model in _live_models(step):  # every student sees every prompt the step asks about
                part = project(
                    model,
                    model.config,
                    traces=int(model.last_usage.get("traces", 0)),
                    sampled_prompts=asked,
                    counts={k: round(v * share) * scale for k, v in counts.items()},
                )
                if isinstance(step, PassRateStep):
                    est.students.append((name, part))
                else:
                    est.judge = part
        docs = [d for d in stream if not is_dropped(d)]
        est.selected = (len(docs), sum(seen.values()))
        kept = {name: 0 for name in counts}
        for d in docs:
            kept[d.metadata["source"]] += 1
        counts = {k: round(v * kept[k] / seen[k]) if seen[k] else v for k, v in counts.items()}
    if t.kind != "dataset":
        est.teacher = measure_teacher(t, r.sources, docs, counts)
    return est


def select_spends(loaded: LoadedRecipe) -> bool:
    """Whether the recipe's selection runs a model (a live student or a judge)."""
    from tracekit.select.config import OpenAIStudent, VllmStudent, students_of

    sel = loaded.recipe.select
    if sel is None:
        return False
    return sel.labels is not None or any(isinstance(s, VllmStudent | OpenAIStudent) for _, s in students_of(sel.pass_rate))
