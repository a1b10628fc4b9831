"""The Slurm executor on a real one-node cluster (scripts/slurm/up.sh): the quickstart build equals the
local one row for row; failed tasks are retried; a relaunch runs only unfinished tasks; status follows."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import read_dataset, read_ledger, run_cli
from tests.scaleout.conftest import assert_same_resampled_build, variant_recipe
from tests.scaleout.steps import ScriptedTask, runs
from tracekit.engine.config import SlurmExecutorConfig
from tracekit.engine.executors import BuildStillRunning, StageFailed, run_stages
from tracekit.engine.layout import BuildLayout
from tracekit.engine.stages import Stage
from tracekit.engine.status import build_status, format_status

pytestmark = pytest.mark.slow


def _stages(folder: Path) -> list[Stage]:
    return [
        Stage("sample", [ScriptedTask(folder=str(folder), stage="sample")], 2, 2),
        Stage("finalize", [ScriptedTask(folder=str(folder), stage="finalize")], 2, 2),
    ]


def _config(**kw: object) -> SlurmExecutorConfig:
    return SlurmExecutorConfig.model_validate({"kind": "slurm", "tasks": 2, "poll_seconds": 0.5, **kw})


def test_quickstart_on_slurm_equals_the_local_build(slurm_cluster, local_quickstart, tmp_path) -> None:
    out = tmp_path / "shared" / "out"
    recipe = variant_recipe("slurm", tmp_path / "recipe", out=out, poll_seconds=0.5)
    elsewhere = tmp_path / "elsewhere"  # the tasks must not depend on the submitting shell's cwd
    elsewhere.mkdir()
    r = run_cli("build", str(recipe), "--no-wait", cwd=elsewhere, env=slurm_cluster)
    assert r.returncode == 0, r.stderr
    assert "tracekit status" in r.stderr
    layout = BuildLayout(out)
    info = json.loads(layout.stages_file.read_text())
    ids = [s["job_id"] for s in info["stages"]]
    assert info["kind"] == "slurm" and len(set(ids)) == len(ids) and -1 not in ids  # one job per stage
    assert [s["name"] for s in info["stages"]][0] == "sample" and len(ids) >= 2

    deadline = time.monotonic() + 600
    while True:  # follow the detached build with `tracekit status`
        st = run_cli("status", str(out), env=slurm_cluster)
        assert st.returncode == 0, st.stdout  # never "failed"
        if f"build {out} (slurm): done" in st.stdout:
            break
        assert f"build {out} (slurm): running" in st.stdout
        assert time.monotonic() < deadline, st.stdout
        time.sleep(2)

    assert read_dataset(out) == read_dataset(local_quickstart)
    assert read_ledger(out) == read_ledger(local_quickstart)
    script = (layout.stage_logs("finalize") / "launch_script.slurm").read_text()
    assert "--kill-on-invalid-dep=yes" in script and f"--chdir={layout.stage_logs('finalize')}" in script
    stages = info["stages"]  # each stage's job was submitted depending on the one before
    assert [s.get("depends_on") for s in stages] == [None] + [s["job_id"] for s in stages[:-1]]
    assert any((layout.stage_logs("sample") / "slurm_logs").iterdir())  # job logs on the shared storage

    again = run_cli("build", str(recipe), cwd=elsewhere, env=slurm_cluster)  # a relaunch runs nothing
    assert again.returncode == 0, again.stderr
    info = json.loads(layout.stages_file.read_text())
    assert all(s["job_id"] == -1 for s in info["stages"])
    assert not layout.traces.exists()
    assert read_dataset(out) == read_dataset(local_quickstart)


def test_resample_on_slurm_fills_the_quota_as_the_local_build_does(slurm_cluster, local_resample, tmp_path) -> None:
    out = tmp_path / "shared" / "out"
    recipe = variant_recipe("slurm", tmp_path / "recipe", out=out, resample=True, poll_seconds=0.5)
    refused = run_cli("build", str(recipe), "--no-wait", cwd=tmp_path, env=slurm_cluster)
    assert refused.returncode == 2 and "--no-wait cannot be used with mix `fill: resample`" in refused.stderr
    r = run_cli("build", str(recipe), cwd=tmp_path, env=slurm_cluster)
    assert r.returncode == 0, r.stderr
    assert_same_resampled_build(out, local_resample)
    st = run_cli("status", str(out), env=slurm_cluster)
    assert f"build {out} (slurm): done" in st.stdout and "mix-r2" in st.stdout


def test_failed_task_is_retried_inside_its_job(slurm_cluster, tmp_path) -> None:
    (tmp_path / "sample-fail-1").write_text("1")  # task 1 of sample fails once
    assert run_stages(_config(retries=1), _stages(tmp_path), layout=BuildLayout(tmp_path), echo=lambda m: None)
    assert (runs(tmp_path, "sample", 0), runs(tmp_path, "sample", 1)) == (1, 2)
    assert all((tmp_path / f"{s}-out-{r}").exists() for s in ("sample", "finalize") for r in (0, 1))


def test_failed_build_is_reported_and_relaunch_runs_only_unfinished_tasks(slurm_cluster, tmp_path) -> None:
    (tmp_path / "sample-fail-1").write_text("-1")  # task 1 of sample always fails
    layout = BuildLayout(tmp_path)
    with pytest.raises(StageFailed) as e:
        run_stages(_config(retries=1), _stages(tmp_path), layout=layout, echo=lambda m: None)
    assert "stage sample: 1 of 2 task(s) failed after 2 attempt(s)" in str(e.value)
    assert "injected failure of sample task 1" in str(e.value)
    assert runs(tmp_path, "sample", 1) == 2 and runs(tmp_path, "finalize", 0) == 0  # finalize never ran

    status = build_status(tmp_path)
    assert status.state == "failed"
    sample, fin = status.stages
    assert (sample.state, sample.done, [f.rank for f in sample.failed]) == ("failed", 1, [1])
    assert "injected failure of sample task 1" in (sample.failed[0].error or "")
    assert (fin.done, fin.state, fin.failed) == (0, "cancelled", [])  # never ran: not blamed
    assert "failed: sample task 1: injected failure" in format_status(status)

    (tmp_path / "sample-fail-1").unlink()  # "fix" the problem, relaunch
    assert run_stages(_config(retries=1), _stages(tmp_path), layout=layout, echo=lambda m: None)
    assert runs(tmp_path, "sample", 0) == 1  # finished task not re-run
    assert runs(tmp_path, "sample", 1) == 3
    assert runs(tmp_path, "finalize", 0) == 1 and runs(tmp_path, "finalize", 1) == 1
    assert build_status(tmp_path).state == "done"


def test_no_wait_submission_is_followed_by_status(slurm_cluster, tmp_path) -> None:
    (tmp_path / "hold").touch()  # tasks wait until the test releases them
    layout = BuildLayout(tmp_path)
    assert not run_stages(_config(), _stages(tmp_path), layout=layout, wait=False, echo=lambda m: None)

    status = build_status(tmp_path)
    assert status.state == "running"
    assert [s.state for s in status.stages][1] == "pending"  # finalize waits for its dependency
    assert all(s.job_id for s in status.stages)
    with pytest.raises(BuildStillRunning):  # a relaunch while the jobs are queued is refused
        run_stages(_config(), _stages(tmp_path), layout=layout, echo=lambda m: None)

    (tmp_path / "hold").unlink()
    deadline = time.monotonic() + 300
    while build_status(tmp_path).state != "done":
        assert build_status(tmp_path).state == "running"
        assert time.monotonic() < deadline, format_status(build_status(tmp_path))
        time.sleep(1)
    assert all(runs(tmp_path, s, r) == 1 for s in ("sample", "finalize") for r in (0, 1))
