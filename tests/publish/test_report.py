"""report.html of a real toy build, opened in headless Chromium: it renders and logs no errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.publish.chromium import chromium_binary, open_page
from tracekit.engine.finish import open_build
from tracekit.engine.layout import BuildLayout
from tracekit.publish.report import write_report

pytestmark = pytest.mark.slow

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_renders_without_console_errors(built: Path, tmp_path: Path) -> None:
    report = BuildLayout(built).report
    html = report.read_text()
    for name in ("funnel", "lengths", "verdicts", "mix"):
        assert f'alt="{name}"' in html
    assert "Mix shortfall" in html
    assert chromium_binary(), "chromium missing: run scripts/setup.sh"
    shot = tmp_path / "report.png"
    errors = open_page(report.as_uri(), screenshot=shot)
    assert errors == []
    assert shot.read_bytes().startswith(PNG) and shot.stat().st_size > 20_000  # a page with plots, not blank


def test_the_error_detector_sees_errors(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text(
        '<html><body><img src="missing.png"><script>console.error("boom"); nope();</script></body></html>'
    )
    errors = open_page(page.as_uri(), screenshot=tmp_path / "bad.png")
    assert any("boom" in e for e in errors)
    assert any("nope" in e for e in errors)
    assert any("missing.png" in e or "Failed to load" in e for e in errors)


def test_report_is_rewritten_from_the_ledger(built: Path) -> None:
    layout = BuildLayout(built)
    (layout.plots / "mix.png").unlink()
    path = write_report(open_build(layout), path=layout.report, plots=layout.plots, title="toy")
    assert path == layout.report
    assert (layout.plots / "mix.png").read_bytes().startswith(PNG)
