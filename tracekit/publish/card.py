"""The dataset card (`dataset/README.md`): Hub front matter, how it was built, what is in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import yaml

from tracekit.publish.report import PLOTS, funnel_totals, length_expr, open_build, plots_dir, shortfall_rows
from tracekit.publish.secrets import redact_config, redact_text
from tracekit.stats.summary import REPAIRED_GOLDS_SQL, SUMMARIES, funnel_sql
from tracekit.verify.math.audit import audit_tables
from tracekit.verify.math.policies import card_section as math_policy_section

_SIZES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
)


def size_category(n: int) -> str:
    """The Hub's `size_categories` value for n rows.

    Example:
        >>> size_category(800_000)
        '100K<n<1M'
    """
    for limit, name in _SIZES:
        if n < limit:
            return name
    return "n>1T" if n >= 10**12 else "100M<n<1B"


def _md_table(cols: list[str], rows: list[tuple[Any, ...]] | list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        if isinstance(v, float):
            return f"{v:,.1f}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) if rows else "_(none)_"


def _q(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    rel = con.sql(sql)
    return list(rel.columns), rel.fetchall()


def front_matter(
    *, splits: list[str], rows: int, recipe: dict[str, Any], domains: list[str]
) -> dict[str, Any]:
    """YAML metadata the Hub reads: configs/data_files, license, task categories, size category."""
    fm: dict[str, Any] = {
        "license": recipe.get("license") or "other",
        "task_categories": ["text-generation"],
        "language": ["en"],
        "tags": ["reasoning", "distillation", "synthetic", "tracekit", *sorted(set(domains))],
        "size_categories": [size_category(rows)],
        "pretty_name": recipe.get("name"),
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in splits],
            }
        ],
    }
    return fm


def _example_rows(con: duckdb.DuckDBPyConnection, limit: int = 2, width: int = 600) -> str:
    cols, rows = _q(con, f"SELECT * FROM dataset ORDER BY trace_id LIMIT {limit}")
    out = []
    for r in rows:
        row = dict(zip(cols, r, strict=True))
        msgs = row.get("messages") or []
        row["messages"] = [
            {
                "role": m["role"],
                "content": m["content"]
                if len(m["content"] or "") <= width
                else m["content"][:width] + " [...]",
            }
            for m in msgs
        ]
        out.append(json.dumps(row, ensure_ascii=False, indent=1, default=str))
    return "\n".join(f"```json\n{o}\n```" for o in out) or "_(empty dataset)_"


def write_card(out: Path, recipe_resolved: dict[str, Any]) -> Path:
    """Write `dataset/README.md` for the build in `out`; returns its path.

    Everything comes from the recipe and DuckDB over the ledger and dataset shards. Secrets are
    redacted: keys like `api_key`/`token`, and any value of a secret-looking environment variable.

    Example:
        >>> import yaml
        >>> recipe = yaml.safe_load(open("out/quickstart/recipe.resolved.yaml"))  # doctest: +SKIP
        >>> write_card(Path("out/quickstart"), recipe)  # doctest: +SKIP
        PosixPath('out/quickstart/dataset/README.md')
    """
    out = Path(out)
    recipe = redact_config(recipe_resolved)
    con = open_build(out)
    splits = [
        s
        for (s,) in con.sql(
            "SELECT DISTINCT split FROM dataset WHERE split IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]
    splits = sorted(splits, key=lambda s: (s != "train", s)) or ["train"]
    rows = con.sql("SELECT count(*) FROM dataset").fetchall()[0][0]
    domains = [
        d for (d,) in con.sql("SELECT DISTINCT domain FROM traces WHERE domain IS NOT NULL").fetchall()
    ]
    fm = front_matter(splits=splits, rows=rows, recipe=recipe, domains=domains)
    name = recipe.get("name") or out.name
    repo_id = (recipe.get("publish") or {}).get("repo_id") or f"<owner>/{name}"

    teacher = recipe.get("teacher") or {}
    parts: list[str] = [
        f"# {name}",
        recipe.get("description") or "A reasoning-distillation dataset built with tracekit.",
        f"{rows:,} rows ({', '.join(splits)}), built with tracekit from "
        f"{len(recipe.get('sources') or [])} source(s). Every sampled trace, kept or not, is in the build's ledger.",
        "## Load it",
        "```python\nfrom datasets import load_dataset\n\n"
        f'ds = load_dataset("{repo_id}")\n'
        'print(ds["train"][0]["messages"])\n```\n'
        "Each row: `messages` (user/assistant; the assistant turn keeps `<think>...</think>`), `trace_id`, "
        "`prompt_id`, `source`, `domain`, `bucket`, `num_tokens`, `verified`.",
        "## Teacher and sampling",
        "```yaml\n" + yaml.safe_dump(teacher, sort_keys=False, allow_unicode=True) + "```",
    ]
    src_cols = ["name", "domain", "path", "hub", "limit", "system_prompt", "prompt_template"]
    parts.append(_md_table(src_cols, [[s.get(c) for c in src_cols] for s in recipe.get("sources") or []]))

    parts.append("## Composition")
    sf = shortfall_rows(out)
    cols, bucket_rows = _q(
        con,
        "SELECT coalesce(bucket, '(none)') AS bucket, split, count(*) AS rows FROM dataset GROUP BY ALL ORDER BY ALL",
    )
    parts.append("Rows per bucket and split:\n\n" + _md_table(cols, bucket_rows))
    if sf:
        parts.append(
            "Mix quotas (a bucket is short when fewer traces were available than requested):\n\n"
            + _md_table(list(sf[0]), [tuple(r.values()) for r in sf])
        )
    parts.append(
        "Rows per source:\n\n"
        + _md_table(
            *_q(con, "SELECT source, domain, split, count(*) AS rows FROM dataset GROUP BY ALL ORDER BY ALL")
        )
    )

    parts.append("## Lengths")
    parts.append(
        "Tokens per dataset row (prompt + completion, when counted):\n\n"
        + _md_table(
            *_q(
                con,
                """
            SELECT domain, count(num_tokens) AS counted, quantile_cont(num_tokens, 0.1) AS p10,
                   quantile_cont(num_tokens, 0.5) AS p50, quantile_cont(num_tokens, 0.9) AS p90,
                   max(num_tokens) AS max
            FROM dataset GROUP BY ALL ORDER BY domain""",
            )
        )
    )
    expr, unit = length_expr(con)
    parts.append(
        f"Completion {unit} of the kept traces:\n\n"
        + _md_table(
            *_q(
                con,
                f"""
            SELECT domain, quantile_cont({expr}, 0.5) AS p50, quantile_cont({expr}, 0.9) AS p90,
                   quantile_cont({expr}, 0.99) AS p99, max({expr}) AS max
            FROM traces WHERE kept GROUP BY ALL ORDER BY domain""",
            )
        )
    )

    parts.append("## Verification")
    parts.append(
        _md_table(
            *_q(
                con,
                """
            SELECT source, count(*) AS traces,
                   round(100.0 * count(*) FILTER (WHERE verdict = 'correct') / count(*), 1) AS correct_pct,
                   round(100.0 * count(*) FILTER (WHERE verdict = 'incorrect') / count(*), 1) AS incorrect_pct,
                   round(100.0 * count(*) FILTER (WHERE verdict = 'error') / count(*), 1) AS error_pct,
                   round(100.0 * count(*) FILTER (WHERE verdict = 'unverified') / count(*), 1) AS unverified_pct
            FROM traces GROUP BY source ORDER BY source""",
            )
        )
    )

    cols, refs = _q(con, SUMMARIES["references"])
    if any(r[1] not in ("given", "(none)") for r in refs):
        parts.append(
            "Reference answers: `given` by the source, `majority` of the prompt's samples (no gold), "
            "`repaired` (no sample matched the given gold and a strong majority agreed on another; the "
            "given gold stays in the ledger's `gold_answer`), `no_majority` (no gold and no majority: "
            "unverified):\n\n" + _md_table(cols, refs)
        )
        cols, repaired = _q(con, REPAIRED_GOLDS_SQL + " LIMIT 50")
        if repaired:
            parts.append("Repaired gold answers (at most 50):\n\n" + _md_table(cols, repaired))

    policies = math_policy_section(recipe)
    if policies:
        parts.append(policies)
    for title, cols, rows in audit_tables(out):  # a second opinion on a sample of verdicts
        parts.append(f"{title[0].upper() + title[1:]} (95% Wilson intervals):\n\n" + _md_table(cols, rows))

    parts.append("## Funnel")
    totals = funnel_totals(con)
    parts.append(_md_table([n for n, _ in totals], [[v for _, v in totals]]))
    parts.append("Per source:\n\n" + _md_table(*_q(con, funnel_sql())))
    parts.append(
        "Drop reasons:\n\n"
        + _md_table(
            *_q(
                con,
                "SELECT drop_reason, count(*) AS traces FROM traces WHERE NOT kept GROUP BY 1 ORDER BY 2 DESC, 1",
            )
        )
    )
    parts.append(
        "Decontamination hits per benchmark:\n\n"
        + _md_table(
            *_q(
                con,
                """
        SELECT c.benchmark, count(DISTINCT trace_id) AS traces, count(DISTINCT prompt_id) AS prompts
        FROM (SELECT trace_id, prompt_id, unnest(contamination) AS c FROM traces)
        GROUP BY ALL ORDER BY traces DESC""",
            )
        )
    )

    folder = plots_dir(out)
    imgs = [f"![{p}](plots/{p}.png)" for p in PLOTS if (folder / f"{p}.png").exists()]
    if imgs:
        parts.append("## Plots\n\n" + "\n\n".join(imgs))

    parts.append("## Example rows")
    parts.append(_example_rows(con))
    parts.append("## Recipe\n\nThe resolved recipe (every default filled in):")
    parts.append("```yaml\n" + yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True) + "```")

    text = (
        "---\n"
        + yaml.safe_dump(fm, sort_keys=False, allow_unicode=True)
        + "---\n\n"
        + "\n\n".join(parts)
        + "\n"
    )
    path = out / "dataset" / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(redact_text(text), encoding="utf-8")
    return path
