"""`tracekit status OUT`: per-stage progress of a running, finished or failed build.

Reads only what the build leaves on (shared) storage: `logs/stages.json` (stage order, tasks and Slurm
job ids, written as the build runs each batch of stages), datatrove's completion markers and task logs
under `logs/<stage>/`, and the row counters under `logs/progress/`. For Slurm builds it also asks
`squeue` whether a stage's job is still queued or running.

    >>> from tracekit.engine.status import build_status, format_status
    >>> print(format_status(build_status(Path("out/quickstart"))))  # doctest: +SKIP
    build out/quickstart (slurm): running
    stage     tasks  state                     rows
    sample    2/2    done                       150
    finalize  0/2    running (job 14)             0
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tracekit.engine.layout import BuildLayout
from tracekit.engine.lifeline import is_locked
from tracekit.engine.progress import read_counts
from tracekit.engine.slurm import squeue_states
from tracekit.engine.stages import order_key
from tracekit.sources.rows import SKIPPED_ROW

_ERROR_LINE = re.compile(r"\|\s*ERROR\s*\|[^-]*-\s*(.*)")
_SKIPPED_LINE = re.compile(re.escape(SKIPPED_ROW) + r"(.*)")

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


def task_error(layout: BuildLayout, stage: str, rank: int) -> str | None:
    """The last error datatrove logged for one task of a stage (None when it logged none)."""
    log = layout.task_log(stage, rank)
    if not log.exists():
        return None
    error = None
    for line in log.read_text(errors="replace").splitlines():
        m = _ERROR_LINE.search(line)
        if m:
            error = m.group(1).strip()
    return error


def _completed(layout: BuildLayout, stage: str) -> set[int]:
    folder = layout.completions(stage)
    return {int(f.name) for f in folder.iterdir() if f.name.isdigit()} if folder.exists() else set()


def _started(layout: BuildLayout, stage: str) -> set[int]:
    folder = layout.task_logs(stage)
    if not folder.exists():
        return set()
    return {int(f.stem.removeprefix("task_")) for f in folder.glob("task_*.log") if f.stem[5:].isdigit()}


def _build_lock_held(layout: BuildLayout) -> bool:
    """True while a `tracekit build` command holds the output folder's lock."""
    return is_locked(layout.build_lock, shared=True)


def _stage_list(layout: BuildLayout) -> tuple[str, list[dict]]:
    f = layout.stages_file
    if f.exists():
        info = json.loads(f.read_text())
        return str(info.get("kind", "?")), list(info["stages"])
    # a build from before stages.json was written for local builds: the stages that started, in order
    names = sorted(
        (p.name for p in layout.logs.iterdir() if layout.executor_json(p.name).exists()), key=order_key
    )
    stages = []
    for n in names:
        tasks = json.loads(layout.executor_json(n).read_text()).get("tasks", 1)
        stages.append({"name": n, "tasks": int(tasks)})
    return "local", stages


def build_status(out: Path) -> BuildStatus:
    """Where each stage of the build in `out` stands. Raises FileNotFoundError if `out` holds no build."""
    out = Path(out)
    layout = BuildLayout(out)
    if not layout.marker.exists() and not layout.logs.exists():
        raise FileNotFoundError(f"{out} holds no tracekit build")
    kind, entries = _stage_list(layout)
    ids = [str(e["job_id"]) for e in entries if e.get("job_id") not in (None, -1)]
    squeue = squeue_states(ids) if kind == "slurm" else {}
    live = _build_lock_held(layout)
    stages: list[StageStatus] = []
    for e in entries:
        name, tasks = e["name"], int(e["tasks"])
        done = len({r for r in _completed(layout, name) if r < tasks})
        rows = int(read_counts(layout.progress, name).get("rows", 0))
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
            st.state = "running" if _started(layout, name) else "pending"
        elif (
            st.job_id
            and not _started(layout, name)
            and any(s.state in ("failed", "cancelled") for s in stages)
        ):
            st.state, st.detail = "cancelled", f"job {st.job_id}: an earlier stage failed"
        elif _started(layout, name) or st.job_id:
            st.state = "failed"
            if not _started(layout, name):
                st.detail = f"job {st.job_id} ran no task; see {layout.slurm_logs(name)}"
            for rank in sorted(set(range(tasks)) - _completed(layout, name)):
                log = layout.task_log(name, rank)
                if log.exists() or st.job_id:
                    st.failed.append(TaskFailure(rank=rank, error=task_error(layout, name, rank), log=log))
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


def skipped_rows(layout: BuildLayout, *, limit: int = 5) -> list[str]:
    """The first `limit` unreadable rows the source reader logged (`file:line: why`), from the task logs
    of the stage that reads the sources."""
    found: list[str] = []
    for stage in ("select", "sample"):
        for log in sorted(layout.task_logs(stage).glob("*.log")):
            try:
                text = log.read_text(errors="replace")
            except OSError:
                continue
            for m in _SKIPPED_LINE.finditer(text):
                if m.group(1) not in found:
                    found.append(m.group(1))
                if len(found) >= limit:
                    return found
    return found


def bad_rows(layout: BuildLayout) -> int:
    """Unreadable source rows the source reader skipped (counted in datatrove's per-task stats of the
    stage that reads the sources: `select` when the recipe selects prompts, else `sample`)."""
    total = 0
    stats = [*layout.task_stats("select").glob("*.json"), *layout.task_stats("sample").glob("*.json")]
    for f in stats:
        try:
            for step in json.loads(f.read_text()):
                counted = step.get("stats", {}).get("bad_rows")
                if counted is not None:
                    total += int(counted.get("total", 0) if isinstance(counted, dict) else counted)
        except (OSError, json.JSONDecodeError, AttributeError):
            continue
    return total
