"""`mix: {fill: resample}`: go back to the teacher for short buckets until full or the sources run dry.

After the mix stage, if a bucket is short, each round widens what is sampled for the sources that can
feed a short bucket: first more prompts (a source's `limit` doubles: prompts not yet sampled), and
once no such source has more rows, more samples per prompt (the replay teacher's `max_generations`,
a live teacher's `sampling.n`, doubled). The round samples only the new work into its own folder,
moves those shards beside the first ones, then dedup, decontamination and the mix run again over
everything. Traces keep the ids they would have had in one big run (the teacher's config hash is the
recipe's), so a sample is never counted twice. Rounds are recorded in `work/decisions/resample.json`
and replayed as recorded when a build resumes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from tracekit.mix.stage import ledger_files, read_shortfall
from tracekit.record import LEDGER_SCHEMA

if TYPE_CHECKING:
    from tracekit.engine import BuildPlan, Stage
    from tracekit.mix.config import MixConfig
    from tracekit.recipe import LoadedRecipe
    from tracekit.sources.config import SourceConfig

Spec = dict[str, Any]  # {"limits": {source: int | None}, "samples": int | None, "sources": [names]}


def feeding_sources(sources: list[SourceConfig], mix: MixConfig, short: list[str]) -> list[str]:
    """Sources whose traces could satisfy a short bucket's predicate.

    Each predicate is evaluated on a row holding only what is known before sampling (source,
    domain, difficulty, reasoning); a predicate that is not FALSE there (TRUE or NULL) may hold.
    """
    preds = [b.where for b in mix.buckets if b.name in short]
    rows = []
    for s in sources:
        row: dict[str, Any] = dict.fromkeys(LEDGER_SCHEMA.names)
        row.update(source=s.name, domain=s.domain, difficulty=s.difficulty, reasoning_enabled=s.reasoning)
        row.update(filter_flags=[], contamination=[], prompt_messages=[])
        rows.append(row)
    table = pa.Table.from_pylist(rows, schema=LEDGER_SCHEMA)
    con = duckdb.connect()
    con.register("pseudo", table)
    any_pred = " OR ".join(f"(({p}) IS NOT FALSE)" for p in preds) or "false"
    names = [r[0] for r in con.execute(f"SELECT source FROM pseudo WHERE {any_pred}").fetchall()]
    con.close()
    return names


def _samples_field(loaded: LoadedRecipe) -> str | None:
    t = loaded.recipe.teacher
    if t.kind == "dataset":
        return "max_generations"
    return "n" if getattr(t, "sampling", None) is not None else None


def current_spec(loaded: LoadedRecipe) -> Spec:
    t = loaded.recipe.teacher
    field = _samples_field(loaded)
    samples = getattr(t, "max_generations", None) if field == "max_generations" else None
    if field == "n":
        samples = getattr(t, "sampling").n  # noqa: B009 (only live teachers have it)
    return {"limits": {s.name: s.limit for s in loaded.recipe.sources}, "samples": samples, "sources": []}


def apply_spec(loaded: LoadedRecipe, spec: Spec) -> LoadedRecipe:
    """A copy of the recipe sampling what `spec` says (limits per source, samples per prompt)."""
    from tracekit.recipe import LoadedRecipe

    r = loaded.recipe
    sources = [s.model_copy(update={"limit": spec["limits"].get(s.name, s.limit)}) for s in r.sources]
    teacher = r.teacher
    field = _samples_field(loaded)
    if field == "max_generations":
        teacher = teacher.model_copy(update={"max_generations": spec["samples"]})
    elif field == "n":
        sampling = getattr(teacher, "sampling").model_copy(update={"n": spec["samples"]})  # noqa: B009
        teacher = teacher.model_copy(update={"sampling": sampling})
    recipe = r.model_copy(update={"sources": sources, "teacher": teacher})
    return LoadedRecipe(recipe=recipe, file=loaded.file, lines=loaded.lines, raw=loaded.raw)


def widen(spec: Spec, *, feeding: list[str], dry: set[str], can_sample_more: bool) -> Spec | None:
    """The next round's spec: double the limits of feeding sources that still have rows; else double
    the samples per prompt; None when there is nothing more to ask for."""
    limits = dict(spec["limits"])
    grow = [s for s in feeding if limits.get(s) is not None and s not in dry]
    if grow:
        for s in grow:
            limits[s] = 2 * limits[s]
        return {"limits": limits, "samples": spec["samples"], "sources": grow}
    if can_sample_more and spec["samples"] is not None and feeding:
        return {"limits": limits, "samples": 2 * spec["samples"], "sources": list(feeding)}
    return None


class ResampleWindow(PipelineStep):
    """Keep only the work a resample round adds: prompts of `sources` that were not sampled before
    (row_index at or past the old limit), or, when samples per prompt grew, every prompt of those
    sources; after the teacher, samples that existed before are dropped."""

    type = "🔁 - RESAMPLE"
    name = "resample_window"

    def __init__(
        self,
        *,
        sources: list[str],
        old_limits: dict[str, int | None],
        old_samples: int | None,
        more_samples: bool,
        after_teacher: bool,
    ) -> None:
        super().__init__()
        self.sources = set(sources)
        self.old_limits = old_limits
        self.old_samples = old_samples
        self.more_samples = more_samples
        self.after_teacher = after_teacher

    def _is_new_row(self, md: dict[str, Any]) -> bool:
        limit = self.old_limits.get(md["source"])
        return limit is not None and int(md["row_index"]) >= limit

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        for doc in data or []:
            md = doc.metadata
            if md.get("source") not in self.sources:
                continue
            new_row = self._is_new_row(md)
            if not self.after_teacher:
                if new_row or self.more_samples:
                    yield doc
                continue
            old_sample = self.old_samples is None or int(md["sample_index"]) < self.old_samples
            if new_row or not old_sample:
                self.stat_update("new_traces")
                yield doc


def _round_stages(plan: BuildPlan, old: Spec, new: Spec, rnd: int) -> tuple[list[Stage], Path]:
    from tracekit.engine import Stage, plan_build
    from tracekit.ledger.writer import TraceShardWriter
    from tracekit.teachers import teacher_config_hash

    loaded = apply_spec(plan.loaded, new)
    fresh = plan_build(loaded)
    folder = plan.work / "rounds" / f"r{rnd}"
    more_samples = new["samples"] != old["samples"]
    window = {
        "sources": new["sources"],
        "old_limits": old["limits"],
        "old_samples": old["samples"],
        "more_samples": more_samples,
    }
    stages = []
    for st in fresh.stages:
        if st.name == "finalize":
            continue
        pipeline = list(st.pipeline)
        if st.name == "sample":
            teacher_at = next(
                i for i, p in enumerate(pipeline) if getattr(p, "config_hash", None) is not None
            )
            pipeline[teacher_at].config_hash = teacher_config_hash(plan.loaded)  # type: ignore[attr-defined]
            pipeline.insert(teacher_at + 1, ResampleWindow(**window, after_teacher=True))
            pipeline.insert(teacher_at, ResampleWindow(**window, after_teacher=False))
            writer = pipeline[-1]
            assert isinstance(writer, TraceShardWriter)
            # with a live teacher, sampling and verification are two stages (see engine.plan_build)
            out = folder / "sampled" if any(x.name == "verify" for x in fresh.stages) else folder
            pipeline[-1] = TraceShardWriter(
                folder=str(out), rows_per_file=writer.rows_per_file, progress_dir=writer.progress_dir
            )
        elif st.name == "verify":
            from tracekit.ledger.reader import TraceShardReader

            writer = pipeline[-1]
            assert isinstance(writer, TraceShardWriter)
            pipeline[0] = TraceShardReader(folder=str(folder / "sampled"))
            pipeline[-1] = TraceShardWriter(
                folder=str(folder), rows_per_file=writer.rows_per_file, progress_dir=writer.progress_dir,
                progress_name="verify",
            )
        stages.append(Stage(f"{st.name}-r{rnd}", pipeline, st.tasks, st.workers))
    return stages, folder


def _adopt(folder: Path, traces: Path, rnd: int) -> None:
    """Move a round's shards beside the first ones, under names that sort after them."""
    if not folder.exists():
        return
    for f in sorted(folder.glob("[0-9]*.parquet")):
        os.replace(f, traces / f"{rnd:02d}{f.name}")


def _traces_per_source(traces: Path) -> dict[str, int]:
    files = ledger_files(traces)
    if not files:
        return {}
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT source, count(*) FROM read_parquet({files!r}, union_by_name=true) GROUP BY 1"
    ).fetchall()
    con.close()
    return {s: n for s, n in rows}


def fill_short_buckets(plan: BuildPlan, *, run_stage: Callable[[Stage], None]) -> list[Spec]:
    """Run resample rounds until no bucket is short, the sources run dry, or `max_rounds` is reached.
    Returns the specs of the rounds run (empty unless the recipe's mix has `fill: resample`)."""
    mix = plan.loaded.recipe.mix
    if mix is None or mix.fill != "resample":
        return []
    decisions = plan.work / "decisions"
    traces = plan.work / "traces"
    log = decisions / "resample.json"
    history: list[Spec] = json.loads(log.read_text()) if log.exists() else []
    spec = current_spec(plan.loaded)
    dry: set[str] = set()
    can_sample_more = _samples_field(plan.loaded) is not None
    for rnd in range(1, mix.max_rounds + 1):
        short = [r["bucket"] for r in read_shortfall(decisions / "mix.parquet") or [] if r["short"] > 0]
        if not short:
            break
        if rnd <= len(history):
            new = history[rnd - 1]
        else:
            feeding = feeding_sources(plan.loaded.recipe.sources, mix, short)
            nxt = widen(spec, feeding=feeding, dry=dry, can_sample_more=can_sample_more)
            if nxt is None:
                break
            new = nxt
            history.append(new)
            log.write_text(json.dumps(history, indent=1))
        before = _traces_per_source(traces)
        stages, folder = _round_stages(plan, spec, new, rnd)
        per_trace = [st for st in stages if st.name.startswith(("sample-", "verify-"))]
        for st in per_trace:
            run_stage(st)
        _adopt(folder, traces, rnd)
        after = _traces_per_source(traces)
        grew = {s for s in new["sources"] if after.get(s, 0) > before.get(s, 0)}
        if new["samples"] != spec["samples"]:
            can_sample_more = bool(grew)  # more samples asked for and none came: the teacher has no more
        else:
            dry |= set(new["sources"]) - grew  # more rows asked for and none came: past the end
        for st in stages[len(per_trace) :]:
            run_stage(st)
        spec = new
    return history
