"""kill -9 a build at several moments, run the same command again: exactly the uninterrupted rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import read_dataset, read_ledger, run_cli, write_recipe
from tracekit.engine.layout import BuildLayout
from tracekit.ledger.shards import list_shards

POINTS = [
    "read:700",  # while reading sources (rank 0 has read 700 prompt rows)
    "write:1250",  # mid-shard: rank 0 has written two 500-row shards and half of a third
    "stage:1",  # between stages: sampling finished, finalize not started
    "finalize:2",  # mid-finalize: rank 0 has finished two of its shards
]


def _make(tmp: Path) -> Path:
    rows = [
        {
            "q": f"Problem {i}: what is {i} * 3?",
            "a": str(3 * i),
            "gens": [f"<think>\n{i}*3={3 * i} " + "x" * (i % 50) + f"\n</think>\n\n\\boxed{{{3 * i}}}", f"<think>\ncut {i}"],
        }
        for i in range(3000)
    ]
    (tmp / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return write_recipe(
        tmp,
        sources=[{"name": "m", "path": "m.jsonl", "columns": {"prompt": "q", "answer": "a", "generations": "gens"}}],
        executor={"kind": "local", "tasks": 2, "workers": 2},
        rows_per_shard=500,
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], list[dict]]:
    tmp = tmp_path_factory.mktemp("ref")
    r = run_cli("build", str(_make(tmp)))
    assert r.returncode == 0, r.stderr
    return read_ledger(tmp / "out"), read_dataset(tmp / "out")


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
def test_kill_9_then_resume_gives_the_uninterrupted_rows(tmp_path: Path, point: str, reference: tuple) -> None:
    ledger_ref, dataset_ref = reference
    assert len(ledger_ref) == 6000 and len(dataset_ref) == 3000
    recipe = _make(tmp_path)
    killed = run_cli("build", str(recipe), env={"TRACEKIT_FAULT": point})
    assert killed.returncode == -9, f"the fault point {point} was not reached: {killed.stderr[-2000:]}"
    out = tmp_path / "out"
    done_before = set(list_shards(BuildLayout(out).ledger))
    if point.startswith("finalize"):
        assert done_before, "finalize was killed before writing anything: the test would prove less"
    resumed = run_cli("build", str(recipe))
    assert resumed.returncode == 0, resumed.stderr
    assert read_ledger(out) == ledger_ref
    assert read_dataset(out) == dataset_ref
    assert not list(out.rglob(".tmp.*")), "temporary files left behind"
