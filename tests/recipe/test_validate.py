"""`tracekit validate`: every problem named with its key path and line; exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import REPO, run_cli


def write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def test_quickstart_validates_and_prints_resolved_recipe_and_first_prompt() -> None:
    r = run_cli("validate", str(REPO / "pipelines" / "quickstart.yaml"))
    assert r.returncode == 0, r.stderr
    assert "rows_per_shard: 5000" in r.stdout  # a default filled in
    assert "# first rendered prompt" in r.stdout
    first = json.loads((REPO / "pipelines" / "data" / "quickstart-math.jsonl").read_text().splitlines()[0])
    assert first["problem"] in r.stdout


def test_schema_problems_have_key_path_and_line(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"q": "1+1?"}\n')
    recipe = write(
        tmp_path,
        "r.yaml",
        "name: t\n"
        "output: out\n"
        "sources:\n"
        "  - name: a\n"
        "    path: a.jsonl\n"
        "    colums: {prompt: q}\n"  # line 6: unknown key
        "  - name: b\n"
        "    path: a.jsonl\n"
        "    domain: [math]\n"  # line 9: wrong type
        "teacher: {kind: dataset, modle: x}\n"  # line 10: unknown key inside a union member
        "executor: {kind: local, tasks: zero}\n",  # line 11
    )
    r = run_cli("validate", str(recipe))
    assert r.returncode == 2
    err = r.stderr
    assert f"{recipe}:6: sources[0].colums: unknown key" in err
    assert f"{recipe}:9: sources[1].domain:" in err
    assert f"{recipe}:10: teacher.modle: unknown key" in err
    assert f"{recipe}:11: executor.tasks:" in err


def test_missing_key_names_its_parent_line(tmp_path: Path) -> None:
    recipe = write(tmp_path, "r.yaml", "name: t\noutput: o\nsources:\n  - domain: math\n    path: x.jsonl\n")
    r = run_cli("validate", str(recipe))
    assert r.returncode == 2
    assert f"{recipe}:4: sources[0].name: required key is missing" in r.stderr


def test_missing_file_and_missing_column(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"question": "1+1?", "gold": "2"}\n')
    recipe = write(
        tmp_path,
        "r.yaml",
        "name: t\noutput: out\nsources:\n"
        "  - name: a\n    path: a.jsonl\n    columns:\n      prompt: question\n      answer: answer\n"
        "  - name: b\n    path: nope.jsonl\n",
    )
    r = run_cli("validate", str(recipe))
    assert r.returncode == 2
    assert f"{recipe}:8: sources[0].columns.answer: column 'answer' does not exist in a.jsonl" in r.stderr
    assert "question, gold" in r.stderr  # says which columns exist
    assert f"{recipe}:10: sources[1].path: file not found:" in r.stderr


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    recipe = write(tmp_path, "r.yaml", "name: t\noutput: [unclosed\nsources: []\n")
    r = run_cli("validate", str(recipe))
    assert r.returncode == 2
    assert "invalid YAML" in r.stderr and f"{recipe}:" in r.stderr


def test_build_refuses_bad_recipe_with_status_2(tmp_path: Path) -> None:
    recipe = write(tmp_path, "r.yaml", "name: t\noutput: out\nsources: []\n")
    r = run_cli("build", str(recipe))
    assert r.returncode == 2
    assert "sources" in r.stderr
    assert not (tmp_path / "out").exists()


def test_unreachable_hub_source_is_named_not_a_traceback(tmp_path: Path) -> None:
    recipe = write(
        tmp_path,
        "r.yaml",
        "name: t\noutput: out\nsources:\n  - name: remote\n    hub: no-such-org/no-such-dataset\n"
        "    columns: {prompt: question, answer: gold}\n",
    )
    r = run_cli("validate", str(recipe), env={"HF_HUB_OFFLINE": "1"})
    assert r.returncode == 2, r.stderr  # what the recipe reads could not be looked at
    assert f"{recipe}:5: sources[0].hub: source 'remote': Hub dataset 'no-such-org/no-such-dataset' could not be reached" in r.stderr
    assert "not checked: that split 'train' exists, its columns (prompt=question, answer=gold)" in r.stderr
    assert "Traceback" not in r.stderr
    assert "# resolved recipe" in r.stdout
