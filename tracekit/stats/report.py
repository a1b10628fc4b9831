"""Printing summaries and query results (table, JSON, CSV)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any, Literal

import duckdb
from rich.table import Table

from tracekit.stats.queries import drop_reasons, trace_totals, unsampled_prompts
from tracekit.stats.summary import SUMMARIES, run_summary

Format = Literal["table", "json", "csv"]
NamedTable = tuple[str, list[str], list[tuple[Any, ...]]]  # (title, columns, rows)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return str(v)


def render(columns: list[str], rows: list[tuple[Any, ...]], fmt: Format, title: str | None = None) -> str:
    if fmt == "json":
        return json.dumps(
            [{c: _jsonable(v) for c, v in zip(columns, r, strict=True)} for r in rows], ensure_ascii=False
        )
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(columns)
        w.writerows(rows)
        return buf.getvalue().rstrip("\n")
    from rich.console import Console

    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*("" if v is None else f"{v:,}" if isinstance(v, int) else str(v) for v in r))
    buf = io.StringIO()
    Console(file=buf, width=140, force_terminal=False).print(t)
    return buf.getvalue().rstrip("\n")


def run_sql(con: duckdb.DuckDBPyConnection, sql: str, *, fmt: Format = "table") -> str:
    """The result of `sql` over the views, rendered."""
    rel = con.sql(sql)
    if rel is None:
        return ""
    return render(list(rel.columns), rel.fetchall(), fmt)


def print_stats(
    con: duckdb.DuckDBPyConnection, *, fmt: Format = "table", extra: Sequence[NamedTable] = ()
) -> None:
    """Every canned summary (`SUMMARIES`), then the `extra` tables (e.g. the verifier audit), rendered."""
    tables = [(name, *run_summary(con, name)) for name in SUMMARIES]
    tables += list(extra)
    if fmt == "json":
        result = {
            name: [{c: _jsonable(v) for c, v in zip(cols, r, strict=True)} for r in rows]
            for name, cols, rows in tables
        }
        print(json.dumps(result, ensure_ascii=False))
        return
    for name, cols, rows in tables:
        if fmt == "csv":
            print(f"# {name}")
        print(render(cols, rows, fmt, title=name))
        print()


def final_table(con: duckdb.DuckDBPyConnection, *, name: str, seconds: float, bad_rows: int = 0) -> Table:
    """What a build ends with: sampled, kept, dropped by reason, and the bad source rows skipped."""
    total, kept = trace_totals(con)
    _, reasons = drop_reasons(con)
    t = Table(title=f"{name}: {total:,} traces in {seconds:,.1f}s", title_justify="left")
    t.add_column("")
    t.add_column("traces", justify="right")
    t.add_column("%", justify="right")
    pct = (lambda n: f"{100.0 * n / total:.1f}") if total else (lambda n: "-")
    t.add_row("sampled", f"{total:,}", pct(total))
    t.add_row("[green]kept[/]", f"{kept:,}", pct(kept))
    for reason, n in reasons:
        t.add_row(f"  dropped: {reason}", f"{n:,}", pct(n))
    for reason, n in unsampled_prompts(con)[1]:
        t.add_row(f"  prompts not sampled (select): {reason}", f"{n:,}", "")
    if bad_rows:
        t.add_row("[yellow]unreadable source rows skipped[/]", f"{bad_rows:,}", "")
    return t
