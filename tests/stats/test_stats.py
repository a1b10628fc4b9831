"""`tracekit stats`: canned summaries and --sql in table, json and csv, over DuckDB views."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("stats")
    text = (REPO / "pipelines" / "quickstart.yaml").read_text()
    text = text.replace("output: ../out/quickstart", f"output: {tmp / 'out'}")
    text = text.replace("path: data/", f"path: {REPO / 'pipelines' / 'data'}/")
    (tmp / "r.yaml").write_text(text)
    r = run_cli("build", str(tmp / "r.yaml"))
    assert r.returncode == 0, r.stderr
    return tmp / "out"


def test_sql_json_is_one_array_of_row_objects(built: Path) -> None:
    r = run_cli("stats", str(built), "--sql", "SELECT source, count(*) AS n FROM traces GROUP BY 1 ORDER BY 1", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    math_lines = (REPO / "pipelines" / "data" / "quickstart-math.jsonl").read_text().splitlines()
    gens = sum(len(json.loads(x)["generations"]) for x in math_lines)
    chat = len((REPO / "pipelines" / "data" / "quickstart-chat.jsonl").read_text().splitlines())
    assert rows == [{"source": "toy-chat", "n": chat}, {"source": "toy-math", "n": gens}]


def test_sql_csv_and_table(built: Path) -> None:
    r = run_cli("stats", str(built), "--sql", "SELECT count(*) AS kept FROM dataset", "--format", "csv")
    assert r.returncode == 0
    rows = list(csv.reader(io.StringIO(r.stdout)))
    kept = run_cli("stats", str(built), "--sql", "SELECT count(*) AS k FROM traces WHERE kept", "--format", "json")
    assert rows[0] == ["kept"] and int(rows[1][0]) == json.loads(kept.stdout)[0]["k"] > 0
    t = run_cli("stats", str(built), "--sql", "SELECT 1 AS one")
    assert "one" in t.stdout and "1" in t.stdout


def test_canned_summaries(built: Path) -> None:
    r = run_cli("stats", str(built), "--format", "json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    for name in ("by source", "verdicts", "drop reasons", "funnel", "completion tokens", "traces per prompt", "contamination"):
        assert name in s
    funnel = {row["source"]: row for row in s["funnel"]}
    m = funnel["toy-math"]
    assert m["sampled"] >= m["complete"] >= m["verified"] >= m["filtered"] >= m["deduped"] >= m["kept"]
    reasons = {row["drop_reason"]: row["traces"] for row in s["drop reasons"]}
    assert reasons.get("truncated", 0) > 0  # the quickstart has cut-off traces
    table = run_cli("stats", str(built))
    assert "funnel" in table.stdout and "toy-math" in table.stdout


def test_bad_query_and_missing_folder_are_clear(built: Path, tmp_path: Path) -> None:
    r = run_cli("stats", str(built), "--sql", "SELECT nope FROM traces")
    assert r.returncode == 2 and "nope" in r.stderr
    r = run_cli("stats", str(tmp_path))
    assert r.returncode == 2 and "no ledger" in r.stderr
