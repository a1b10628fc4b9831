"""The house's import rules, measured from the source (scripts/import_graph.py): no import circles between
files, nothing importing a floor above its own (stages never import the engine), few loose modules."""

from __future__ import annotations

import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import import_graph  # noqa: E402


def test_no_circles_no_upward_imports_few_loose_modules() -> None:
    m = import_graph.measure(REPO)
    assert m["circles"] == []
    assert m["upward"] == []
    assert len(m["loose"]) <= import_graph.MAX_LOOSE, m["loose"]
    assert m["private"] == []


def test_the_measure_sees_function_level_and_type_checking_imports(tmp_path) -> None:
    pkg = tmp_path / "tracekit"
    (pkg / "engine").mkdir(parents=True)
    (pkg / "mix").mkdir()
    for f in ("__init__.py", "engine/__init__.py", "mix/__init__.py", "record.py"):
        (pkg / f).write_text("")
    (pkg / "engine" / "plan.py").write_text("from tracekit.mix import stage\n")
    (pkg / "mix" / "stage.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tracekit.engine.plan import X\n"
    )
    (pkg / "mix" / "resample.py").write_text("def f():\n    from ..engine import plan\n")
    (pkg / "a.py").write_text("import tracekit.b\n")
    (pkg / "b.py").write_text("def g():\n    import tracekit.a\n")
    (pkg / "mix" / "own.py").write_text("from tracekit.mix.stage import _x\nfrom tracekit.engine.plan import _y\n")
    m = import_graph.measure(tmp_path)
    assert m["circles"] == [["tracekit.a", "tracekit.b"], ["tracekit.engine.plan", "tracekit.mix.stage"]]
    assert [u.split(" (")[0] for u in m["upward"]] == [
        "tracekit.mix.own -> tracekit.engine.plan",
        "tracekit.mix.resample -> tracekit.engine.plan",
        "tracekit.mix.stage -> tracekit.engine.plan",
    ]
    assert m["loose"] == ["tracekit.a", "tracekit.b", "tracekit.record"]
    assert m["private"] == ["tracekit.mix.own: tracekit.engine.plan._y"]
