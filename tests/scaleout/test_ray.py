"""The Ray executor on a real local Ray cluster (`ray start --head`): the quickstart build equals the local
one row for row; failed tasks are resubmitted; a relaunch runs only unfinished tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import read_dataset, read_ledger, run_cli
from tests.scaleout.conftest import assert_same_resampled_build, variant_recipe
from tests.scaleout.steps import ScriptedTask, runs
from tracekit.engine.config import RayExecutorConfig
from tracekit.engine.executors import StageFailed, run_stages
from tracekit.engine.layout import BuildLayout
from tracekit.engine.stages import Stage
from tracekit.engine.status import build_status

pytestmark = pytest.mark.slow


def _stages(folder: Path) -> list[Stage]:
    return [
        Stage("sample", [ScriptedTask(folder=str(folder), stage="sample")], 2, 2),
        Stage("finalize", [ScriptedTask(folder=str(folder), stage="finalize")], 2, 2),
    ]


def test_quickstart_on_ray_equals_the_local_build(ray_cluster, local_quickstart, tmp_path) -> None:
    out = tmp_path / "shared" / "out"
    recipe = variant_recipe("ray", tmp_path / "recipe", out=out, address=ray_cluster)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = run_cli("build", str(recipe), cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert json.loads(BuildLayout(out).stages_file.read_text())["kind"] == "ray"
    assert read_dataset(out) == read_dataset(local_quickstart)
    assert read_ledger(out) == read_ledger(local_quickstart)
    assert build_status(out).state == "done"


def test_resample_on_ray_fills_the_quota_as_the_local_build_does(ray_cluster, local_resample, tmp_path) -> None:
    out = tmp_path / "shared" / "out"
    recipe = variant_recipe("ray", tmp_path / "recipe", out=out, resample=True, address=ray_cluster)
    r = run_cli("build", str(recipe), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert_same_resampled_build(out, local_resample)
    assert build_status(out).state == "done"


def test_failed_tasks_are_resubmitted_and_relaunch_skips_finished_ones(ray_cluster, tmp_path) -> None:
    (tmp_path / "sample-fail-1").write_text("1")  # fails once: the retry finishes it
    cfg = RayExecutorConfig.model_validate({"kind": "ray", "address": ray_cluster, "tasks": 2, "retries": 1})
    assert run_stages(cfg, _stages(tmp_path), layout=BuildLayout(tmp_path), echo=lambda m: None)
    assert (runs(tmp_path, "sample", 0), runs(tmp_path, "sample", 1)) == (1, 2)
    assert (runs(tmp_path, "finalize", 0), runs(tmp_path, "finalize", 1)) == (1, 1)

    folder = tmp_path / "second"
    folder.mkdir()
    (folder / "finalize-fail-0").write_text("-1")  # always fails
    with pytest.raises(StageFailed, match="stage finalize: 1 of 2 task"):
        run_stages(cfg, _stages(folder), layout=BuildLayout(folder), echo=lambda m: None)
    assert runs(folder, "finalize", 0) == 2  # first run + one retry
    status = build_status(folder)
    assert status.state == "failed" and [f.rank for f in status.stages[1].failed] == [0]

    (folder / "finalize-fail-0").unlink()
    assert run_stages(cfg, _stages(folder), layout=BuildLayout(folder), echo=lambda m: None)
    assert [runs(folder, "sample", r) for r in (0, 1)] == [1, 1]  # finished stage not re-run
    assert [runs(folder, "finalize", r) for r in (0, 1)] == [3, 1]
    assert build_status(folder).state == "done"
