"""The resample loop of `mix: {fill: resample}`, run by the engine the same way on every executor.

After the first pass's mix, while a bucket is short: plan a round that asks for more (the next
`widen` of the round before: more prompts of the sources that can feed the bucket, then more samples
per prompt), run its stages on the build's runner (`sample-rN`, `verify-rN`, `dedup-rN`, ...,
`mix-rN`), and see what it brought. Stop when no bucket is short, the sources and the teacher have
nothing more, or `max_rounds` is reached. Rounds are recorded in `work/decisions/resample.json` and
replayed as recorded when a build resumes, so a resumed build asks for exactly what it asked before.
"""

from __future__ import annotations

import json
from typing import Any

from tracekit.engine.executors import StageRunner
from tracekit.engine.plan import BuildPlan, Round, plan_round
from tracekit.ledger.shards import count_by
from tracekit.mix.resample import Spec, feeding_sources, new_rows_step, widen, window_steps
from tracekit.mix.stage import read_shortfall
from tracekit.recipe import LoadedRecipe


def samples_field(loaded: LoadedRecipe) -> str | None:
    """The teacher setting that says how many samples a prompt gets (None: it cannot be raised).

    Not raised when the math verifier votes among a prompt's samples (`no_gold` / `gold_repair`): a
    round's new samples would be counted apart from the first ones, so rounds add prompts only.
    """
    r = loaded.recipe
    maths = [r.verify.math, *(s.verify.math for s in r.sources if s.verify is not None)]
    if any(m is not None and m.votes for m in maths):
        return None
    t = r.teacher
    if t.kind == "dataset":
        return "max_generations"
    return "n" if getattr(t, "sampling", None) is not None else None


def current_spec(loaded: LoadedRecipe) -> Spec:
    """What the recipe as written samples: each source's limit and the samples per prompt."""
    t: Any = loaded.recipe.teacher
    field = samples_field(loaded)
    samples = t.max_generations if field == "max_generations" else t.sampling.n if field == "n" else None
    return {"limits": {s.name: s.limit for s in loaded.recipe.sources}, "samples": samples, "sources": []}


def apply_spec(loaded: LoadedRecipe, spec: Spec) -> LoadedRecipe:
    """A copy of the recipe sampling what `spec` says (limits per source, samples per prompt)."""
    r = loaded.recipe
    sources = [s.model_copy(update={"limit": spec["limits"].get(s.name, s.limit)}) for s in r.sources]
    teacher: Any = r.teacher
    field = samples_field(loaded)
    if field == "max_generations":
        teacher = teacher.model_copy(update={"max_generations": spec["samples"]})
    elif field == "n":
        teacher = teacher.model_copy(update={"sampling": teacher.sampling.model_copy(update={"n": spec["samples"]})})
    recipe = r.model_copy(update={"sources": sources, "teacher": teacher})
    return LoadedRecipe(recipe=recipe, file=loaded.file, lines=loaded.lines, raw=loaded.raw)


def wants_resample(loaded: LoadedRecipe) -> bool:
    mix = loaded.recipe.mix
    return mix is not None and mix.fill == "resample"


def short_buckets(plan: BuildPlan) -> list[str]:
    return [r["bucket"] for r in read_shortfall(plan.layout.shortfall) or [] if r["short"] > 0]


def fill_short_buckets(plan: BuildPlan, runner: StageRunner) -> list[Spec]:
    """Run resample rounds until no bucket is short, the sources run dry, or `max_rounds` is reached.
    Returns the specs of the rounds run (empty unless the recipe's mix has `fill: resample`)."""
    mix = plan.loaded.recipe.mix
    if mix is None or not wants_resample(plan.loaded):
        return []
    layout = plan.layout
    log = layout.resample_log
    history: list[Spec] = json.loads(log.read_text()) if log.exists() else []
    spec = current_spec(plan.loaded)
    dry: set[str] = set()
    can_sample_more = samples_field(plan.loaded) is not None
    for number in range(1, mix.max_rounds + 1):
        short = short_buckets(plan)
        if not short:
            break
        if number <= len(history):  # a resumed build asks for what it asked before
            new = history[number - 1]
        else:
            feeding = feeding_sources(plan.loaded.recipe.sources, mix, short)
            nxt = widen(spec, feeding=feeding, dry=dry, can_sample_more=can_sample_more)
            if nxt is None:
                break
            new = nxt
            history.append(new)
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(json.dumps(history, indent=1))
        rnd = Round(number, *window_steps(spec, new), new_rows=new_rows_step(spec, new))
        runner.run(plan_round(plan, apply_spec(plan.loaded, new), rnd))
        added = count_by(layout.traces, "source", prefix=rnd.prefix)  # the round's shards hold only new traces
        grew = {s for s in new["sources"] if added.get(s, 0) > 0}
        if new["samples"] != spec["samples"]:
            can_sample_more = bool(grew)  # more samples asked for and none came: the teacher has no more
        else:
            dry |= set(new["sources"]) - grew  # more rows asked for and none came: past the end
        spec = new
    return history
