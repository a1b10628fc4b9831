"""Slurm: tracekit's job script around datatrove's SlurmPipelineExecutor, and the one `squeue` reader.

    >>> squeue_states([])
    {}
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from datatrove.executor import SlurmPipelineExecutor
from datatrove.executor.slurm import launch_slurm_job

import tracekit

SQUEUE_TIMEOUT_S = 30.0


def squeue_states(job_ids: list[str], *, timeout_s: float = SQUEUE_TIMEOUT_S) -> dict[str, tuple[str, str]] | None:
    """State and reason of the given jobs that Slurm still lists (queued, running, completing).

    A job absent from the answer has ended. None when Slurm cannot be asked from here (no `squeue`,
    an error, or no answer within `timeout_s`): the caller decides what not knowing means.
    """
    wanted = {str(j) for j in job_ids if j not in (None, -1, "-1")}
    if not wanted:
        return {}
    try:
        out = subprocess.run(
            ["squeue", "-h", "-o", "%F|%T|%r"], capture_output=True, text=True, check=True, timeout=timeout_s
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    states: dict[str, tuple[str, str]] = {}
    for line in out.splitlines():
        job, state, reason = (line.split("|") + ["", ""])[:3]
        if job in wanted and (job not in states or state == "RUNNING"):
            states[job] = (state, reason)
    return states


def default_env_command() -> str:
    """Shell lines that give a Slurm task the Python environment (and tracekit) running this command."""
    activate = Path(sys.prefix) / "bin" / "activate"
    checkout = Path(tracekit.__file__).resolve().parents[1]
    lines = [f"source {shlex.quote(str(activate))}"] if activate.exists() else []
    lines.append(f"export PATH={shlex.quote(str(Path(sys.executable).parent))}:$PATH")
    lines.append(f"export PYTHONPATH={shlex.quote(str(checkout))}${{PYTHONPATH:+:$PYTHONPATH}}")
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
