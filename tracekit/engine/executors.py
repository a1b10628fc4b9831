"""Run a list of stages on the recipe's executor (`executor:`): one interface, three kinds.

- local: datatrove's LocalPipelineExecutor, stage after stage, each task tied to the build process
  (`Lifeline`) and holding the output folder's workers lock.
- slurm: every stage is a job array of datatrove's SlurmPipelineExecutor, submitted at once and
  chained with `depends=` (`--dependency=afterok`); the runner then waits and prints progress, or
  returns right away (`--no-wait`) and `tracekit status OUT` follows the build.
- ray: every stage runs through datatrove's RayPipelineExecutor on a Ray cluster, one after the other.

The engine hands a runner one batch of stages at a time (the first pass, each resample round, then
finalize), so what a build does between batches, such as planning a resample round from the mix's
shortfall, is the same on every executor.

What a task needs travels with it: the pipeline steps are built from the resolved recipe (absolute
paths, every default filled in) and pickled by datatrove; the nodes only need the same Python
environment (activated by `env_command`) and the shared storage the recipe's `output:` points to.
A relaunch skips tasks that finished (datatrove's completion markers); a failed task is run again
`retries` times (Slurm: inside its array job; Ray: the stage's unfinished tasks are resubmitted).

    >>> from tracekit.engine.executors import open_runner
    >>> with open_runner(recipe.executor, layout) as runner:  # doctest: +SKIP
    ...     finished = runner.run(plan.stages)
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import tracekit
from tracekit.engine.layout import BuildLayout
from tracekit.engine.lifeline import (
    MAIN_PID_ENV,
    Lifeline,
    fault,
    fault_spec,
    hold_shared,
    wait_for_stragglers,
)
from tracekit.engine.slurm import RetryingSlurmExecutor, default_env_command, squeue_states
from tracekit.engine.stages import Stage, kind_of
from tracekit.engine.status import task_error

if TYPE_CHECKING:
    from tracekit.engine.config import ExecutorConfig, RayExecutorConfig, SlurmExecutorConfig

Echo = Callable[[str], None]


class StageFailed(RuntimeError):
    """Some tasks of a stage did not finish, even after their retries."""


class BuildStillRunning(RuntimeError):
    """Jobs of an earlier submission of this build are still queued or running."""


class TaskFailed(RuntimeError):
    """One or more tasks of a local stage raised; their errors are in the stage's logs."""


def _stdout(msg: str) -> None:
    print(msg, flush=True)


def stage_resources(config: SlurmExecutorConfig | RayExecutorConfig, stage_name: str) -> dict[str, Any]:
    """The task resources of one stage: the executor's, GPUs only for `gpu_stages`, then `stages:` overrides.

    A resample round's stage (`sample-r2`) gets the resources of its kind (`sample`).
    """
    kind = kind_of(stage_name)
    gpu = kind in config.gpu_stages
    res: dict[str, Any] = {
        "cpus_per_task": config.cpus_per_task,
        "gpus_per_task": config.gpus_per_task if gpu else 0,
        "mem_per_cpu_gb": config.mem_per_cpu_gb,
        "time": config.time,
    }
    if config.kind == "slurm":
        res["partition"] = config.partition if gpu else (config.cpu_partition or config.partition)
    override = config.stages.get(kind)
    if override is not None:
        for k, v in override.model_dump(exclude_none=True).items():
            if k in res:
                res[k] = v
    return res


def _cluster_workers(config: ExecutorConfig, stage: Stage) -> int:
    if stage.tasks == 1:
        return 1
    return min(config.workers, stage.tasks) if config.workers > 0 else -1


def _local_executor_class() -> Any:
    """datatrove's LocalPipelineExecutor whose tasks report failure instead of raising into the pool.

    An exception that reaches multiprocess's pool while other tasks are still queued makes
    `Pool.terminate()` deadlock on the task queue's lock (seen with `--strict`). Each task's error is
    written to `failures/RANK` (the task is not marked complete, so a rerun retries it) and the stage
    raises `TaskFailed` once every task has ended.
    """
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.utils.stats import PipelineStats

    class LocalExecutor(LocalPipelineExecutor):
        def _launch_run_for_rank(
            self, rank: int, ranks_q: Any, completed: Any = None, completed_lock: Any = None
        ) -> Any:
            try:
                return super()._launch_run_for_rank(rank, ranks_q, completed, completed_lock)
            except Exception as e:
                with self.logging_dir.open(f"failures/{rank:05d}", "wt") as f:
                    f.write(f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
                return PipelineStats()

        def run(self) -> Any:
            for name in self.logging_dir.list_files("failures"):
                self.logging_dir.rm(name)
            stats = super().run()
            failed = sorted(self.logging_dir.list_files("failures"))
            if failed:
                with self.logging_dir.open(failed[0], "rt") as f:
                    first = f.readline().strip()
                where = self.logging_dir.resolve_paths(failed[0])
                raise TaskFailed(f"{len(failed)} task(s) failed; first: {first} (traceback: {where})")
            return stats

    return LocalExecutor


def preload_step_modules(stages: list[Stage]) -> None:
    """Import the steps' modules once, in the fork server datatrove's local pools fork from.

    Without it every worker of every stage imports polars, pyarrow, datatrove and the step's module
    tree again (about a second each). Must run before the first local stage starts its pool.
    """
    import multiprocess

    modules = sorted({type(step).__module__ for stage in stages for step in stage.pipeline})
    # this module: the executor itself is pickled to the workers (datatrove.executor, datatrove.io)
    multiprocess.set_forkserver_preload(["__main__", "tracekit.engine.lifeline", __name__, *modules])


def make_executor(
    config: ExecutorConfig, stage: Stage, *, layout: BuildLayout, depends: Any = None
) -> Any:
    """The datatrove executor that runs `stage` as the recipe's `executor:` says."""
    logging_dir = layout.stage_logs(stage.name)
    if config.kind == "local":
        return _local_executor_class()(
            pipeline=stage.pipeline,
            tasks=stage.tasks,
            workers=stage.workers,
            logging_dir=str(logging_dir),
            depends=depends,
        )
    res = stage_resources(config, stage.name)
    if config.kind == "slurm":
        return RetryingSlurmExecutor(
            pipeline=stage.pipeline,
            tasks=stage.tasks,
            workers=_cluster_workers(config, stage),
            time=res["time"],
            partition=res["partition"],
            cpus_per_task=res["cpus_per_task"],
            gpus_per_task=res["gpus_per_task"],
            mem_per_cpu_gb=int(res["mem_per_cpu_gb"]),
            qos=config.qos or "",
            job_name=f"tk-{layout.out.name}-{stage.name}",
            env_command=config.env_command or default_env_command(),
            sbatch_args=dict(config.sbatch_args),
            logging_dir=str(logging_dir),
            depends=depends,
            retries=config.retries,
            chdir=str(logging_dir),
            mail_type="NONE",
        )
    from datatrove.executor import RayPipelineExecutor

    return RayPipelineExecutor(
        pipeline=stage.pipeline,
        tasks=stage.tasks,
        workers=_cluster_workers(config, stage),
        logging_dir=str(logging_dir),
        cpus_per_task=res["cpus_per_task"],
        gpus_per_task=res["gpus_per_task"],
        mem_per_cpu_gb=res["mem_per_cpu_gb"],
        time=res["time"],
    )


def _failure(stage: Stage, layout: BuildLayout, ranks: list[int], attempts: int) -> StageFailed:
    lines = [f"stage {stage.name}: {len(ranks)} of {stage.tasks} task(s) failed after {attempts} attempt(s)"]
    for rank in ranks[:5]:
        err, log = task_error(layout, stage.name, rank), layout.task_log(stage.name, rank)
        lines.append(f"  task {rank}: {err or 'no error recorded'} ({log})")
    lines.append("  run the same command again to retry only the unfinished tasks")
    return StageFailed("\n".join(lines))


class StageRunner:
    """Runs batches of stages on one executor for the length of a build; records them in stages.json.

    `run(stages)` returns True when every stage finished, False when Slurm stages were only
    submitted (`wait=False`); raises StageFailed naming the failed tasks.
    """

    kind = "local"

    def __init__(self, config: ExecutorConfig, layout: BuildLayout, *, echo: Echo = _stdout) -> None:
        self.config = config
        self.layout = layout
        self.echo = echo
        self._entries: list[dict[str, Any]] = []
        self._started = time.time()

    def __enter__(self) -> StageRunner:
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def run(self, stages: list[Stage], *, wait: bool = True) -> bool:
        raise NotImplementedError

    def _record(self, stages: list[Stage], job_ids: dict[str, dict[str, Any]] | None = None) -> None:
        """`logs/stages.json`: what `tracekit status` needs to follow a build (stage order, tasks, job ids)."""
        ids = job_ids or {}
        self._entries += [{"name": s.name, "tasks": s.tasks, **ids.get(s.name, {})} for s in stages]
        info = {
            "kind": self.kind,
            "driver": {"host": socket.gethostname(), "pid": os.getpid()},
            "started": self._started,
            "stages": self._entries,
        }
        path = self.layout.stages_file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(info, indent=2))
        os.replace(tmp, path)


class LocalRunner(StageRunner):
    """Stage after stage on this machine; every task dies with the build process and holds its lock."""

    kind = "local"

    def __init__(self, config: ExecutorConfig, layout: BuildLayout, *, echo: Echo = _stdout) -> None:
        super().__init__(config, layout, echo=echo)
        self._preloaded = False
        self._ran = 0
        self._fault = fault_spec()
        self._held: IO[str] | None = None

    def __enter__(self) -> LocalRunner:
        os.environ.setdefault(MAIN_PID_ENV, str(os.getpid()))  # the `tracekit build` command (process.py)
        wait_for_stragglers(self.layout.workers_lock)  # the processes of a killed earlier build are gone
        # held until this process ends: a build started after this one's command is killed waits for
        # this process (and the manager it forks) too, not only for the tasks
        self._held = hold_shared(self.layout.workers_lock)
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None

    def run(self, stages: list[Stage], *, wait: bool = True) -> bool:
        if not self._preloaded:  # before the first pool starts: later batches reuse the fork server
            preload_step_modules(stages)
            self._preloaded = True
        self._record(stages)
        for stage in stages:
            fault("stage", self._ran, self._fault if stage.kind != "sample" else None)
            self._ran += 1
            pipeline = [Lifeline(lock_path=str(self.layout.workers_lock)), *stage.pipeline]
            tied = Stage(stage.name, pipeline, stage.tasks, stage.workers)
            make_executor(self.config, tied, layout=self.layout).run()
        return True


def _slurm_job_ids(info: dict[str, Any]) -> list[str]:
    return [
        str(s[k]) for s in info["stages"] for k in ("job_id", "merge_job_id") if s.get(k) not in (None, -1)
    ]


def ensure_not_running(layout: BuildLayout) -> None:
    """Refuse to relaunch a Slurm build whose earlier submission is still queued or running."""
    f = layout.stages_file
    if not f.exists():
        return
    info = json.loads(f.read_text())
    if info.get("kind") != "slurm":
        return
    active = squeue_states(_slurm_job_ids(info))
    if active:
        raise BuildStillRunning(
            f"jobs {', '.join(sorted(active))} of this build are still queued or running; follow them with "
            f"`tracekit status {layout.out}` (or `scancel` them) before relaunching"
        )


class SlurmRunner(StageRunner):
    """Each batch: every stage submitted at once as a job array chained with `--dependency=afterok`."""

    kind = "slurm"
    config: SlurmExecutorConfig
    SQUEUE_MISSES = 30  # polls in a row without an answer from squeue before the build gives up

    def __enter__(self) -> SlurmRunner:
        ensure_not_running(self.layout)
        return self

    def run(self, stages: list[Stage], *, wait: bool = True) -> bool:
        executors: list[RetryingSlurmExecutor] = []
        job_ids: dict[str, dict[str, Any]] = {}
        prev: RetryingSlurmExecutor | None = None
        for stage in stages:
            ex = make_executor(self.config, stage, layout=self.layout, depends=prev)
            ex.launch_job()  # launches its dependency first if needed, then itself (or nothing if finished)
            job_ids[stage.name] = {
                "job_id": ex.job_id,
                "merge_job_id": ex.merge_job_id,
                "depends_on": ex.depends_job_id,
            }
            done = ex.job_id == -1
            self.echo(
                f"slurm: {stage.name}: "
                + ("all tasks already finished" if done else f"job {ex.job_id} submitted ({stage.tasks} tasks)")
            )
            executors.append(ex)
            prev = ex
        self._record(stages, job_ids)
        if not wait:
            self.echo(f"slurm: submitted; follow with `tracekit status {self.layout.out}`")
            return False
        self._wait(stages, executors)
        return True

    def _wait(self, stages: list[Stage], executors: list[RetryingSlurmExecutor]) -> None:
        ids = [str(x) for ex in executors for x in (ex.job_id, ex.merge_job_id) if x not in (None, -1)]
        last: dict[str, str] = {}
        misses = 0
        while True:
            # read before the markers: a job gone from squeue wrote all of its markers
            active = squeue_states(ids)
            if active is None:
                misses += 1
                if misses >= self.SQUEUE_MISSES:
                    raise StageFailed(f"squeue did not answer {misses} times in a row; jobs {', '.join(ids)}")
                time.sleep(self.config.poll_seconds)
                continue
            misses = 0
            for stage, ex in zip(stages, executors, strict=True):
                self._check(stage, ex, active, ids, last)
            if not active:
                return
            time.sleep(self.config.poll_seconds)

    def _check(
        self,
        stage: Stage,
        ex: RetryingSlurmExecutor,
        active: dict[str, tuple[str, str]],
        ids: list[str],
        last: dict[str, str],
    ) -> None:
        incomplete = ex.get_incomplete_ranks()
        job = str(ex.job_id)
        if job in active:
            state, reason = active[job]
            line = f"{stage.tasks - len(incomplete)}/{stage.tasks} tasks done, job {job} {state}"
            if state == "PENDING" and reason not in ("", "None"):
                line += f" ({reason})"
        elif incomplete:
            for other in ids:
                if other in active:
                    subprocess.run(["scancel", other], check=False)
            raise _failure(stage, self.layout, incomplete, self.config.retries + 1)
        else:
            line = f"{stage.tasks}/{stage.tasks} tasks done"
        if last.get(stage.name) != line:
            self.echo(f"slurm: {stage.name}: {line}")
            last[stage.name] = line


class RayRunner(StageRunner):
    """Stage after stage on a Ray cluster joined (or started) for the length of the build."""

    kind = "ray"
    config: RayExecutorConfig

    def __enter__(self) -> RayRunner:
        self._session = ray_session(self.config)
        self._session.__enter__()
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._session.__exit__(typ, exc, tb)

    def run(self, stages: list[Stage], *, wait: bool = True) -> bool:
        self._record(stages)
        for stage in stages:
            attempts = 0
            while True:
                attempts += 1
                ex = make_executor(self.config, stage, layout=self.layout)
                ex.run()  # runs only the unfinished tasks; returns when they are all done or failed
                incomplete = ex.get_incomplete_ranks()
                if not incomplete:
                    self.echo(f"ray: {stage.name}: {stage.tasks}/{stage.tasks} tasks done")
                    break
                if attempts > self.config.retries:
                    raise _failure(stage, self.layout, incomplete, attempts)
                self.echo(
                    f"ray: {stage.name}: {len(incomplete)} task(s) failed; retrying (attempt {attempts + 1})"
                )
        return True


@contextlib.contextmanager
def ray_session(config: RayExecutorConfig) -> Iterator[None]:
    """Join the recipe's Ray cluster (or start a private one) for the length of a build.

    Workers get this checkout of tracekit first on their PYTHONPATH, so they run the driver's code.
    """
    import ray

    if ray.is_initialized():  # a caller (a benchmark, a notebook) already joined a cluster
        yield
        return
    checkout = str(Path(tracekit.__file__).resolve().parents[1])
    ray.init(
        address=config.address,
        runtime_env={"env_vars": {"PYTHONPATH": checkout}},
        include_dashboard=False,
        log_to_driver=True,
        configure_logging=False,
    )
    try:
        yield
    finally:
        ray.shutdown()


def open_runner(config: ExecutorConfig, layout: BuildLayout, *, echo: Echo = _stdout) -> StageRunner:
    """The runner of the recipe's executor kind; use it as a context manager for the whole build."""
    runners: dict[str, type[StageRunner]] = {"local": LocalRunner, "slurm": SlurmRunner, "ray": RayRunner}
    return runners[config.kind](config, layout, echo=echo)


def run_stages(
    config: ExecutorConfig,
    stages: list[Stage],
    *,
    layout: BuildLayout,
    wait: bool = True,
    echo: Echo = _stdout,
) -> bool:
    """Run one batch of stages on a fresh runner: True when every stage finished; False when Slurm
    stages were only submitted (`wait=False`). Raises StageFailed naming the failed tasks."""
    with open_runner(config, layout, echo=echo) as runner:
        return runner.run(stages, wait=wait)
