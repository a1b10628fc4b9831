"""`report.html` and the PNG plots of a build: funnel, lengths by domain, verdicts by source, mix."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import duckdb

from tracekit.publish.secrets import redact_text
from tracekit.stats.db import connect
from tracekit.stats.summary import funnel_sql
from tracekit.verify.math.audit import audit_tables

PLOTS = ("funnel", "lengths", "verdicts", "mix")
FUNNEL_STAGES = ("sampled", "complete", "verified", "filtered", "deduped", "decontaminated", "kept")


def plots_dir(out: Path) -> Path:
    """Where the plots live: inside `dataset/` so the card links them locally and on the Hub."""
    return out / "dataset" / "plots"


def shortfall_rows(out: Path) -> list[dict[str, Any]] | None:
    """The mix shortfall table of a build (bucket, requested, available, selected, short), if mixed."""
    for p in (out / "work" / "decisions" / "mix.shortfall.json", out / "mix.shortfall.json"):
        if p.exists():
            rows: list[dict[str, Any]] = json.loads(p.read_text())
            return rows
    return None


def open_build(out: Path) -> duckdb.DuckDBPyConnection:
    """`stats.connect` with a `dataset` view that has every dataset column even when no row was kept."""
    con = connect(out)
    if not list((Path(out) / "dataset" / "data").glob("*.parquet")):
        con.execute(
            "CREATE OR REPLACE VIEW dataset AS SELECT NULL::STRUCT(role VARCHAR, content VARCHAR)[] AS messages, "
            "NULL::VARCHAR AS trace_id, NULL::VARCHAR AS prompt_id, NULL::VARCHAR AS source, NULL::VARCHAR AS domain, "
            "NULL::VARCHAR AS bucket, NULL::BIGINT AS num_tokens, NULL::BOOLEAN AS verified, NULL::VARCHAR AS split "
            "WHERE false"
        )
    return con


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    rel = con.sql(sql)
    return list(rel.columns), rel.fetchall()


def funnel_totals(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    cols, rows = _rows(con, funnel_sql())
    return [(name, int(sum(r[cols.index(name)] or 0 for r in rows))) for name in FUNNEL_STAGES]


def length_expr(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """Completion length in tokens when counted, else in characters (and the unit's name)."""
    counted = con.sql("SELECT count(completion_tokens) FROM traces").fetchall()[0][0]
    return ("completion_tokens", "tokens") if counted else ("completion_chars", "characters")


def _plot_funnel(con: duckdb.DuckDBPyConnection, ax: Any) -> None:
    data = funnel_totals(con)
    names, values = [n for n, _ in data], [v for _, v in data]
    bars = ax.barh(names[::-1], values[::-1], color="#4c72b0")
    ax.bar_label(bars, labels=[f"{v:,}" for v in values[::-1]], padding=3, fontsize=8)
    ax.set_title("Funnel: traces left after each stage")
    ax.set_xlabel("traces")


def _plot_lengths(con: duckdb.DuckDBPyConnection, fig: Any) -> None:
    expr, unit = length_expr(con)
    doms = [d for (d,) in con.sql("SELECT DISTINCT coalesce(domain, '?') FROM traces ORDER BY 1").fetchall()]
    axes = fig.subplots(1, max(1, len(doms)), squeeze=False)[0]
    for ax, dom in zip(axes, doms, strict=False):
        for kept, color in ((False, "#c44e52"), (True, "#55a868")):
            vals = [
                v
                for (v,) in con.execute(
                    f"SELECT {expr} FROM traces WHERE coalesce(domain, '?') = ? AND kept = ? AND {expr} IS NOT NULL",
                    [dom, kept],
                ).fetchall()
            ]
            if vals:
                ax.hist(vals, bins=30, alpha=0.6, color=color, label="kept" if kept else "dropped")
        ax.set_title(dom)
        ax.set_xlabel(f"completion {unit}")
        ax.legend(fontsize=7)
    fig.suptitle("Completion length by domain")


def _plot_verdicts(con: duckdb.DuckDBPyConnection, ax: Any) -> None:
    _, rows = _rows(
        con, "SELECT source, coalesce(verdict, 'unverified'), count(*) FROM traces GROUP BY ALL ORDER BY 1"
    )
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
    _, rows = _rows(
        con,
        "SELECT coalesce(bucket, source) AS part, split, count(*) FROM dataset GROUP BY ALL ORDER BY 1, 2",
    )
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


def write_plots(out: Path) -> dict[str, Path]:
    """Render the four PNG plots into `dataset/plots/`; returns name -> path."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend machinery to import (~1 s)

    con = open_build(out)
    folder = plots_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in PLOTS:
        if name == "lengths":
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


def write_report(out: Path) -> Path:
    """Write `out/report.html` (self-contained: plots embedded) and the PNGs in `dataset/plots/`.

    Example:
        >>> write_report(Path("out/quickstart"))  # doctest: +SKIP
        PosixPath('out/quickstart/report.html')
    """
    out = Path(out)
    paths = write_plots(out)
    con = open_build(out)
    sections = []
    for name, title in (
        ("funnel", "Funnel"),
        ("lengths", "Completion lengths"),
        ("verdicts", "Verdicts"),
        ("mix", "Mix"),
    ):
        data = base64.b64encode(paths[name].read_bytes()).decode("ascii")
        sections.append(f'<h2>{title}</h2><img alt="{name}" src="data:image/png;base64,{data}">')
    tables = [
        ("Funnel per source", *_rows(con, funnel_sql())),
        (
            "Drop reasons",
            *_rows(
                con,
                "SELECT coalesce(drop_reason, '(kept)') AS drop_reason, count(*) AS traces FROM traces GROUP BY 1 ORDER BY 2 DESC",
            ),
        ),
        (
            "Dataset",
            *_rows(
                con,
                "SELECT split, coalesce(bucket, '') AS bucket, source, count(*) AS rows FROM dataset GROUP BY ALL ORDER BY ALL",
            ),
        ),
    ]
    sf = shortfall_rows(out)
    if sf:
        tables.append(("Mix shortfall", list(sf[0]), [tuple(r.values()) for r in sf]))
    tables += audit_tables(out)  # the verifier audit, when the build made one
    for title, cols, rows in tables:
        sections.append(f"<h2>{html.escape(title)}</h2>{_table(cols, rows)}")
    total, kept = con.sql("SELECT count(*), count(*) FILTER (WHERE kept) FROM traces").fetchall()[0]
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(out.name)}: tracekit report</title>
<link rel="icon" href="data:,">
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
img {{ max-width: 100%; }} table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }} th {{ background: #f3f3f3; }}
</style></head><body>
<h1>{html.escape(out.name)}</h1>
<p>{total:,} traces sampled, {kept:,} kept in the dataset.</p>
{"".join(sections)}
</body></html>
"""
    path = out / "report.html"
    path.write_text(redact_text(page), encoding="utf-8")
    return path
