"""pipelines/slurm.yaml and pipelines/ray.yaml are the quickstart recipe, only run elsewhere."""

from __future__ import annotations

import pytest
import yaml

from tests.scaleout.conftest import PIPELINES
from tracekit.recipe import load_recipe


@pytest.mark.parametrize("kind", ["slurm", "ray"])
def test_variant_is_the_quickstart_recipe_with_another_executor(kind: str) -> None:
    quick = yaml.safe_load((PIPELINES / "quickstart.yaml").read_text())
    variant = yaml.safe_load((PIPELINES / f"{kind}.yaml").read_text())
    assert variant["executor"]["kind"] == kind
    assert variant["executor"]["tasks"] == quick["executor"]["tasks"]  # same shards -> same files
    for key in ("name", "output", "executor"):
        quick.pop(key), variant.pop(key)
    assert variant == quick
    assert load_recipe(PIPELINES / f"{kind}.yaml").recipe.executor.kind == kind


def test_executor_without_kind_is_local_and_unknown_options_are_refused(tmp_path) -> None:
    from pydantic import TypeAdapter, ValidationError

    from tracekit.engine.config import ExecutorConfig, RayExecutorConfig, SlurmExecutorConfig

    ta = TypeAdapter(ExecutorConfig)
    assert ta.validate_python({"tasks": 3}).kind == "local"
    slurm = ta.validate_python({"kind": "slurm", "partition": "gpu", "gpus_per_task": 1, "tasks": 8})
    assert isinstance(slurm, SlurmExecutorConfig)
    assert isinstance(ta.validate_python({"kind": "ray", "address": "auto"}), RayExecutorConfig)
    with pytest.raises(ValidationError):
        ta.validate_python({"kind": "ray", "partition": "gpu"})  # a Slurm option on Ray


def test_gpus_go_to_the_sampling_stage_and_overrides_apply() -> None:
    from tracekit.engine.config import SlurmExecutorConfig
    from tracekit.engine.executors import stage_resources

    cfg = SlurmExecutorConfig.model_validate(
        {
            "kind": "slurm",
            "partition": "gpu",
            "cpu_partition": "cpu",
            "gpus_per_task": 1,
            "stages": {"dedup": {"cpus_per_task": 16, "time": "02:00:00"}},
        }
    )
    sample, dedup, fin = (stage_resources(cfg, n) for n in ("sample", "dedup", "finalize"))
    assert (sample["partition"], sample["gpus_per_task"]) == ("gpu", 1)
    assert (fin["partition"], fin["gpus_per_task"]) == ("cpu", 0)
    assert (dedup["cpus_per_task"], dedup["time"], dedup["partition"]) == (16, "02:00:00", "cpu")
