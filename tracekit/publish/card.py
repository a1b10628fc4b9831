"""The dataset card (`dataset/README.md`): Hub front matter, how it was built, what is in it."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import yaml

from tracekit.publish.report import PLOTS
from tracekit.publish.secrets import redact_config, redact_text
from tracekit.stats import queries
from tracekit.stats.report import NamedTable
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
    out = []
    for row in queries.example_rows(con, limit=limit):
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


# -- the card's sections, in the order they appear -------------------------------------------------


def _summary(recipe: dict[str, Any], *, name: str, rows: int, splits: list[str]) -> list[str]:
    return [
        f"# {name}",
        recipe.get("description") or "A reasoning-distillation dataset built with tracekit.",
        f"{rows:,} rows ({', '.join(splits)}), built with tracekit from "
        f"{len(recipe.get('sources') or [])} source(s). Every sampled trace, kept or not, is in the build's ledger.",
    ]


def _load_it(repo_id: str) -> list[str]:
    return [
        "## Load it",
        "```python\nfrom datasets import load_dataset\n\n"
        f'ds = load_dataset("{repo_id}")\n'
        'print(ds["train"][0]["messages"])\n```\n'
        "Each row: `messages` (user/assistant; the assistant turn keeps `<think>...</think>`), `trace_id`, "
        "`prompt_id`, `source`, `domain`, `bucket`, `num_tokens`, `verified`.",
    ]


def _teacher(recipe: dict[str, Any]) -> list[str]:
    teacher = recipe.get("teacher") or {}
    src_cols = ["name", "domain", "path", "hub", "limit", "system_prompt", "prompt_template"]
    return [
        "## Teacher and sampling",
        "```yaml\n" + yaml.safe_dump(teacher, sort_keys=False, allow_unicode=True) + "```",
        _md_table(src_cols, [[s.get(c) for c in src_cols] for s in recipe.get("sources") or []]),
    ]


def _composition(con: duckdb.DuckDBPyConnection, shortfall: list[dict[str, Any]] | None) -> list[str]:
    parts = ["## Composition", "Rows per bucket and split:\n\n" + _md_table(*queries.rows_per_bucket(con))]
    if shortfall:
        parts.append(
            "Mix quotas (a bucket is short when fewer traces were available than requested):\n\n"
            + _md_table(list(shortfall[0]), [tuple(r.values()) for r in shortfall])
        )
    parts.append("Rows per source:\n\n" + _md_table(*queries.rows_per_source(con)))
    return parts


def _selection(con: duckdb.DuckDBPyConnection, links: list[str]) -> list[str]:
    if not queries.uses_select(con):
        return []
    totals = queries.select_funnel_totals(con)
    parts = [
        "## Selection",
        "Prompts were chosen before the teacher sampled (`select:`): a pass rate window (with several students, on "
        "the highest of their pass rates) and/or an LLM "
        "judge's labels. Prompts left after each step (a prompt is verified when one of its traces is correct, "
        "kept when one is in the dataset):\n\n" + _md_table([n for n, _ in totals], [[v for _, v in totals]]),
        "Per source:\n\n" + _md_table(*queries.select_funnel_per_source(con)),
        "Prompts dropped before sampling (one ledger row each, no completion):\n\n"
        + _md_table(*queries.unsampled_prompts(con)),
    ]
    students = queries.student_pass_rates(con)
    if len(students[1]) > 1:
        parts.append(
            "Pass rate per student (a prompt's `pass_rate` is the highest of its students'; "
            "`student_pass_rates` in the ledger):\n\n" + _md_table(*students)
        )
    parts += [f"![selection]({link})" for link in links if Path(link).stem == "selection"]
    return parts


def _lengths(con: duckdb.DuckDBPyConnection) -> list[str]:
    unit, kept = queries.kept_completion_lengths(con)
    return [
        "## Lengths",
        "Tokens per dataset row (prompt + completion, when counted):\n\n" + _md_table(*queries.token_lengths(con)),
        f"Completion {unit} of the kept traces:\n\n" + _md_table(*kept),
    ]


def _verification(
    con: duckdb.DuckDBPyConnection, recipe: dict[str, Any], audit: Sequence[NamedTable]
) -> list[str]:
    parts = ["## Verification", _md_table(*queries.verification(con))]
    cols, refs = queries.references(con)
    if any(r[1] not in ("given", "(none)") for r in refs):
        parts.append(
            "Reference answers: `given` by the source, `majority` of the prompt's samples (no gold), "
            "`repaired` (no sample matched the given gold and a strong majority agreed on another; the "
            "given gold stays in the ledger's `gold_answer`), `no_majority` (no gold and no majority: "
            "unverified):\n\n" + _md_table(cols, refs)
        )
        cols, repaired = queries.repaired_golds(con, limit=50)
        if repaired:
            parts.append("Repaired gold answers (at most 50):\n\n" + _md_table(cols, repaired))
    policies = math_policy_section(recipe)
    if policies:
        parts.append(policies)
    for title, cols, rows in audit:  # a second opinion on a sample of verdicts
        parts.append(f"{title[0].upper() + title[1:]} (95% Wilson intervals):\n\n" + _md_table(cols, rows))
    return parts


def _funnel(con: duckdb.DuckDBPyConnection) -> list[str]:
    totals = queries.funnel_totals(con)
    return [
        "## Funnel",
        _md_table([n for n, _ in totals], [[v for _, v in totals]]),
        "Per source:\n\n" + _md_table(*queries.funnel_per_source(con)),
        "Drop reasons:\n\n" + _md_table(*queries.drop_reasons(con)),
        "Decontamination matches per benchmark and method (`ngram`: a shared word n-gram, `whole_item`: a "
        "short item found whole, `rephrase`: similar wording with the same numbers and formulas, `judge`: "
        "an LLM judge said it is the same problem):\n\n" + _md_table(*queries.contamination(con)),
        "One example per benchmark and method (the lowest score):\n\n"
        + _md_table(*queries.contamination_examples(con)),
        *_cleared(queries.judge_cleared(con)),
    ]


def _cleared(t: queries.Table) -> list[str]:
    return ["Candidates the judge said are different problems (kept):\n\n" + _md_table(*t)] if t[1] else []


def _plots(links: list[str]) -> list[str]:
    if not links:
        return []
    shown = [link for link in links if Path(link).stem != "selection"]  # that one is in its own section
    return ["## Plots\n\n" + "\n\n".join(f"![{Path(link).stem}]({link})" for link in shown)] if shown else []


def _examples_and_recipe(con: duckdb.DuckDBPyConnection, recipe: dict[str, Any]) -> list[str]:
    return [
        "## Example rows",
        _example_rows(con),
        "## Recipe\n\nThe resolved recipe (every default filled in):",
        "```yaml\n" + yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True) + "```",
    ]


def card_text(
    con: duckdb.DuckDBPyConnection,
    *,
    recipe: dict[str, Any],
    plot_links: list[str],
    shortfall: list[dict[str, Any]] | None = None,
    audit: Sequence[NamedTable] = (),
) -> str:
    """The card: Hub front matter, then summary, loading, teacher, composition, lengths, verification,
    funnel, plots, examples and the recipe. `recipe` must already be redacted."""
    splits = queries.dataset_splits(con)
    rows = queries.dataset_size(con)
    fm = front_matter(splits=splits, rows=rows, recipe=recipe, domains=queries.domains(con))
    name = recipe.get("name") or "dataset"
    repo_id = (recipe.get("publish") or {}).get("repo_id") or f"<owner>/{name}"
    sections = [
        *_summary(recipe, name=name, rows=rows, splits=splits),
        *_load_it(repo_id),
        *_teacher(recipe),
        *_selection(con, plot_links),
        *_composition(con, shortfall),
        *_lengths(con),
        *_verification(con, recipe, audit),
        *_funnel(con),
        *_plots(plot_links),
        *_examples_and_recipe(con, recipe),
    ]
    header = yaml.safe_dump(fm, sort_keys=False, allow_unicode=True)
    return f"---\n{header}---\n\n" + "\n\n".join(sections) + "\n"


def write_card(
    con: duckdb.DuckDBPyConnection,
    *,
    path: Path,
    recipe: dict[str, Any],
    plots: Path | None = None,
    shortfall: list[dict[str, Any]] | None = None,
    audit: Sequence[NamedTable] = (),
) -> Path:
    """Write the dataset card to `path` (the dataset folder's `README.md`); returns `path`.

    Everything comes from the recipe and DuckDB over the ledger and dataset shards (`con`, see
    `tracekit.stats.db.connect`). Plots found in `plots` are linked relative to the card. Secrets are
    redacted: keys like `api_key`/`token`, and any value of a secret-looking environment variable.

    Example:
        >>> import yaml
        >>> recipe = yaml.safe_load(open("out/quickstart/recipe.resolved.yaml"))  # doctest: +SKIP
        >>> write_card(con, path=Path("out/quickstart/dataset/README.md"), recipe=recipe)  # doctest: +SKIP
        PosixPath('out/quickstart/dataset/README.md')
    """
    found = [plots / f"{p}.png" for p in PLOTS] if plots is not None else []
    links = [os.path.relpath(f, path.parent) for f in found if f.exists()]
    text = card_text(con, recipe=redact_config(recipe), plot_links=links, shortfall=shortfall, audit=audit)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(redact_text(text), encoding="utf-8")
    return path
