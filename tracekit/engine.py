"""The engine: recipe -> datatrove pipelines -> executor, and the output folder's life cycle.

Stages (each one a datatrove executor with its own `logs/<stage>/`, chained with `depends=`):

  sample    sources -> teacher -> parse -> verify -> filters -> work/traces/*.parquet   (tasks: N)
  dedup     work/traces -> work/decisions/dedup.parquet                                  (tasks: 1)
  decontam  work/traces -> work/decisions/decontam.parquet                               (tasks: 1)
  mix       work/traces + decisions -> work/decisions/mix.parquet                        (tasks: 1)
  finalize  work/traces + decisions -> ledger/*.parquet + dataset/data/*.parquet        (tasks: N)
  (no dedup/decontam/mix: sample writes final shards to work/final; finalize moves them)

A task that finished is never re-run (datatrove's completion markers); a task that was interrupted
is re-run whole and first removes what its earlier attempt wrote, so `kill -9` at any moment followed
by the same command gives exactly the rows of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from datatrove.pipeline.base import PipelineStep

from tracekit.lifeline import MAIN_PID_ENV, Lifeline, fault, fault_spec, wait_for_stragglers
from tracekit.recipe import LoadedRecipe
from tracekit.record import stable_hash
from tracekit.versions import tool_versions

MARKER = ".tracekit.json"


class OutputConflict(Exception):
    """The output folder holds a build of a different recipe."""


@dataclass
class Stage:
    name: str
    pipeline: list[PipelineStep]
    tasks: int
    workers: int


@dataclass
class BuildPlan:
    loaded: LoadedRecipe
    out: Path
    stages: list[Stage] = field(default_factory=list)

    @property
    def work(self) -> Path:
        return self.out / "work"


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
    for key in _TEACHER_RUNTIME_KEYS:  # where and how fast the teacher runs, not what it writes
        teacher.pop(key, None)
    if isinstance(teacher.get("engine"), dict):
        from tracekit.teachers.live import RUNTIME_ENGINE_ARGS

        teacher["engine"] = {k: v for k, v in teacher["engine"].items() if k not in RUNTIME_ENGINE_ARGS}
    return stable_hash(json.dumps(_without_nones(data), sort_keys=True), size=16)


def _without_nones(value: Any) -> Any:
    """Drop unset (None) keys, so a tracekit upgrade that adds an optional setting still resumes old builds."""
    if isinstance(value, dict):
        return {k: _without_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nones(v) for v in value]
    return value


def output_dir(loaded: LoadedRecipe) -> Path:
    return loaded.resolve_path(loaded.recipe.output)


def _workers(loaded: LoadedRecipe, tasks: int) -> int:
    w = getattr(loaded.recipe.executor, "workers", -1)
    if w is None or w <= 0:
        w = os.cpu_count() or 1
    return max(1, min(w, tasks))


def _verify_step(name: str, cfg: Any) -> Any:
    if name == "math":
        from tracekit.verify.math_step import MathVerifyStep

        return MathVerifyStep(config=cfg)
    from tracekit.verify.code_step import CodeVerifyStep

    return CodeVerifyStep(config=cfg)


def per_trace_steps(loaded: LoadedRecipe) -> list[PipelineStep]:
    """parse -> verifiers (in the order of `verify:`) -> filters (in the order of `filters:`)."""
    from tracekit.parse.step import ParseStep

    r = loaded.recipe
    steps: list[PipelineStep] = [ParseStep(tokenizer=local_tokenizer(loaded))]
    # verifiers in the recipe's order; a source with its own settings gets its own step
    order = [k for k in (loaded.raw.get("verify") or {}) if k in ("math", "code")]
    for src in r.sources:
        for k in ("math", "code"):
            if src.verify is not None and getattr(src.verify, k) is not None and k not in order:
                order.append(k)
    for name in order:
        own = {s.name: getattr(s.verify, name) for s in r.sources if s.verify and getattr(s.verify, name)}
        cfg = getattr(r.verify, name)
        if cfg is not None:
            step = _verify_step(name, cfg)
            step.skip_sources = frozenset(own)
            steps.append(step)
        for src_name, src_cfg in own.items():
            step = _verify_step(name, src_cfg)
            step.only_sources = frozenset({src_name})
            steps.append(step)
    if r.filters:
        from tracekit.filters import build_filters

        steps.extend(build_filters(r.filters, tokenizer=local_tokenizer(loaded)))
    return steps


def _with_local_paths(loaded: LoadedRecipe, cfg: Any) -> Any:
    """A copy of a decontamination config whose local paths are resolved against the recipe's folder."""
    from tracekit.decontam.config import BenchmarkEntry

    benches = [
        b.model_copy(update={"path": str(loaded.resolve_path(b.path))})
        if isinstance(b, BenchmarkEntry) and b.path
        else b
        for b in cfg.benchmarks
    ]
    data_dir = str(loaded.resolve_path(cfg.data_dir)) if cfg.data_dir else None
    return cfg.model_copy(update={"benchmarks": benches, "data_dir": data_dir})


def local_tokenizer(loaded: LoadedRecipe) -> str | None:
    """The recipe's tokenizer: a folder relative to the recipe if one exists there, else a Hub name."""
    tok = loaded.recipe.tokenizer
    if tok and (loaded.base_dir / tok).exists():
        return str(loaded.resolve_path(tok))
    return tok


def _writer(
    folder: Path,
    rows_per_file: int,
    progress: str,
    stage: str,
    *,
    final: bool = False,
    compression: str = "none",
) -> PipelineStep:
    from tracekit.ledger.writer import TraceShardWriter

    return TraceShardWriter(
        folder=str(folder),
        rows_per_file=rows_per_file,
        final=final,
        compression=compression,
        progress_dir=progress,
        progress_name=stage,
    )


def has_global_stage(loaded: LoadedRecipe) -> bool:
    """Whether anything is decided over all traces at once (dedup, decontamination, mix).

    Without one, the per-trace tasks write the final ledger and dataset shards themselves and the
    finalize stage only moves them into place: each trace is written once instead of twice.
    """
    r = loaded.recipe
    return any(cfg is not None for cfg in (r.dedup, r.decontaminate, r.mix))


def stage_names(loaded: LoadedRecipe) -> list[str]:
    """The stages `plan_build` makes, without building their steps (the CLI only needs the names;
    building them would probe the sandbox and load verifiers in the CLI as well as in the build)."""
    r = loaded.recipe
    names = ["sample"] + ([] if r.teacher.kind == "dataset" else ["verify"])
    names += [
        n for n, cfg in (("dedup", r.dedup), ("decontam", r.decontaminate), ("mix", r.mix)) if cfg is not None
    ]
    return [*names, "finalize"]


def plan_build(loaded: LoadedRecipe, *, strict: bool = False) -> BuildPlan:
    from tracekit.ledger.finalize import FinalizeStep
    from tracekit.sources.reader import SourceReader
    from tracekit.teachers import build_teacher

    r = loaded.recipe
    plan = BuildPlan(loaded=loaded, out=output_dir(loaded))
    tasks = r.executor.tasks
    workers = _workers(loaded, tasks)
    traces = plan.work / "traces"
    decisions = plan.work / "decisions"
    # no global stage: the last per-trace writer writes final shards into work/final
    staged = None if has_global_stage(loaded) else plan.work / "final"
    progress = str(plan.out / "logs" / "progress")
    reader = SourceReader(
        sources=r.sources, base_dir=str(loaded.base_dir), strict=strict, progress_dir=progress
    )

    def last_writer(stage: str) -> PipelineStep:  # writes what the global stages (or finalize) read
        return _writer(
            staged or traces, r.rows_per_shard, progress, stage, final=bool(staged), compression=r.compression
        )

    if r.teacher.kind == "dataset":  # replay: no GPU work, one pass does it all
        sample = [
            reader,
            build_teacher(loaded),
            *per_trace_steps(loaded),
            last_writer("sample"),
        ]
        plan.stages.append(Stage("sample", sample, tasks, workers))
    else:  # live teachers: sampling on GPU tasks, parse/verify/filters on CPU tasks
        from tracekit.ledger.reader import TraceShardReader

        sampled = plan.work / "sampled"
        sample = [reader, build_teacher(loaded), _writer(sampled, r.rows_per_shard, progress, "sample")]
        verify = [
            TraceShardReader(folder=str(sampled)),
            *per_trace_steps(loaded),
            last_writer("verify"),
        ]
        plan.stages.append(Stage("sample", sample, tasks, workers))
        plan.stages.append(Stage("verify", verify, tasks, workers))
    decision_paths: list[str] = []
    if r.dedup is not None:
        from tracekit.dedup.stage import DedupStage

        p = str(decisions / "dedup.parquet")
        step = DedupStage(config=r.dedup, input_dir=str(traces), output_path=p)
        plan.stages.append(Stage("dedup", [step], 1, 1))
        decision_paths.append(p)
    if r.decontaminate is not None:
        from tracekit.decontam.stage import DecontamStage

        p = str(decisions / "decontam.parquet")
        step = DecontamStage(
            config=_with_local_paths(loaded, r.decontaminate), input_dir=str(traces), output_path=p
        )
        plan.stages.append(Stage("decontam", [step], 1, 1))
        decision_paths.append(p)
    if r.mix is not None:
        from tracekit.mix.config import MixConfig
        from tracekit.mix.stage import MixStage

        p = str(decisions / "mix.parquet")
        step = MixStage(
            config=MixConfig.model_validate(r.mix),
            input_dir=str(traces),
            decision_paths=list(decision_paths),
            output_path=p,
        )
        plan.stages.append(Stage("mix", [step], 1, 1))
        decision_paths.append(p)
    fin = FinalizeStep(
        traces_dir=str(traces),
        decision_paths=decision_paths,
        ledger_dir=str(plan.out / "ledger"),
        dataset_dir=str(plan.out / "dataset"),
        compression=r.compression,
        staged_dir=str(staged) if staged else None,
        progress_dir=progress,
    )
    plan.stages.append(Stage("finalize", [fin], tasks, workers))
    return plan


def prepare_output(loaded: LoadedRecipe, *, overwrite: bool = False) -> Path:
    """Create (or re-open for resume) the output folder; refuse one written by another recipe."""
    out = output_dir(loaded)
    fp = fingerprint(loaded)
    marker = out / MARKER
    if out.exists() and any(out.iterdir()):
        if overwrite:
            shutil.rmtree(out)
        elif not marker.exists():
            raise OutputConflict(
                f"output folder {out} is not empty and was not written by tracekit; "
                "choose another `output:` or pass --overwrite"
            )
        else:
            old = json.loads(marker.read_text())
            if old.get("fingerprint") != fp:
                raise OutputConflict(
                    f"output folder {out} holds a build of a different recipe ({old.get('recipe_file')}, "
                    f"fingerprint {old.get('fingerprint')} != {fp}); its rows would be mixed with this one's. "
                    "Choose another `output:` or pass --overwrite to start over."
                )
    out.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        marker.write_text(
            json.dumps({"fingerprint": fp, "recipe_file": str(loaded.file), "name": loaded.recipe.name})
        )
    resolved = {**resolved_recipe(loaded), "tool_versions": tool_versions(), "fingerprint": fp}
    (out / "recipe.resolved.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True))
    return out


def run_plan(plan: BuildPlan, *, wait: bool = True) -> bool:
    """Run every stage in order (finished tasks are skipped), then drop the work folder.

    On Slurm with `wait=False` the stages are only submitted: returns False and leaves the work folder.
    """
    from tracekit.executors import ensure_not_running, make_executor, preload_step_modules, run_cluster_stages

    config = plan.loaded.recipe.executor
    if config.kind != "local":  # Slurm/Ray: stages chained on the cluster (tracekit/executors.py)
        ensure_not_running(plan.out / "logs")
    for f in plan.work.rglob(".tmp.*") if plan.work.exists() else []:
        f.unlink()
    if config.kind != "local":
        if not run_cluster_stages(config, plan.stages, logs_dir=plan.out / "logs", wait=wait):
            return False
    else:
        os.environ.setdefault(MAIN_PID_ENV, str(os.getpid()))  # the `tracekit build` command (runner.py)
        preload_step_modules(plan.stages)
        lock = plan.out / ".workers.lock"
        wait_for_stragglers(lock)
        spec = fault_spec()

        def run_stage(stage: Stage) -> None:
            pipeline = [Lifeline(lock_path=str(lock)), *stage.pipeline]
            staged = Stage(stage.name, pipeline, stage.tasks, stage.workers)
            make_executor(config, staged, logging_dir=plan.out / "logs" / stage.name).run()

        for stage in plan.stages:
            fault("stage", plan.stages.index(stage), spec if stage.name != "sample" else None)
            if stage.name == "finalize":  # mix `fill: resample`: sample more for short buckets first
                from tracekit.mix.resample import fill_short_buckets

                fill_short_buckets(plan, run_stage=run_stage)
            run_stage(stage)
    for done in ("traces", "final", "sampled", "requests", "rounds"):
        shutil.rmtree(plan.work / done, ignore_errors=True)
    from tracekit.publish.finish import finish_build

    finish_build(plan.out, publish=plan.loaded.recipe.publish)  # report + plots, card, push if asked
    return True
