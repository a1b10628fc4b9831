"""The committed JSON Schemas match the models (regenerate with `python -m tracekit.recipe.schemas`)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from tests.conftest import REPO
from tracekit.recipe.schemas import render
from tracekit.record import LEDGER_COLUMNS


def test_committed_schemas_are_current() -> None:
    for name, text in render().items():
        committed = (REPO / "schemas" / name).read_text()
        assert committed == text, f"schemas/{name} is stale: run `python -m tracekit.recipe.schemas`"


def test_trace_schema_lists_every_ledger_column() -> None:
    schema = json.loads((REPO / "schemas" / "trace.schema.json").read_text())
    assert set(schema["properties"]) == set(LEDGER_COLUMNS)
    assert schema["properties"]["verdict"]["enum"] == ["correct", "incorrect", "error", "unverified"]


def test_ledger_shards_follow_the_trace_schema(tmp_path) -> None:
    from tests.conftest import run_cli

    recipe = REPO / "pipelines" / "quickstart.yaml"
    text = recipe.read_text().replace("output: ../out/quickstart", f"output: {tmp_path / 'out'}")
    (tmp_path / "r.yaml").write_text(text.replace("path: data/", f"path: {REPO / 'pipelines' / 'data'}/"))
    r = run_cli("build", str(tmp_path / "r.yaml"))
    assert r.returncode == 0, r.stderr
    schema = json.loads((REPO / "schemas" / "trace.schema.json").read_text())
    for f in (tmp_path / "out" / "ledger").glob("*.parquet"):
        assert set(pq.read_schema(f).names) == set(schema["properties"])
