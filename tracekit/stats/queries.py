"""What the card and the report say about a build: each fact one query over the `traces`/`dataset` views.

Every function takes a connection from `tracekit.stats.db.connect` and returns plain values or a
`Table` (column names, rows), so the card and the report only format.

    >>> import duckdb
    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE VIEW dataset AS SELECT * FROM (VALUES ('test'), ('train'), (NULL)) t(split)")
    >>> dataset_splits(con)
    ['train', 'test']
"""

from __future__ import annotations

from typing import Any

import duckdb

from tracekit.record import VERDICTS
from tracekit.stats.summary import (
    FUNNEL_COLUMNS,
    REPAIRED_GOLDS_SQL,
    SAMPLED,
    SELECT_FUNNEL,
    SELECT_FUNNEL_SQL,
    SELECTED_PROMPTS_SQL,
    SUMMARIES,
    USES_SELECT_SQL,
    funnel_sql,
)

Table = tuple[list[str], list[tuple[Any, ...]]]


def table(con: duckdb.DuckDBPyConnection, sql: str) -> Table:
    rel = con.sql(sql)
    return list(rel.columns), rel.fetchall()


def dataset_splits(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The dataset's splits, `train` first ([`train`] for an empty dataset)."""
    found = [s for (s,) in con.sql("SELECT DISTINCT split FROM dataset WHERE split IS NOT NULL").fetchall()]
    return sorted(found, key=lambda s: (s != "train", s)) or ["train"]


def dataset_size(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.sql("SELECT count(*) FROM dataset").fetchall()[0][0])


def trace_totals(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(traces sampled, traces kept); prompts the select stage dropped are not traces."""
    total, kept = con.sql(f"SELECT count(*), count(*) FILTER (WHERE kept) FROM traces WHERE {SAMPLED}").fetchall()[0]
    return int(total), int(kept)


def domains(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [d for (d,) in con.sql("SELECT DISTINCT domain FROM traces WHERE domain IS NOT NULL").fetchall()]


def rows_per_bucket(con: duckdb.DuckDBPyConnection) -> Table:
    return table(
        con,
        "SELECT coalesce(bucket, '(none)') AS bucket, split, count(*) AS rows FROM dataset GROUP BY ALL ORDER BY ALL",
    )


def rows_per_source(con: duckdb.DuckDBPyConnection) -> Table:
    return table(con, "SELECT source, domain, split, count(*) AS rows FROM dataset GROUP BY ALL ORDER BY ALL")


def rows_per_split_bucket_source(con: duckdb.DuckDBPyConnection) -> Table:
    return table(
        con,
        "SELECT split, coalesce(bucket, '') AS bucket, source, count(*) AS rows FROM dataset GROUP BY ALL ORDER BY ALL",
    )


def composition(con: duckdb.DuckDBPyConnection) -> Table:
    """Dataset rows per part (the bucket, or the source when not mixed) and split."""
    return table(
        con,
        "SELECT coalesce(bucket, source) AS part, split, count(*) AS rows FROM dataset GROUP BY ALL ORDER BY 1, 2",
    )


def token_lengths(con: duckdb.DuckDBPyConnection) -> Table:
    """Tokens per dataset row (prompt + completion, when counted), per domain."""
    return table(
        con,
        """
        SELECT domain, count(num_tokens) AS counted, quantile_cont(num_tokens, 0.1) AS p10,
               quantile_cont(num_tokens, 0.5) AS p50, quantile_cont(num_tokens, 0.9) AS p90,
               max(num_tokens) AS max
        FROM dataset GROUP BY ALL ORDER BY domain""",
    )


def length_expr(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """Completion length in tokens when counted, else in characters (and the unit's name)."""
    counted = con.sql("SELECT count(completion_tokens) FROM traces").fetchall()[0][0]
    return ("completion_tokens", "tokens") if counted else ("completion_chars", "characters")


def kept_completion_lengths(con: duckdb.DuckDBPyConnection) -> tuple[str, Table]:
    """(unit, quantiles of the kept traces' completion length per domain)."""
    expr, unit = length_expr(con)
    return unit, table(
        con,
        f"""
        SELECT domain, quantile_cont({expr}, 0.5) AS p50, quantile_cont({expr}, 0.9) AS p90,
               quantile_cont({expr}, 0.99) AS p99, max({expr}) AS max
        FROM traces WHERE kept GROUP BY ALL ORDER BY domain""",
    )


def completion_lengths(con: duckdb.DuckDBPyConnection, *, domain: str, kept: bool) -> list[float]:
    """Every completion length of one domain's kept (or dropped) traces, in `length_expr`'s unit."""
    expr, _ = length_expr(con)
    rows = con.execute(
        f"SELECT {expr} FROM traces WHERE coalesce(domain, '?') = ? AND kept = ? AND {expr} IS NOT NULL",
        [domain, kept],
    ).fetchall()
    return [v for (v,) in rows]


def trace_domains(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every domain of the traces, unknown as `?`."""
    return [d for (d,) in con.sql("SELECT DISTINCT coalesce(domain, '?') FROM traces ORDER BY 1").fetchall()]


def verification(con: duckdb.DuckDBPyConnection) -> Table:
    """Per source: traces and the share of each verdict."""
    shares = ", ".join(
        f"round(100.0 * count(*) FILTER (WHERE verdict = '{v}') / count(*), 1) AS {v}_pct"
        for v in VERDICTS
    )
    return table(
        con, f"SELECT source, count(*) AS traces, {shares} FROM traces WHERE {SAMPLED} GROUP BY source ORDER BY source"
    )


def references(con: duckdb.DuckDBPyConnection) -> Table:
    """Per source: where the reference answers came from (given, majority, repaired, no_majority)."""
    return table(con, SUMMARIES["references"])


def repaired_golds(con: duckdb.DuckDBPyConnection, *, limit: int = 50) -> Table:
    """Prompts whose given gold was replaced by a strong majority of their samples."""
    return table(con, f"{REPAIRED_GOLDS_SQL} LIMIT {int(limit)}")


def verdicts_by_source(con: duckdb.DuckDBPyConnection) -> Table:
    return table(
        con,
        f"SELECT source, coalesce(verdict, 'unverified'), count(*) FROM traces WHERE {SAMPLED} GROUP BY ALL ORDER BY 1",
    )


def funnel_per_source(con: duckdb.DuckDBPyConnection) -> Table:
    return table(con, funnel_sql())


def funnel_totals(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    """Traces left after each stage, summed over the sources (sampled -> ... -> kept)."""
    cols, rows = funnel_per_source(con)
    return [(name, int(sum(r[cols.index(name)] or 0 for r in rows))) for name in FUNNEL_COLUMNS]


def drop_reasons(con: duckdb.DuckDBPyConnection) -> Table:
    """Dropped traces per reason, most first (prompts dropped before sampling: `unsampled_prompts`)."""
    return table(
        con,
        f"SELECT drop_reason, count(*) AS traces FROM traces WHERE NOT kept AND {SAMPLED} GROUP BY 1 ORDER BY 2 DESC, 1",
    )


# -- selection (`select:`) ---------------------------------------------------------------------------
def uses_select(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the build selected prompts (pass rates, labels, or prompts dropped before sampling)."""
    return bool(con.sql(USES_SELECT_SQL).fetchall()[0][0])


def unsampled_prompts(con: duckdb.DuckDBPyConnection) -> Table:
    """Prompts the select stage dropped (one ledger row each, no sample), per reason."""
    return table(
        con, f"SELECT drop_reason, count(*) AS prompts FROM traces WHERE NOT ({SAMPLED}) GROUP BY 1 ORDER BY 2 DESC, 1"
    )


def select_funnel_per_source(con: duckdb.DuckDBPyConnection) -> Table:
    """Prompts left after each selection step per source (read -> ... -> kept)."""
    return table(con, SELECT_FUNNEL_SQL)


def select_funnel_totals(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    cols, rows = select_funnel_per_source(con)
    return [(name, int(sum(r[cols.index(name)] or 0 for r in rows))) for name in SELECT_FUNNEL]


# Per select student (in the recipe's order): prompt rows it has a pass rate on, its mean, and on how
# many it passed at least once (a prompt row counted once, whatever its number of traces).
STUDENT_PASS_RATES_SQL = """
    WITH p AS (SELECT any_value(student_pass_rates) AS rates FROM traces
               WHERE student_pass_rates IS NOT NULL GROUP BY source, source_file, row_index),
         s AS (SELECT unnest(rates) AS r, generate_subscripts(rates, 1) AS pos FROM p)
    SELECT r.model AS student, count(r.pass_rate) AS prompts_rated,
           round(avg(r.pass_rate), 3) AS mean_pass_rate,
           count(*) FILTER (WHERE r.pass_rate > 0) AS prompts_passed
    FROM s GROUP BY r.model ORDER BY min(pos), 1"""


def student_pass_rates(con: duckdb.DuckDBPyConnection) -> Table:
    """Each select student's pass rates over the prompt rows it answered (see STUDENT_PASS_RATES_SQL)."""
    return table(con, STUDENT_PASS_RATES_SQL)


def prompt_pass_rates(con: duckdb.DuckDBPyConnection, *, sampled: bool) -> list[float]:
    """The pass rate of every prompt row that has one, among those sampled (or not)."""
    rows = con.execute(
        f"SELECT pass_rate FROM ({SELECTED_PROMPTS_SQL}) WHERE pass_rate IS NOT NULL AND sampled = ?", [sampled]
    ).fetchall()
    return [v for (v,) in rows]


def difficulty_ratings(con: duckdb.DuckDBPyConnection) -> dict[int, int]:
    """Prompt rows per difficulty rating (1-10)."""
    rows = con.sql(
        f"SELECT difficulty_rating, count(*) FROM ({SELECTED_PROMPTS_SQL}) WHERE difficulty_rating IS NOT NULL GROUP BY 1"
    ).fetchall()
    return {int(r): int(n) for r, n in rows}


def domain_labels(con: duckdb.DuckDBPyConnection, *, limit: int = 15) -> list[tuple[str, int]]:
    """Prompt rows per domain label, most first."""
    rows = con.sql(
        f"SELECT domain_label, count(*) FROM ({SELECTED_PROMPTS_SQL}) WHERE domain_label IS NOT NULL "
        f"GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {int(limit)}"
    ).fetchall()
    return [(str(d), int(n)) for d, n in rows]


def outcomes(con: duckdb.DuckDBPyConnection) -> Table:
    """Traces per drop reason, the kept ones as `(kept)`."""
    return table(con, SUMMARIES["drop reasons"])


def contamination(con: duckdb.DuckDBPyConnection) -> Table:
    """Decontamination matches per benchmark and method (traces, prompts, items, lowest score)."""
    return table(con, SUMMARIES["contamination"])


def contamination_examples(con: duckdb.DuckDBPyConnection) -> Table:
    """Per benchmark and method, the lowest-scoring match: the prompt beside the benchmark item."""
    return table(con, SUMMARIES["contamination examples"])


def judge_cleared(con: duckdb.DuckDBPyConnection) -> Table:
    """Per benchmark, the candidates a decontamination judge called different problems."""
    return table(con, SUMMARIES["judge cleared"])


def example_rows(con: duckdb.DuckDBPyConnection, *, limit: int = 2) -> list[dict[str, Any]]:
    """The first dataset rows by trace id, as dicts."""
    cols, rows = table(con, f"SELECT * FROM dataset ORDER BY trace_id LIMIT {int(limit)}")
    return [dict(zip(cols, r, strict=True)) for r in rows]
