"""Which datatrove executor runs a stage (`executor:` in a recipe), and how a build's stages are run on a
cluster.

- local: datatrove's LocalPipelineExecutor (the engine runs the stages one after the other).
- slurm: every stage is a job array of datatrove's SlurmPipelineExecutor, submitted at once and chained
  with `depends=` (`--dependency=afterok`); `tracekit build` then waits and prints progress, or returns
  right away (`--no-wait`) and `tracekit status OUT` follows the build.
- ray: every stage runs through datatrove's RayPipelineExecutor on a Ray cluster, one after the other.

What a task needs travels with it: the pipeline steps are built from the resolved recipe (absolute
paths, every default filled in) and pickled by datatrove; the nodes only need the same Python
environment (activated by `env_command`) and the shared storage the recipe's `output:` points to.
A relaunch skips tasks that finished (datatrove's completion markers); a failed task is run again
`retries` times (Slurm: inside its array job; Ray: the stage's unfinished tasks are resubmitted).

    >>> from tracekit.executors import run_cluster_stages
    >>> finished = run_cluster_stages(recipe.executor, plan.stages, logs_dir=out / "logs")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datatrove.executor import SlurmPipelineExecutor
from datatrove.executor.slurm import launch_slurm_job

from tracekit.status import STAGES_FILE, task_error

if TYPE_CHECKING:
    from tracekit.engine import Stage
    from tracekit.executor_config import ExecutorConfig, RayExecutorConfig, SlurmExecutorConfig

Echo = Callable[[str], None]


class StageFailed(RuntimeError):
    """Some tasks of a stage did not finish, even after their retries."""


class BuildStillRunning(RuntimeError):
    """Jobs of an earlier submission of this build are still queued or running."""


def _stdout(msg: str) -> None:
    print(msg, flush=True)


def stage_resources(config: SlurmExecutorConfig | RayExecutorConfig, stage_name: str) -> dict[str, Any]:
    """The task resources of one stage: the executor's, GPUs only for `gpu_stages`, then `stages:` overrides."""
    gpu = stage_name in config.gpu_stages
    res: dict[str, Any] = {
        "cpus_per_task": config.cpus_per_task,
        "gpus_per_task": config.gpus_per_task if gpu else 0,
        "mem_per_cpu_gb": config.mem_per_cpu_gb,
        "time": config.time,
    }
    if config.kind == "slurm":
        res["partition"] = config.partition if gpu else (config.cpu_partition or config.partition)
    override = config.stages.get(stage_name)
    if override is not None:
        for k, v in override.model_dump(exclude_none=True).items():
            if k in res:
                res[k] = v
    return res


def default_env_command() -> str:
    """Shell lines that give a Slurm task the Python environment (and tracekit) running this command."""
    activate = Path(sys.prefix) / "bin" / "activate"
    repo = Path(__file__).resolve().parents[1]
    lines = [f"source {shlex.quote(str(activate))}"] if activate.exists() else []
    lines.append(f"export PATH={shlex.quote(str(Path(sys.executable).parent))}:$PATH")
    lines.append(f"export PYTHONPATH={shlex.quote(str(repo))}${{PYTHONPATH:+:$PYTHONPATH}}")
    return "\n".join(lines)


class RetryingSlurmExecutor(SlurmPipelineExecutor):
    """datatrove's SlurmPipelineExecutor with tracekit's job script: each array task is run again up to
    `retries` times inside its job (its earlier attempt's shards are removed by the task itself), jobs
    whose dependency failed are cancelled (`--kill-on-invalid-dep`), unset partition/QOS are left to
    the cluster, and the merge-stats job's id is kept so a waiting build can wait for it too.
    """

    def __init__(self, *args: Any, retries: int = 0, chdir: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retries = retries
        self.chdir = chdir
        self.merge_job_id: str | None = None

    def get_sbatch_args(self, max_array: int = 1) -> dict:
        args = super().get_sbatch_args(max_array)
        for key in ("partition", "qos"):
            if not args.get(key) or args.get(key) == "None":
                args.pop(key, None)
        args["kill-on-invalid-dep"] = "yes"
        if self.chdir:
            args["chdir"] = self.chdir
        return args

    def get_launch_file_contents(self, sbatch_args: dict, run_script: str) -> str:
        directives = "\n".join(
            f"#SBATCH --{k}={v}" if v != "" else f"#SBATCH --{k}" for k, v in sbatch_args.items()
        )
        attempts = self.retries + 1
        return (
            f"#!/bin/bash\n{directives}\n"
            f'echo "tracekit job {self.job_name} on $(hostname)"\n'
            f"{self.env_command or ''}\n"
            "export PYTHONUNBUFFERED=TRUE\n"
            f"for attempt in $(seq 1 {attempts}); do\n"
            f"  {run_script} && exit 0\n"
            f'  echo "tracekit: attempt $attempt of {attempts} failed" >&2\n'
            "done\n"
            "exit 1\n"
        )

    def launch_merge_stats(self) -> None:
        args = {
            **self.get_sbatch_args(),
            "cpus-per-task": 1,
            "mem-per-cpu": "1G",
            "dependency": f"afterok:{self.job_id}",
        }
        args.pop("array", None)
        script = self.get_launch_file_contents(
            args,
            f"merge_stats {self.logging_dir.resolve_paths('stats')} -o {self.logging_dir.resolve_paths('stats.json')}",
        )
        self.merge_job_id = launch_slurm_job(script, self.job_id_retriever)


def _cluster_workers(config: ExecutorConfig, stage: Stage) -> int:
    if stage.tasks == 1:
        return 1
    return min(config.workers, stage.tasks) if config.workers > 0 else -1


class TaskFailed(RuntimeError):
    """One or more tasks of a local stage raised; their errors are in the stage's logs."""


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
                with self.logging_dir.open(f"failures/{rank:05d}", "w") as f:
                    f.write(f"{type(e).__name__}: {e}\n")
                return PipelineStats()

        def run(self) -> Any:
            for name in self.logging_dir.list_files("failures"):
                self.logging_dir.rm(name)
            stats = super().run()
            failed = sorted(self.logging_dir.list_files("failures"))
            if failed:
                with self.logging_dir.open(failed[0]) as f:
                    first = f.read().strip()
                raise TaskFailed(f"{len(failed)} task(s) failed; first: {first}")
            return stats

    return LocalExecutor


def preload_step_modules(stages: list[Stage]) -> None:
    """Import the steps' modules once, in the fork server datatrove's local pools fork from.

    Without it every worker of every stage imports polars, pyarrow, datatrove and the step's module
    tree again (about a second each). Must run before the first local stage starts its pool.
    """
    import multiprocess

    modules = sorted({type(step).__module__ for stage in stages for step in stage.pipeline})
    # tracekit.executors: the executor itself is pickled to the workers (datatrove.executor, datatrove.io)
    multiprocess.set_forkserver_preload(["__main__", "tracekit.lifeline", "tracekit.executors", *modules])


def make_executor(config: ExecutorConfig, stage: Stage, *, logging_dir: Path, depends: Any = None) -> Any:
    """The datatrove executor that runs `stage` as the recipe's `executor:` says."""
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
            job_name=f"tk-{logging_dir.parent.parent.name}-{stage.name}",
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


def _write_stages_file(logs_dir: Path, kind: str, stages: list[Stage], job_ids: dict[str, Any]) -> None:
    """`logs/stages.json`: what `tracekit status` needs to follow a build (stage order, tasks, job ids)."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    info = {
        "kind": kind,
        "driver": {"host": socket.gethostname(), "pid": os.getpid()},
        "started": time.time(),
        "stages": [{"name": s.name, "tasks": s.tasks, **job_ids.get(s.name, {})} for s in stages],
    }
    tmp = logs_dir / f".{STAGES_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(info, indent=2))
    os.replace(tmp, logs_dir / STAGES_FILE)


def _failure(stage: Stage, logs_dir: Path, ranks: list[int], attempts: int) -> StageFailed:
    lines = [f"stage {stage.name}: {len(ranks)} of {stage.tasks} task(s) failed after {attempts} attempt(s)"]
    for rank in ranks[:5]:
        err = task_error(logs_dir / stage.name, rank)
        log = logs_dir / stage.name / "logs" / f"task_{rank:05d}.log"
        lines.append(f"  task {rank}: {err or 'no error recorded'} ({log})")
    lines.append("  run the same command again to retry only the unfinished tasks")
    return StageFailed("\n".join(lines))


def run_cluster_stages(
    config: SlurmExecutorConfig | RayExecutorConfig,
    stages: list[Stage],
    *,
    logs_dir: Path,
    wait: bool = True,
    echo: Echo = _stdout,
) -> bool:
    """Run a build's stages on Slurm or Ray. True when every stage finished; False when the stages were
    submitted to Slurm without waiting (`wait=False`). Raises StageFailed naming the failed tasks."""
    if config.kind == "slurm":
        return _run_slurm(config, stages, logs_dir=logs_dir, wait=wait, echo=echo)
    _run_ray(config, stages, logs_dir=logs_dir, echo=echo)
    return True


# --- Slurm -------------------------------------------------------------------------------------


def active_slurm_jobs(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """State and reason of the given jobs that Slurm still lists (queued, running, completing)."""
    wanted = {str(j) for j in job_ids if j not in (None, -1, "-1")}
    if not wanted:
        return {}
    out = subprocess.run(
        ["squeue", "-h", "-o", "%F|%T|%r"], capture_output=True, text=True, check=True
    ).stdout
    states: dict[str, tuple[str, str]] = {}
    for line in out.splitlines():
        job, state, reason = (line.split("|") + ["", ""])[:3]
        if job in wanted and (job not in states or state == "RUNNING"):
            states[job] = (state, reason)
    return states


def ensure_not_running(logs_dir: Path) -> None:
    """Refuse to relaunch a Slurm build whose earlier submission is still queued or running."""
    f = logs_dir / STAGES_FILE
    if not f.exists():
        return
    info = json.loads(f.read_text())
    if info.get("kind") != "slurm":
        return
    ids = [
        str(s[k]) for s in info["stages"] for k in ("job_id", "merge_job_id") if s.get(k) not in (None, -1)
    ]
    try:
        active = active_slurm_jobs(ids)
    except (OSError, subprocess.CalledProcessError):
        return
    if active:
        raise BuildStillRunning(
            f"jobs {', '.join(sorted(active))} of this build are still queued or running; follow them with "
            f"`tracekit status {logs_dir.parent}` (or `scancel` them) before relaunching"
        )


def _run_slurm(
    config: SlurmExecutorConfig, stages: list[Stage], *, logs_dir: Path, wait: bool, echo: Echo
) -> bool:
    ensure_not_running(logs_dir)
    executors: list[RetryingSlurmExecutor] = []
    job_ids: dict[str, dict[str, Any]] = {}
    prev: RetryingSlurmExecutor | None = None
    for stage in stages:
        ex = make_executor(config, stage, logging_dir=logs_dir / stage.name, depends=prev)
        ex.launch_job()  # launches its dependency first if needed, then itself (or nothing if finished)
        job_ids[stage.name] = {
            "job_id": ex.job_id,
            "merge_job_id": ex.merge_job_id,
            "depends_on": ex.depends_job_id,
        }
        echo(
            f"slurm: {stage.name}: "
            + (
                "all tasks already finished"
                if ex.job_id == -1
                else f"job {ex.job_id} submitted ({stage.tasks} tasks)"
            )
        )
        executors.append(ex)
        prev = ex
    _write_stages_file(logs_dir, "slurm", stages, job_ids)
    if not wait:
        echo(f"slurm: submitted; follow with `tracekit status {logs_dir.parent}`")
        return False
    return _wait_slurm(config, stages, executors, logs_dir=logs_dir, echo=echo)


def _wait_slurm(
    config: SlurmExecutorConfig,
    stages: list[Stage],
    executors: list[RetryingSlurmExecutor],
    *,
    logs_dir: Path,
    echo: Echo,
) -> bool:
    ids = [str(x) for ex in executors for x in (ex.job_id, ex.merge_job_id) if x not in (None, -1)]
    last: dict[str, str] = {}
    while True:
        active = active_slurm_jobs(ids)  # read before the markers: a job gone from squeue wrote all of its
        pending_work = bool(active)
        for stage, ex in zip(stages, executors, strict=True):
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
                raise _failure(stage, logs_dir, incomplete, config.retries + 1)
            else:
                line = f"{stage.tasks}/{stage.tasks} tasks done"
            if last.get(stage.name) != line:
                echo(f"slurm: {stage.name}: {line}")
                last[stage.name] = line
        if not pending_work:
            return True
        time.sleep(config.poll_seconds)


# --- Ray ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def ray_session(config: RayExecutorConfig) -> Iterator[None]:
    """Join the recipe's Ray cluster (or start a private one) for the length of a build.

    Workers get this checkout of tracekit first on their PYTHONPATH, so they run the driver's code.
    """
    import ray

    if ray.is_initialized():  # a caller (a benchmark, a notebook) already joined a cluster
        yield
        return
    repo = str(Path(__file__).resolve().parents[1])
    ray.init(
        address=config.address,
        runtime_env={"env_vars": {"PYTHONPATH": repo}},
        include_dashboard=False,
        log_to_driver=True,
        configure_logging=False,
    )
    try:
        yield
    finally:
        ray.shutdown()


def _run_ray(config: RayExecutorConfig, stages: list[Stage], *, logs_dir: Path, echo: Echo) -> None:
    _write_stages_file(logs_dir, "ray", stages, {})
    with ray_session(config):
        for stage in stages:
            attempts = 0
            while True:
                attempts += 1
                ex = make_executor(config, stage, logging_dir=logs_dir / stage.name)
                ex.run()  # runs only the unfinished tasks; returns when they are all done or failed
                incomplete = ex.get_incomplete_ranks()
                if not incomplete:
                    echo(f"ray: {stage.name}: {stage.tasks}/{stage.tasks} tasks done")
                    break
                if attempts > config.retries:
                    raise _failure(stage, logs_dir, incomplete, attempts)
                echo(
                    f"ray: {stage.name}: {len(incomplete)} task(s) failed; retrying (attempt {attempts + 1})"
                )
