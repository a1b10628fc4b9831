"""`report.html` and the PNG plots of a build: funnel, lengths by domain, verdicts by source, mix."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from tracekit.publish.secrets import redact_text
from tracekit.stats import queries

# `selection` only for builds that select prompts (`select:`); the others always
PLOTS = ("selection", "funnel", "lengths", "verdicts", "mix")


def _plot_selection(con: duckdb.DuckDBPyConnection, fig: Any) -> None:
    """Prompts left after each selection step; pass rates, difficulty ratings and domain labels."""
    axes = fig.subplots(1, 4)
    data = queries.select_funnel_totals(con)
    bars = axes[0].barh([n for n, _ in data][::-1], [v for _, v in data][::-1], color="#4c72b0")
    axes[0].bar_label(bars, labels=[f"{v:,}" for _, v in data][::-1], padding=3, fontsize=7)
    axes[0].set_title("Selection funnel (prompts)")
    rates = {s: queries.prompt_pass_rates(con, sampled=s) for s in (False, True)}
    for sampled, color, label in ((False, "#c44e52", "not sampled"), (True, "#55a868", "sampled")):
        if rates[sampled]:
            axes[1].hist(rates[sampled], bins=20, range=(0, 1), alpha=0.6, color=color, label=label)
    axes[1].set_title("Pass rate")
    axes[1].set_ylabel("prompts")
    ratings = queries.difficulty_ratings(con)
    axes[2].bar(range(1, 11), [ratings.get(i, 0) for i in range(1, 11)], color="#8172b2")
    axes[2].set_xticks(range(1, 11))
    axes[2].set_title("Difficulty rating")
    doms = queries.domain_labels(con)
    axes[3].barh([d for d, _ in doms][::-1], [n for _, n in doms][::-1], color="#dd8452")
    axes[3].set_title("Domain label")
    axes[3].tick_params(axis="y", labelsize=7)
    for ax, empty in ((axes[1], not any(rates.values())), (axes[2], not ratings), (axes[3], not doms)):
        title = ax.get_title()
        if empty:
            ax.cla()
            ax.set_axis_off()
            ax.text(0.5, 0.5, "none in this build", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(title)
        elif ax is axes[1]:
            ax.legend(fontsize=7)


def _plot_funnel(con: duckdb.DuckDBPyConnection, ax: Any) -> None:
    data = queries.funnel_totals(con)
    names, values = [n for n, _ in data], [v for _, v in data]
    bars = ax.barh(names[::-1], values[::-1], color="#4c72b0")
    ax.bar_label(bars, labels=[f"{v:,}" for v in values[::-1]], padding=3, fontsize=8)
    ax.set_title("Funnel: traces left after each stage")
    ax.set_xlabel("traces")


def _plot_lengths(con: duckdb.DuckDBPyConnection, fig: Any) -> None:
    _, unit = queries.length_expr(con)
    doms = queries.trace_domains(con)
    axes = fig.subplots(1, max(1, len(doms)), squeeze=False)[0]
    for ax, dom in zip(axes, doms, strict=False):
        for kept, color in ((False, "#c44e52"), (True, "#55a868")):
            vals = queries.completion_lengths(con, domain=dom, kept=kept)
            if vals:
                ax.hist(vals, bins=30, alpha=0.6, color=color, label="kept" if kept else "dropped")
        ax.set_title(dom)
        ax.set_xlabel(f"completion {unit}")
        ax.legend(fontsize=7)
    fig.suptitle("Completion length by domain")


def _plot_verdicts(con: duckdb.DuckDBPyConnection, ax: Any) -> None:
    _, rows = queries.verdicts_by_source(con)
    sources = sorted({r[0] for r in rows})
    colors = {"correct": "#55a868", "incorrect": "#c44e52", "error": "#8172b2", "unverified": "#999999"}
    left = [0] * len(sources)
    for verdict, color in colors.items():
        vals = [next((n for s, v, n in rows if s == src and v == verdict), 0) for src in sources]
        ax.barh(sources, vals, left=left, color=color, label=verdict)
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.set_title("Verdicts by source")
    ax.set_xlabel("traces")
    ax.legend(fontsize=8)


def _plot_mix(con: duckdb.DuckDBPyConnection, ax: Any) -> None:
    _, rows = queries.composition(con)
    parts = sorted({r[0] for r in rows})
    splits = sorted({r[1] for r in rows})
    left = [0] * len(parts)
    for split, color in zip(splits, ("#4c72b0", "#dd8452", "#55a868"), strict=False):
        vals = [next((n for p, s, n in rows if p == part and s == split), 0) for part in parts]
        ax.barh(parts, vals, left=left, color=color, label=split)
        left = [a + b for a, b in zip(left, vals, strict=True)]
    if parts:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "empty dataset", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Dataset composition (bucket, or source when not mixed)")
    ax.set_xlabel("rows")


def write_plots(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, Path]:
    """Render the PNG plots into `folder` (`selection` only when the build selected prompts); returns
    name -> path."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend machinery to import (~1 s)

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in PLOTS:
        if name == "selection":
            if not queries.uses_select(con):
                continue
            fig = Figure(figsize=(14, 3.5))
            _plot_selection(con, fig)
        elif name == "lengths":
            fig = Figure(figsize=(10, 3.5))
            _plot_lengths(con, fig)
        else:
            fig = Figure(figsize=(8, 3.5))
            ax = fig.subplots()
            {"funnel": _plot_funnel, "verdicts": _plot_verdicts, "mix": _plot_mix}[name](con, ax)
        fig.tight_layout()
        paths[name] = folder / f"{name}.png"
        fig.savefig(paths[name], dpi=100)
    return paths


def _table(cols: list[str], rows: list[tuple[Any, ...]]) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape('' if v is None else f'{v:,}' if isinstance(v, int) else str(v))}</td>"
            for v in r
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(
    con: duckdb.DuckDBPyConnection,
    *,
    path: Path,
    plots: Path,
    title: str,
    shortfall: list[dict[str, Any]] | None = None,
    extra: Sequence[tuple[str, list[str], list[tuple[Any, ...]]]] = (),
) -> Path:
    """Write the PNG plots into `plots` and a self-contained `path` (HTML, plots embedded); `extra`
    tables (title, columns, rows), such as the verifier audit, go after the built-in ones.

    Example:
        >>> write_report(con, path=Path("out/quickstart/report.html"), plots=Path("out/quickstart/dataset/plots"),
        ...              title="quickstart")  # doctest: +SKIP
        PosixPath('out/quickstart/report.html')
    """
    paths = write_plots(con, plots)
    sections = []
    for name, heading in (
        ("selection", "Selection"),
        ("funnel", "Funnel"),
        ("lengths", "Completion lengths"),
        ("verdicts", "Verdicts"),
        ("mix", "Mix"),
    ):
        if name not in paths:
            continue
        data = base64.b64encode(paths[name].read_bytes()).decode("ascii")
        sections.append(f'<h2>{heading}</h2><img alt="{name}" src="data:image/png;base64,{data}">')
    tables = [
        *([("Selection funnel per source (prompts)", *queries.select_funnel_per_source(con))] if "selection" in paths else []),
        ("Funnel per source", *queries.funnel_per_source(con)),
        ("Drop reasons", *queries.outcomes(con)),
        ("Dataset", *queries.rows_per_split_bucket_source(con)),
    ]
    if shortfall:
        tables.append(("Mix shortfall", list(shortfall[0]), [tuple(r.values()) for r in shortfall]))
    tables += extra
    for heading, cols, rows in tables:
        sections.append(f"<h2>{html.escape(heading)}</h2>{_table(cols, rows)}")
    total, kept = queries.trace_totals(con)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}: tracekit report</title>
<link rel="icon" href="data:,">
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
img {{ max-width: 100%; }} table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }} th {{ background: #f3f3f3; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{total:,} traces sampled, {kept:,} kept in the dataset.</p>
{"".join(sections)}
</body></html>
"""
    path.write_text(redact_text(page), encoding="utf-8")
    return path
