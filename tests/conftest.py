"""Shared test helpers: paths to the repo and ../shared/data, and running the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `tracekit ARGS` in a fresh process, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tracekit.cli", *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.fail(f"test data not found at {SHARED_DATA} (../shared/data beside the checkout)")
    return SHARED_DATA


def write_recipe(tmp: Path, *, sources: list[dict], name: str = "t", **extra: object) -> Path:
    """A recipe file in tmp (output: tmp/out) built from plain dicts."""
    import yaml

    recipe = {"name": name, "output": str(tmp / "out"), "sources": sources, **extra}
    recipe.setdefault("executor", {"kind": "local", "tasks": 2, "workers": 2})
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def replay_recipe(tmp: Path, rows: list[dict], **extra: object) -> Path:
    """`tmp/m.jsonl` holding rows `{q, a, g}` (prompt, answer, generation) and a replay recipe over it."""
    import json

    (tmp / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    columns = {"prompt": "q", "answer": "a", "generations": "g"}
    return write_recipe(tmp, sources=[{"name": "m", "path": "m.jsonl", "columns": columns}], **extra)


def read_ledger(out: Path) -> list[dict]:
    import pyarrow.parquet as pq

    from tracekit.engine.layout import BuildLayout
    from tracekit.ledger.shards import list_shards

    rows: list[dict] = []
    for f in list_shards(BuildLayout(out).ledger):
        rows.extend(pq.read_table(f).to_pylist())
    return sorted(rows, key=lambda r: r["trace_id"])


def read_dataset(out: Path) -> list[dict]:
    import pyarrow.parquet as pq

    from tracekit.engine.layout import BuildLayout
    from tracekit.ledger.shards import list_shards, split_of

    rows: list[dict] = []
    for f in list_shards(BuildLayout(out).dataset_data):
        split = split_of(f.name)
        rows.extend({**r, "_split": split} for r in pq.read_table(f).to_pylist())
    return sorted(rows, key=lambda r: r["trace_id"])
