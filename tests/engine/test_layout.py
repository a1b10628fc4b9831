"""One owner for the paths of an output folder: `BuildLayout` (and `EvalLayout` for `tracekit eval`)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO
from tracekit.engine.layout import BuildLayout

# names that only mean something inside a build's output folder
BUILD_NAMES = {
    "ledger", "dataset", "work", "recipe.resolved.yaml", "report.html", "decisions", "traces", "staged",
    "rounds", "completions", "executor.json", "slurm_logs", "stages.json", "build.log", ".tracekit.json",
}
OWNERS = {"tracekit/engine/layout.py", "tracekit/eval/layout.py"}


def spelled_paths(source: str) -> list[tuple[int, str]]:
    """`x / "name"` and `Path("name/...")` in code (not in docstrings) whose first segment is a build name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        parts: list[ast.expr] = []
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            parts = [node.left, node.right]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Path":
            parts = list(node.args[:1])
        for p in parts:
            if isinstance(p, ast.Constant) and isinstance(p.value, str) and p.value.split("/")[0] in BUILD_NAMES:
                found.append((node.lineno, p.value))
    return found


def test_only_the_layouts_spell_the_output_folders_paths() -> None:
    spelled = {
        f"{f.relative_to(REPO)}:{line}": name
        for f in sorted((REPO / "tracekit").rglob("*.py"))
        if str(f.relative_to(REPO)) not in OWNERS
        for line, name in spelled_paths(f.read_text())
    }
    assert spelled == {}


def test_the_scan_sees_both_spellings() -> None:
    code = 'x = out / "ledger"\ny = Path("work/traces")\nz = out / "notes"\n"""out / "dataset" in a docstring"""\n'
    assert spelled_paths(code) == [(1, "ledger"), (2, "work/traces")]


def test_every_path_of_the_layout_lies_inside_the_output_folder(tmp_path: Path) -> None:
    layout = BuildLayout(tmp_path / "out")
    paths = [getattr(layout, name) for name in dir(BuildLayout) if isinstance(getattr(BuildLayout, name), property)]
    paths += [layout.stage_logs("sample"), layout.task_log("sample", 3), layout.decision("mix"), layout.round_sampled(2)]
    for p in paths:
        for q in p if isinstance(p, tuple) else (p,):
            assert q.is_relative_to(layout.out), q
    assert not (tmp_path / "out").exists()  # naming paths touches nothing
