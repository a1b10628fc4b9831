"""`tracekit status OUT`: per-stage progress of a running, finished or failed build.

Reads only what the build leaves on (shared) storage: `logs/stages.json` (stage order, tasks and Slurm
job ids, written when a cluster build starts), datatrove's completion markers and task logs under
`logs/<stage>/`, and the row counters under `logs/progress/`. For Slurm builds it also asks `squeue`
whether a stage's job is still queued or running.

    >>> from tracekit.status import build_status, format_status
    >>> print(format_status(build_status(Path("out/quickstart"))))  # doctest: +SKIP
    build out/quickstart (slurm): running
    stage     tasks  state                     rows
    sample    2/2    done                       150
    finalize  0/2    running (job 14)             0
"""

from __future__ import annotations

import fcntl
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tracekit.progress import read_counts

STAGES_FILE = "stages.json"
# stage order of the engine, for builds that wrote no stages.json (local builds)
KNOWN_ORDER = ("sample", "verify", "dedup", "decontam", "mix", "finalize")
_ERROR_LINE = re.compile(r"\|\s*ERROR\s*\|[^-]*-\s*(.*)")

StageState = Literal["done", "running", "pending", "failed", "cancelled", "incomplete", "not started"]
BuildState = Literal["done", "running", "failed", "not started"]


@dataclass
class TaskFailure:
    rank: int
    error: str | None
    log: Path


@dataclass
class StageStatus:
    name: str
    tasks: int
    done: int
    state: StageState
    rows: int = 0
    job_id: str | None = None
    detail: str = ""
    failed: list[TaskFailure] = field(default_factory=list)


@dataclass
class BuildStatus:
    out: Path
    kind: str
    state: BuildState
    stages: list[StageStatus]


def task_error(stage_logs: Path, rank: int) -> str | None:
    """The last error datatrove logged for one task of a stage (None when it logged none)."""
    log = stage_logs / "logs" / f"task_{rank:05d}.log"
    if not log.exists():
        return None
    error = None
    for line in log.read_text(errors="replace").splitlines():
        m = _ERROR_LINE.search(line)
        if m:
            error = m.group(1).strip()
    return error


def _completed(stage_logs: Path) -> set[int]:
    folder = stage_logs / "completions"
    return {int(f.name) for f in folder.iterdir() if f.name.isdigit()} if folder.exists() else set()


def _started(stage_logs: Path) -> set[int]:
    folder = stage_logs / "logs"
    if not folder.exists():
        return set()
    return {int(f.stem.removeprefix("task_")) for f in folder.glob("task_*.log") if f.stem[5:].isdigit()}


def _build_lock_held(out: Path) -> bool:
    """True while a `tracekit build` command holds the output folder's lock."""
    lock = out / ".build.lock"
    if not lock.exists():
        return False
    with open(lock) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


def _squeue(job_ids: list[str]) -> dict[str, tuple[str, str]] | None:
    """State and reason of the jobs Slurm still lists; None when Slurm cannot be asked from here."""
    if not job_ids:
        return {}
    try:
        out = subprocess.run(
            ["squeue", "-h", "-o", "%F|%T|%r"], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    states: dict[str, tuple[str, str]] = {}
    for line in out.splitlines():
        job, state, reason = (line.split("|") + ["", ""])[:3]
        if job in job_ids and (job not in states or state == "RUNNING"):
            states[job] = (state, reason)
    return states


def _stage_list(logs: Path) -> tuple[str, list[dict]]:
    f = logs / STAGES_FILE
    if f.exists():
        info = json.loads(f.read_text())
        return str(info.get("kind", "?")), list(info["stages"])
    names = [p.parent.name for p in logs.glob("*/executor.json")]
    names.sort(key=lambda n: (KNOWN_ORDER.index(n) if n in KNOWN_ORDER else len(KNOWN_ORDER), n))
    stages = []
    for n in names:
        tasks = json.loads((logs / n / "executor.json").read_text()).get("tasks", 1)
        stages.append({"name": n, "tasks": int(tasks)})
    return "local", stages


def build_status(out: Path) -> BuildStatus:
    """Where each stage of the build in `out` stands. Raises FileNotFoundError if `out` holds no build."""
    out = Path(out)
    logs = out / "logs"
    if not (out / ".tracekit.json").exists() and not logs.exists():
        raise FileNotFoundError(f"{out} holds no tracekit build")
    kind, entries = _stage_list(logs)
    ids = [str(e["job_id"]) for e in entries if e.get("job_id") not in (None, -1)]
    squeue = _squeue(ids) if kind == "slurm" else {}
    live = _build_lock_held(out)
    stages: list[StageStatus] = []
    for e in entries:
        name, tasks = e["name"], int(e["tasks"])
        stage_logs = logs / name
        done = len({r for r in _completed(stage_logs) if r < tasks})
        rows = int(read_counts(logs / "progress", name).get("rows", 0))
        st = StageStatus(name=name, tasks=tasks, done=done, state="not started", rows=rows)
        job = e.get("job_id")
        st.job_id = None if job in (None, -1) else str(job)
        if done == tasks:
            st.state = "done"
        elif st.job_id and squeue is not None and st.job_id in squeue:
            state, reason = squeue[st.job_id]
            st.state = "running" if state in ("RUNNING", "COMPLETING") else "pending"
            st.detail = f"job {st.job_id}" + (
                f", {reason}" if state == "PENDING" and reason not in ("", "None") else ""
            )
        elif st.job_id and squeue is None:
            st.state, st.detail = "incomplete", f"job {st.job_id}; squeue unavailable here"
        elif live and (kind != "slurm" or not st.job_id):
            st.state = "running" if _started(stage_logs) else "pending"
        elif (
            st.job_id and not _started(stage_logs) and any(s.state in ("failed", "cancelled") for s in stages)
        ):
            st.state, st.detail = "cancelled", f"job {st.job_id}: an earlier stage failed"
        elif _started(stage_logs) or st.job_id:
            st.state = "failed"
            if not _started(stage_logs):
                st.detail = f"job {st.job_id} ran no task; see {stage_logs / 'slurm_logs'}"
            for rank in sorted(set(range(tasks)) - _completed(stage_logs)):
                log = stage_logs / "logs" / f"task_{rank:05d}.log"
                if log.exists() or st.job_id:
                    st.failed.append(TaskFailure(rank=rank, error=task_error(stage_logs, rank), log=log))
        stages.append(st)
    if stages and all(s.state == "done" for s in stages):
        build: BuildState = "done"
    elif any(s.state == "failed" for s in stages):
        build = "failed"
    elif any(s.state in ("running", "pending") for s in stages) or live:
        build = "running"
    else:
        build = "not started" if not any(s.done for s in stages) else "failed"
    return BuildStatus(out=out, kind=kind, state=build, stages=stages)


def format_status(status: BuildStatus) -> str:
    """A plain-text table: one line per stage, then the failed tasks with their last error and log."""
    lines = [f"build {status.out} ({status.kind}): {status.state}"]
    width = max([len(s.name) for s in status.stages] + [5])
    lines.append(f"{'stage':<{width}}  {'tasks':>9}  {'state':<28}  {'rows':>10}")
    for s in status.stages:
        state = s.state + (f" ({s.detail})" if s.detail else "")
        lines.append(f"{s.name:<{width}}  {f'{s.done}/{s.tasks}':>9}  {state:<28}  {s.rows:>10,}")
    for s in status.stages:
        for f in s.failed:
            lines.append(f"failed: {s.name} task {f.rank}: {f.error or 'no error logged'} ({f.log})")
    if status.state == "failed":
        lines.append("run the same `tracekit build` command again to retry only the unfinished tasks")
    return "\n".join(lines)


def print_status(out: Path) -> int:
    """`tracekit status OUT`; exit code 0 when done or running, 1 when failed, 2 when OUT holds no build."""
    try:
        status = build_status(out)
    except FileNotFoundError as e:
        print(f"tracekit: {e}")
        return 2
    print(format_status(status))
    return 1 if status.state == "failed" else 0
