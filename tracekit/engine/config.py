"""Recipe model of the executor (`executor:` in a recipe): local, Slurm or Ray.

    executor: {kind: local, tasks: 2, workers: 2}
    executor: {kind: slurm, partition: gpu, cpu_partition: cpu, tasks: 64, gpus_per_task: 1, time: "12:00:00"}
    executor: {kind: ray, address: auto, tasks: 64, gpus_per_task: 1}

`tasks` is the number of shards of the per-trace stages; never change it between a run and its resume.
GPU resources (`gpus_per_task`) go only to the stages named in `gpu_stages` (sampling); every other
stage (verification, the global dedup/decontamination/mix jobs, finalize) runs on CPU tasks.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag


class LocalExecutorConfig(BaseModel):
    """Run on this machine with datatrove's LocalPipelineExecutor."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["local"] = "local"
    tasks: int = Field(2, ge=1, description="shards of the per-trace stage; keep it fixed across resumes")
    workers: int = Field(-1, description="tasks run at once (-1: one per CPU core, at most tasks)")


class StageResources(BaseModel):
    """Per-stage overrides of a cluster executor's task resources (unset fields keep the executor's).

    Example: `stages: {dedup: {cpus_per_task: 16, mem_per_cpu_gb: 8}}`.
    """

    model_config = ConfigDict(extra="forbid")

    partition: str | None = Field(None, description="Slurm partition for this stage's tasks")
    cpus_per_task: int | None = Field(None, ge=1, description="CPUs per task")
    gpus_per_task: int | None = Field(None, ge=0, description="GPUs per task")
    mem_per_cpu_gb: float | None = Field(None, gt=0, description="memory per CPU, GB")
    time: str | None = Field(None, description="Slurm time limit of one task (e.g. '04:00:00')")


class SlurmExecutorConfig(BaseModel):
    """Submit every stage as a Slurm job array (datatrove's SlurmPipelineExecutor), chained with
    `--dependency=afterok`, so global stages start only when the stage before them succeeded.

    Example: `executor: {kind: slurm, partition: gpu, cpu_partition: cpu, tasks: 64, gpus_per_task: 1}`
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["slurm"]
    tasks: int = Field(2, ge=1, description="shards of the per-trace stages; keep it fixed across resumes")
    workers: int = Field(-1, description="array tasks running at once per stage (-1: no limit)")
    partition: str | None = Field(
        None, description="partition of the GPU stages (None: the cluster's default)"
    )
    cpu_partition: str | None = Field(None, description="partition of the CPU stages (None: `partition`)")
    time: str = Field("24:00:00", description="time limit of one task")
    gpus_per_task: int = Field(0, ge=0, description="GPUs per task of the stages in `gpu_stages`")
    gpu_stages: list[str] = Field(["sample"], description="stages that get `gpus_per_task` GPUs")
    cpus_per_task: int = Field(1, ge=1, description="CPUs per task")
    mem_per_cpu_gb: int = Field(2, ge=1, description="memory per CPU, GB")
    qos: str | None = Field(None, description="Slurm QOS (None: the cluster's default)")
    sbatch_args: dict[str, str] = Field(
        {}, description="extra `#SBATCH --key=value` lines, e.g. {account: my-project, constraint: h100}"
    )
    env_command: str | None = Field(
        None,
        description="shell line that makes `tracekit` importable on the nodes "
        "(None: activate the Python environment running `tracekit build`)",
    )
    retries: int = Field(2, ge=0, description="times a failed task is run again inside its job")
    poll_seconds: float = Field(10.0, gt=0, description="how often a waiting `tracekit build` polls Slurm")
    stages: dict[str, StageResources] = Field({}, description="per-stage resource overrides, by stage name")


class RayExecutorConfig(BaseModel):
    """Run every stage on a Ray cluster (datatrove's RayPipelineExecutor), one stage after the other.

    Example: `executor: {kind: ray, address: auto, tasks: 64, gpus_per_task: 1}`
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["ray"]
    address: str | None = Field(
        None,
        description="cluster to join ('auto', 'host:6379', 'ray://host:10001'); "
        "None starts a private one-machine cluster for the build",
    )
    tasks: int = Field(2, ge=1, description="shards of the per-trace stages; keep it fixed across resumes")
    workers: int = Field(-1, description="tasks running at once per stage (-1: no limit)")
    cpus_per_task: int = Field(1, ge=1, description="CPUs reserved per task")
    gpus_per_task: int = Field(0, ge=0, description="GPUs per task of the stages in `gpu_stages`")
    gpu_stages: list[str] = Field(["sample"], description="stages that get `gpus_per_task` GPUs")
    mem_per_cpu_gb: float = Field(2.0, gt=0, description="memory reserved per CPU, GB")
    time: int | None = Field(None, ge=1, description="time limit of one task in seconds (None: none)")
    retries: int = Field(2, ge=0, description="times the failed tasks of a stage are run again")
    stages: dict[str, StageResources] = Field({}, description="per-stage resource overrides, by stage name")


def _executor_kind(value: Any) -> str:
    """`kind` of an executor section; a section without one is local (as before Slurm and Ray)."""
    kind = value.get("kind", "local") if isinstance(value, dict) else getattr(value, "kind", "local")
    return str(kind)


ExecutorConfig = Annotated[
    Annotated[LocalExecutorConfig, Tag("local")]
    | Annotated[SlurmExecutorConfig, Tag("slurm")]
    | Annotated[RayExecutorConfig, Tag("ray")],
    Discriminator(_executor_kind),
]
