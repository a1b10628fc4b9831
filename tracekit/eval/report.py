"""Reports of an evaluation: results.json, results.md (one table per benchmark, models side by side)
and the same table on the console.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tracekit.eval.layout import EvalLayout
from tracekit.eval.results import BenchResult


def _pct(v: float | None) -> str:
    return "-" if v is None or math.isnan(v) else f"{100 * v:.1f}"


def table_rows(results: list[BenchResult], ks: list[int]) -> tuple[list[str], dict[str, list[list[str]]]]:
    """Header and, per benchmark, one row per model (the order the models were given)."""
    header = ["model", "problems", "n"]
    header += [f"pass@{k} (CI)" for k in ks]
    header += ["gap", "distinct answers", "mean tokens", "truncated %", "errors %"]
    per_bench: dict[str, list[list[str]]] = {}
    for r in results:
        n_values = {row["n"] for row in r.per_problem}
        n = str(next(iter(n_values))) if len(n_values) == 1 else f"{min(n_values)}-{max(n_values)}"
        cells = [r.model, str(r.problems), n]
        for p in r.pass_at:
            cells.append("-" if not p.problems else f"{_pct(p.value)} ({_pct(p.low)}-{_pct(p.high)})")
        tokens = r.mean_completion_tokens
        cells += [
            _pct(r.gap),
            f"{r.distinct_answers:.2f}",
            "-" if tokens is None else f"{tokens:.0f}",
            _pct(r.truncation_rate),
            _pct(r.error_rate),
        ]
        per_bench.setdefault(r.benchmark, []).append(cells)
    return header, per_bench


def markdown_report(results: list[BenchResult], meta: dict[str, Any]) -> str:
    ks = meta["k"]
    header, per_bench = table_rows(results, ks)
    lines = [
        "# Evaluation",
        "",
        f"pass@k in % (unbiased estimator over n samples per problem); CI: {int(100 * meta['confidence'])}% "
        "percentile bootstrap over problems. gap: pass@k_max - pass@1 in points. distinct answers: mean "
        "number of different final answers per problem.",
        "",
    ]
    for bench, rows in per_bench.items():
        info = meta["benchmarks"].get(bench, {})
        lines += [f"## {bench}", ""]
        notes = []
        if info.get("fresh_after"):
            notes.append(
                f"problems published after {info['fresh_after']}: {info['problems']} "
                f"(of {info['loaded']}; {info['undated']} without a date left out)"
            )
        if info.get("overlap_problems"):
            notes.append(
                f"**warning: {info['overlap_problems']} problem(s) overlap training data** "
                f"({', '.join(info['overlap_with'])})"
            )
        if notes:
            lines += [*notes, ""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        lines.append("")
    return "\n".join(lines)


def write_reports(layout: EvalLayout, results: list[BenchResult], meta: dict[str, Any]) -> dict[str, Path]:
    layout.out.mkdir(parents=True, exist_ok=True)
    data = {**meta, "results": [r.to_dict() for r in results]}
    js, md = layout.results_json, layout.results_md
    js.write_text(json.dumps(data, indent=1, default=str, allow_nan=True))
    md.write_text(markdown_report(results, meta))
    return {"json": js, "markdown": md}


def print_report(results: list[BenchResult], meta: dict[str, Any]) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 200)  # pipes and logs get the whole table
    header, per_bench = table_rows(results, meta["k"])
    for bench, rows in per_bench.items():
        t = Table(title=bench, title_justify="left")
        for h in header:
            t.add_column(h, justify="left" if h == "model" else "right")
        for r in rows:
            t.add_row(*r)
        console.print(t)
