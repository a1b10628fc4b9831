"""The CLI's stage list (no steps built) matches the plan the build process runs."""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from tracekit.engine import plan_build, stage_names
from tracekit.recipe import load_recipe


@pytest.mark.parametrize("recipe", ["quickstart.yaml", "r1-800k.yaml", "slurm.yaml"])
def test_stage_names_match_the_plan(recipe: str) -> None:
    loaded = load_recipe(REPO / "pipelines" / recipe)
    assert stage_names(loaded) == [s.name for s in plan_build(loaded).stages]
