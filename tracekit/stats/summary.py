"""Canned summaries of a build (`tracekit stats OUT`), each one SQL over the `traces`/`dataset` views."""

from __future__ import annotations

from typing import Any

import duckdb

# Which funnel stage each drop reason belongs to; any other reason is a filter's.
STAGE_OF_REASON = {
    "teacher_error": "sampled",
    "truncated": "sampled",
    "empty_completion": "sampled",
    "incorrect": "verified",
    "verify_error": "verified",
    "duplicate_prompt": "deduped",
    "duplicate_completion": "deduped",
    "max_per_prompt": "deduped",
    "contaminated": "decontaminated",
}
FUNNEL = ("sampled", "verified", "filtered", "deduped", "decontaminated", "mixed")
# columns of the funnel: traces left after each stage
FUNNEL_COLUMNS = ("sampled", "complete", "verified", "filtered", "deduped", "decontaminated", "kept")

# Ledger rows of samples; the others are prompts the select stage dropped (one row each, no sample).
SAMPLED = "sample_index IS NOT NULL"


def _stage_case() -> str:
    whens = " ".join(f"WHEN '{r}' THEN '{s}'" for r, s in STAGE_OF_REASON.items())
    return f"CASE WHEN kept THEN 'kept' WHEN drop_reason LIKE 'mix%' THEN 'mixed' ELSE CASE drop_reason {whens} ELSE 'filtered' END END"


SUMMARIES: dict[str, str] = {
    "by source": """
        SELECT source, domain, count(*) AS traces, count(DISTINCT prompt_id) AS prompts,
               sum(CASE WHEN kept THEN 1 ELSE 0 END) AS kept,
               round(100.0 * sum(CASE WHEN kept THEN 1 ELSE 0 END) / count(*), 1) AS kept_pct
        FROM traces GROUP BY ALL ORDER BY source""",
    "by domain": """
        SELECT domain, count(*) AS traces, sum(CASE WHEN kept THEN 1 ELSE 0 END) AS kept
        FROM traces GROUP BY ALL ORDER BY domain""",
    "verdicts": f"""
        SELECT source, verdict, count(*) AS traces FROM traces WHERE {SAMPLED} GROUP BY ALL ORDER BY source, verdict""",
    "drop reasons": """
        SELECT coalesce(drop_reason, '(kept)') AS drop_reason, count(*) AS traces
        FROM traces GROUP BY ALL ORDER BY traces DESC""",
    "funnel": "__funnel__",
    "completion tokens": """
        SELECT domain, count(completion_tokens) AS counted,
               quantile_cont(completion_tokens, 0.1) AS p10, quantile_cont(completion_tokens, 0.5) AS p50,
               quantile_cont(completion_tokens, 0.9) AS p90, quantile_cont(completion_tokens, 0.99) AS p99,
               max(completion_tokens) AS max
        FROM traces GROUP BY ALL ORDER BY domain""",
    "completion chars": """
        SELECT domain, quantile_cont(completion_chars, 0.5) AS p50_chars,
               quantile_cont(completion_chars, 0.9) AS p90_chars, max(completion_chars) AS max_chars
        FROM traces GROUP BY ALL ORDER BY domain""",
    "traces per prompt": f"""
        SELECT n AS traces_per_prompt, count(*) AS prompts, sum(k) AS kept_traces FROM (
          SELECT prompt_id, count(*) AS n, sum(CASE WHEN kept THEN 1 ELSE 0 END) AS k
          FROM traces WHERE {SAMPLED} GROUP BY prompt_id) GROUP BY n ORDER BY n""",
    "contamination": """
        SELECT c.benchmark, coalesce(c.method, 'ngram') AS method, count(DISTINCT trace_id) AS traces,
               count(DISTINCT prompt_id) AS prompts, count(DISTINCT c.item) AS items,
               round(min(c.score)::DOUBLE, 3) AS min_score
        FROM (SELECT trace_id, prompt_id, unnest(contamination) AS c FROM traces)
        GROUP BY ALL ORDER BY c.benchmark, method""",
    "references": """
        SELECT source,
               coalesce(gold_source, CASE WHEN verify_detail = 'no_majority' THEN 'no_majority' END, '(none)') AS reference,
               count(DISTINCT prompt_id) AS prompts, count(*) AS traces
        FROM traces GROUP BY ALL ORDER BY ALL""",
    "contamination examples": """
        SELECT benchmark, method, score, prompt, item_text, judge FROM (
          SELECT c.benchmark, coalesce(c.method, 'ngram') AS method, round(c.score::DOUBLE, 3) AS score,
                 left(regexp_replace(prompt, '\\s+', ' ', 'g'), 160) AS prompt,
                 left(regexp_replace(coalesce(c.item_text, c.ngram, ''), '\\s+', ' ', 'g'), 160) AS item_text,
                 c.judge,
                 row_number() OVER (PARTITION BY c.benchmark, coalesce(c.method, 'ngram')
                                    ORDER BY c.score, prompt_id) AS n
          FROM (SELECT prompt_id, prompt, unnest(contamination) AS c FROM traces))
        WHERE n = 1 ORDER BY benchmark, method""",
    "judge cleared": """
        SELECT c.benchmark, count(*) AS candidates, count(DISTINCT prompt_id) AS prompts,
               any_value(left(c.judge, 60)) AS an_answer
        FROM (SELECT prompt_id, unnest(contamination_cleared) AS c FROM traces)
        GROUP BY ALL ORDER BY c.benchmark""",
    "dataset": """
        SELECT split, source, domain, count(*) AS rows FROM dataset GROUP BY ALL ORDER BY split, source""",
}


def funnel_sql() -> str:
    """Per source: traces left after each stage (sampled -> ... -> kept)."""
    stage = _stage_case()
    cols = ", ".join(
        f"count(*) - sum(CASE WHEN st IN ({', '.join(repr(s) for s in FUNNEL[: i + 1])}) THEN 1 ELSE 0 END) AS {name}"
        for i, name in enumerate(FUNNEL_COLUMNS[1:])
    )
    return (
        f"SELECT source, count(*) AS sampled, {cols} FROM (SELECT source, {stage} AS st FROM traces WHERE {SAMPLED}) "
        "GROUP BY source ORDER BY source"
    )


def run_summary(con: duckdb.DuckDBPyConnection, name: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    sql = SUMMARIES[name]
    if sql == "__funnel__":
        sql = funnel_sql()
    rel = con.sql(sql)
    return list(rel.columns), rel.fetchall()


# Prompts whose gold answer was replaced by their samples' strong majority (`gold_repair: majority`).
REPAIRED_GOLDS_SQL = """
    SELECT source, left(any_value(prompt), 100) AS prompt, any_value(gold_answer) AS given_gold,
           any_value(majority_answer) AS majority_answer, round(any_value(majority_share), 2) AS agreement
    FROM traces WHERE gold_source = 'repaired'
    GROUP BY source, prompt_id ORDER BY source, prompt"""


# The selection funnel, in prompts (source rows): read -> pass-rate window -> labelled -> sampled ->
# verified (a correct trace) -> kept (a trace in the dataset). A prompt dropped for its difficulty
# rating has one; one dropped by the pass-rate window was never labelled.
SELECT_FUNNEL = ("read", "in_window", "labelled", "sampled", "verified", "kept")
SELECT_FUNNEL_SQL = f"""
    WITH p AS (
      SELECT source, source_file, row_index,
             bool_or(NOT ({SAMPLED}) AND drop_reason IN ('too_easy', 'too_hard') AND difficulty_rating IS NULL) AS out_of_window,
             bool_or(NOT ({SAMPLED}) AND drop_reason IS NOT NULL) AS unsampled,
             bool_or({SAMPLED}) AS sampled,
             bool_or(verdict = 'correct') AS verified, bool_or(kept) AS kept
      FROM traces GROUP BY ALL)
    SELECT source, count(*) AS read,
           count(*) FILTER (WHERE NOT out_of_window) AS in_window,
           count(*) FILTER (WHERE NOT unsampled) AS labelled,
           count(*) FILTER (WHERE sampled) AS sampled,
           count(*) FILTER (WHERE verified) AS verified,
           count(*) FILTER (WHERE kept) AS kept
    FROM p GROUP BY source ORDER BY source"""

# One row per prompt row with its selection columns (the distributions the card plots).
SELECTED_PROMPTS_SQL = """
    SELECT source, source_file, row_index, any_value(pass_rate) AS pass_rate,
           any_value(difficulty_rating) AS difficulty_rating, any_value(domain_label) AS domain_label,
           bool_or(sample_index IS NOT NULL) AS sampled
    FROM traces GROUP BY ALL"""

USES_SELECT_SQL = (
    "SELECT count(*) FROM traces WHERE pass_rate IS NOT NULL OR difficulty_rating IS NOT NULL "
    f"OR domain_label IS NOT NULL OR selection IS NOT NULL OR NOT ({SAMPLED})"
)
