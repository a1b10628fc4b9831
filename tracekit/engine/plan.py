"""The plan: a recipe turned into stages of datatrove steps, with every path taken from `BuildLayout`.

The engine wraps each stage's own steps with its bookkeeping: `CountRows` after the source reader,
before the trace writer and after finalize (progress counters, test fault points); the executor adds
the `Lifeline` first. The stages' steps never know about the engine.

A resample round is planned here too (`plan_round`): the per-trace stages of a widened recipe with a
`ResampleWindow` around the teacher, writing beside the first pass's shards, then the global stages
again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datatrove.pipeline.base import PipelineStep

from tracekit.engine.layout import BuildLayout
from tracekit.engine.progress import CountRows
from tracekit.engine.stages import Stage, round_name, stage_kinds
from tracekit.recipe import LoadedRecipe


@dataclass
class BuildPlan:
    loaded: LoadedRecipe
    layout: BuildLayout
    stages: list[Stage] = field(default_factory=list)
    strict: bool = False

    @property
    def out(self) -> Path:
        return self.layout.out


@dataclass(frozen=True)
class Round:
    """What a resample round changes in the per-trace stages: its number and the windows (before and
    after the teacher; `new_rows`: only rows not read before, for the prompts the select stage drops)."""

    number: int
    before_teacher: PipelineStep
    after_teacher: PipelineStep
    new_rows: PipelineStep | None = None

    @property
    def prefix(self) -> str:
        """Shard-name prefix of the round's traces (beside the first pass's in the same folder)."""
        return f"r{self.number:02d}-"


def output_dir(loaded: LoadedRecipe) -> Path:
    return loaded.resolve_path(loaded.recipe.output)


def layout_of(loaded: LoadedRecipe) -> BuildLayout:
    return BuildLayout(output_dir(loaded))


def stage_names(loaded: LoadedRecipe) -> list[str]:
    """The stages `plan_build` makes, without building their steps (the CLI only needs the names;
    building them would probe the sandbox and load verifiers in the CLI as well as in the build)."""
    r = loaded.recipe
    return stage_kinds(
        live_teacher=r.teacher.kind != "dataset",
        rewrite=r.rewrite,
        dedup=r.dedup,
        decontaminate=r.decontaminate,
        mix=r.mix,
        select=r.select,
    )


def has_global_stage(loaded: LoadedRecipe) -> bool:
    """Whether finalize joins what several stages wrote: anything decided over all traces at once
    (dedup, decontamination, mix), or the select stage's rows of dropped prompts beside the traces.

    Without one, the per-trace tasks write the final ledger and dataset shards themselves and the
    finalize stage only moves them into place: each trace is written once instead of twice.
    """
    r = loaded.recipe
    return any(cfg is not None for cfg in (r.dedup, r.decontaminate, r.mix, r.select))


def local_tokenizer(loaded: LoadedRecipe) -> str | None:
    """The recipe's tokenizer: a folder relative to the recipe if one exists there, else a Hub name."""
    tok = loaded.recipe.tokenizer
    if tok and (loaded.base_dir / tok).exists():
        return str(loaded.resolve_path(tok))
    return tok


def _workers(loaded: LoadedRecipe, tasks: int) -> int:
    w = getattr(loaded.recipe.executor, "workers", -1)
    if w is None or w <= 0:
        w = os.cpu_count() or 1
    return max(1, min(w, tasks))


def _verify_step(name: str, cfg: Any, layout: BuildLayout | None) -> Any:
    if name == "math":
        from tracekit.verify.math_step import MathVerifyStep

        return MathVerifyStep(config=cfg)
    if name == "llm":
        from tracekit.verify.llm_step import LLMVerifyStep

        return LLMVerifyStep(config=cfg, cache_dir=str(layout.judge_requests) if layout else None)
    from tracekit.verify.code_step import CodeVerifyStep

    return CodeVerifyStep(config=cfg)


def per_trace_steps(
    loaded: LoadedRecipe, layout: BuildLayout | None = None, *, filters: bool = True
) -> list[PipelineStep]:
    """parse -> verifiers (in the order of `verify:`) -> filters (in the order of `filters:`; left out
    with `filters=False`, for a student's answers)."""
    from tracekit.parse.step import ParseStep
    from tracekit.verify.config import VERIFIERS

    r = loaded.recipe
    steps: list[PipelineStep] = [ParseStep(tokenizer=local_tokenizer(loaded))]
    # verifiers in the recipe's order; a source with its own settings gets its own step
    order = [k for k in (loaded.raw.get("verify") or {}) if k in VERIFIERS]
    for src in r.sources:
        for k in VERIFIERS:
            if src.verify is not None and getattr(src.verify, k) is not None and k not in order:
                order.append(k)
    for name in order:
        own = {s.name: getattr(s.verify, name) for s in r.sources if s.verify and getattr(s.verify, name)}
        cfg = getattr(r.verify, name)
        if cfg is not None:
            step = _verify_step(name, cfg, layout)
            step.skip_sources = frozenset(own)
            steps.append(step)
        for src_name, src_cfg in own.items():
            step = _verify_step(name, src_cfg, layout)
            step.only_sources = frozenset({src_name})
            steps.append(step)
    if r.filters and filters:
        from tracekit.filters import build_filters

        steps.extend(build_filters(r.filters, tokenizer=local_tokenizer(loaded)))
    return steps


def teacher_step(loaded: LoadedRecipe, layout: BuildLayout) -> PipelineStep:
    """The recipe's teacher, its request cache and usage logs in the output folder."""
    from tracekit.teachers import build_teacher

    return build_teacher(
        loaded.recipe.teacher,
        sources=loaded.recipe.sources,
        cache_dir=str(layout.requests),
        usage_dir=str(layout.teacher_logs),
    )


def select_carry(loaded: LoadedRecipe) -> dict[str, dict[str, str]]:
    """Source columns the select stage needs besides the prompt's: {source: {metadata key: column}}."""
    from tracekit.select.config import ColumnPassRate, ReplayStudent, students_of, window_of
    from tracekit.select.pass_rate import PASS_RATE_KEY, student_key

    r = loaded.recipe
    cfg = r.select.pass_rate if r.select is not None else None
    if cfg is None:
        return {}
    if isinstance(cfg, ColumnPassRate):
        keys = {PASS_RATE_KEY: cfg.column}
    else:
        students = [s for _, s in students_of(cfg)]
        keys = {student_key(i): s.generations for i, s in enumerate(students) if isinstance(s, ReplayStudent)}
    sources = window_of(cfg).sources
    return {s.name: dict(keys) for s in r.sources if keys and (sources is None or s.name in sources)}


def select_steps(loaded: LoadedRecipe, layout: BuildLayout | None) -> list[PipelineStep]:
    """The select stage's own steps: pass rate (each student sampled and checked by the build's parse
    and verify steps, or the source's rate), then labels from the judge. Without a `layout` (an
    estimate) the students and judge keep no request cache and write no usage files."""
    from tracekit.select.config import (
        ColumnPassRate,
        VllmStudent,
        judge_teacher,
        student_teacher,
        students_of,
    )
    from tracekit.select.labels import LabelStep
    from tracekit.select.pass_rate import PassRateStep
    from tracekit.teachers import build_teacher

    r = loaded.recipe
    assert r.select is not None
    steps: list[PipelineStep] = []
    pr = r.select.pass_rate
    students = students_of(pr)
    if isinstance(pr, ColumnPassRate):
        steps.append(PassRateStep(config=pr))
    elif pr is not None:
        # each student answers the prompts as the sources render them, with its own sampling
        sources = [s.model_copy(update={"sampling": None}) for s in r.sources]
        teachers = [
            build_teacher(
                student_teacher(cfg),
                sources=sources,
                cache_dir=str(layout.select_requests(name)) if layout else None,
                usage_dir=str(layout.select_logs(name)) if layout else None,
            )
            for name, cfg in students
        ]
        checks = per_trace_steps(loaded, layout, filters=False)
        if isinstance(pr, list):
            steps.append(PassRateStep(config=pr, student=teachers, checks=checks))
        else:
            steps.append(PassRateStep(config=pr, student=teachers[0], checks=checks, student_name=pr.model))
    labels = r.select.labels
    if labels is not None:
        # the question is the whole user message: no source template, system prompt or sampling
        plain = {"prompt_template": None, "system_prompt": None, "sampling": None, "reasoning": True}
        judge = build_teacher(
            judge_teacher(labels.judge),
            sources=[s.model_copy(update=plain) for s in r.sources],
            cache_dir=str(layout.select_requests("judge")) if layout else None,
            usage_dir=str(layout.select_logs("judge")) if layout else None,
        )
        # a vLLM student and a vLLM judge would share the task's GPUs: the students finish first
        both_vllm = any(isinstance(s, VllmStudent) for _, s in students) and labels.judge.kind == "vllm"
        steps.append(LabelStep(config=labels, judge=judge, judge_name=labels.judge.model, after_upstream=both_vllm))
    return steps


def _with_local_paths(loaded: LoadedRecipe, cfg: Any) -> Any:
    """A copy of a decontamination config whose local paths are resolved against the recipe's folder."""
    from tracekit.decontam.config import BenchmarkEntry

    benches = (
        cfg.benchmarks
        if cfg.benchmarks == "eval"
        else [
            b.model_copy(update={"path": str(loaded.resolve_path(b.path))})
            if isinstance(b, BenchmarkEntry) and b.path
            else b
            for b in cfg.benchmarks
        ]
    )
    data_dir = str(loaded.resolve_path(cfg.data_dir)) if cfg.data_dir else None
    eval_config = str(loaded.resolve_path(cfg.eval_config)) if cfg.eval_config else None
    return cfg.model_copy(update={"benchmarks": benches, "data_dir": data_dir, "eval_config": eval_config})


def _per_trace_stages(
    loaded: LoadedRecipe, layout: BuildLayout, *, strict: bool, rnd: Round | None = None
) -> list[Stage]:
    """`sample` (and `verify` with a live teacher): sources -> teacher -> parse/verify/filters -> shards."""
    from tracekit.ledger.writer import TraceShardWriter
    from tracekit.sources.reader import SourceReader

    r = loaded.recipe
    tasks = r.executor.tasks
    workers = _workers(loaded, tasks)
    progress = str(layout.progress)

    def name(kind: str) -> str:
        return round_name(kind, rnd.number) if rnd else kind

    def writer(kind: str, folder: Any, *, final: bool = False, prefix: str = "") -> list[PipelineStep]:
        count = CountRows(folder=progress, counter=name(kind), key="rows", fault_point="write")
        return [
            count,
            TraceShardWriter(
                folder=str(layout.staged_ledger if final else folder),
                data_folder=str(layout.staged_data) if final else None,
                rows_per_file=r.rows_per_shard,
                compression=r.compression,
                prefix=prefix,
            ),
        ]

    read: list[PipelineStep] = [
        SourceReader(sources=r.sources, base_dir=str(loaded.base_dir), strict=strict, carry=select_carry(loaded)),
        CountRows(folder=progress, counter=name("read"), key="prompts", fault_point="read"),
    ]
    teach = [teacher_step(loaded, layout)]
    if rnd is not None:
        teach = [rnd.before_teacher, *teach, rnd.after_teacher]
    # no global stage: the last per-trace writer writes the final shards (never in a round: rounds mix)
    final = not has_global_stage(loaded)
    prefix = rnd.prefix if rnd else ""
    stages: list[Stage] = []
    if r.select is not None:  # select: the prompts the teacher gets, decided before it spends anything
        from tracekit.select.shards import SelectedPromptReader, SelectionSplit

        selected = layout.round_selected(rnd.number) if rnd else layout.selected
        pipeline = [
            *read,
            *([rnd.before_teacher] if rnd else []),
            *select_steps(loaded, layout),
            CountRows(folder=progress, counter=name("select"), key="rows", fault_point="select"),
            SelectionSplit(folder=str(selected), rows_per_file=r.rows_per_shard),
            *([rnd.new_rows] if rnd and rnd.new_rows else []),  # a dropped prompt is recorded once
            TraceShardWriter(folder=str(layout.traces), rows_per_file=r.rows_per_shard, prefix=f"{prefix}sel-"),
        ]
        stages.append(Stage(name("select"), pipeline, tasks, workers))
        read = [SelectedPromptReader(folder=str(selected))]
        teach = [teacher_step(loaded, layout), *([rnd.after_teacher] if rnd else [])]
    if r.teacher.kind == "dataset" and r.rewrite is None:  # replay: no GPU work, one pass does it all
        pipeline = [*read, *teach, *per_trace_steps(loaded, layout), *writer("sample", layout.traces, final=final, prefix=prefix)]
        return [*stages, Stage(name("sample"), pipeline, tasks, workers)]
    # live teachers: sampling on GPU tasks, (rewrite,) parse/verify/filters on CPU tasks
    from tracekit.ledger.reader import TraceShardReader

    sampled = layout.round_sampled(rnd.number) if rnd else layout.sampled
    stages.append(Stage(name("sample"), [*read, *teach, *writer("sample", sampled)], tasks, workers))
    if r.rewrite is not None:
        from tracekit.rewrite.step import RewriteStep

        rewritten = layout.round_rewritten(rnd.number) if rnd else layout.rewritten
        rewrite = RewriteStep(
            config=r.rewrite, cache_dir=str(layout.rewrite_requests), usage_dir=str(layout.teacher_logs)
        )
        pipeline = [TraceShardReader(folder=str(sampled)), rewrite, *writer("rewrite", rewritten)]
        stages.append(Stage(name("rewrite"), pipeline, tasks, workers))
        sampled = rewritten
    verify = [
        TraceShardReader(folder=str(sampled)),
        *per_trace_steps(loaded, layout),
        *writer("verify", layout.traces, final=final, prefix=prefix),
    ]
    stages.append(Stage(name("verify"), verify, tasks, workers))
    return stages


def _global_stages(loaded: LoadedRecipe, layout: BuildLayout, *, rnd: int = 0) -> list[Stage]:
    """dedup, decontam, mix: one task each, each writing its decision table."""
    r = loaded.recipe
    traces = str(layout.traces)
    stages: list[Stage] = []
    decided: list[str] = []

    def add(kind: str, step: PipelineStep) -> None:
        stages.append(Stage(round_name(kind, rnd) if rnd else kind, [step], 1, 1))
        decided.append(str(layout.decision(kind)))

    if r.dedup is not None:
        from tracekit.dedup.stage import DedupStage

        add("dedup", DedupStage(config=r.dedup, input_dir=traces, output_path=str(layout.decision("dedup"))))
    if r.decontaminate is not None:
        from tracekit.decontam.stage import DecontamStage

        cfg = _with_local_paths(loaded, r.decontaminate)
        step = DecontamStage(
            config=cfg,
            input_dir=traces,
            output_path=str(layout.decision("decontam")),
            judge_cache=str(layout.judge_answers),
            judge_log_dir=str(layout.judge_logs),
        )
        add("decontam", step)
    if r.mix is not None:
        from tracekit.mix.config import MixConfig
        from tracekit.mix.stage import MixStage

        step = MixStage(
            config=MixConfig.model_validate(r.mix),
            input_dir=traces,
            decision_paths=list(decided),
            output_path=str(layout.decision("mix")),
            shortfall_path=str(layout.shortfall),
        )
        add("mix", step)
    return stages


def decision_paths(loaded: LoadedRecipe, layout: BuildLayout) -> list[str]:
    """The decision tables finalize applies, in the order the global stages ran."""
    r = loaded.recipe
    kinds = [k for k, cfg in (("dedup", r.dedup), ("decontam", r.decontaminate), ("mix", r.mix)) if cfg]
    return [str(layout.decision(k)) for k in kinds]


def _finalize_stage(loaded: LoadedRecipe, layout: BuildLayout) -> Stage:
    from tracekit.ledger.finalize import FinalizeStep

    r = loaded.recipe
    staged = not has_global_stage(loaded)
    step = FinalizeStep(
        traces_dir=str(layout.traces),
        decision_paths=decision_paths(loaded, layout),
        ledger_dir=str(layout.ledger),
        data_dir=str(layout.dataset_data),
        compression=r.compression,
        staged_ledger_dir=str(layout.staged_ledger) if staged else None,
        staged_data_dir=str(layout.staged_data) if staged else None,
    )
    count = CountRows(
        folder=str(layout.progress), counter="finalize", key="rows", fault_point="finalize", weight="rows"
    )
    tasks = r.executor.tasks
    return Stage("finalize", [step, count], tasks, _workers(loaded, tasks))


def plan_build(loaded: LoadedRecipe, *, strict: bool = False) -> BuildPlan:
    """Every stage of the recipe's first pass, finalize last."""
    layout = layout_of(loaded)
    plan = BuildPlan(loaded=loaded, layout=layout, strict=strict)
    plan.stages = [
        *_per_trace_stages(loaded, layout, strict=strict),
        *_global_stages(loaded, layout),
        _finalize_stage(loaded, layout),
    ]
    return plan


def plan_round(plan: BuildPlan, widened: LoadedRecipe, rnd: Round) -> list[Stage]:
    """The stages of resample round `rnd`: the per-trace stages of the `widened` recipe (more prompts
    or more samples), keeping only what the round adds, then the global stages over every trace."""
    return [
        *_per_trace_stages(widened, plan.layout, strict=plan.strict, rnd=rnd),
        *_global_stages(widened, plan.layout, rnd=rnd.number),
    ]
