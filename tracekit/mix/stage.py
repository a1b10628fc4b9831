"""MixStage: select exact quotas per bucket from the kept traces; optional train/test split by prompt."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tracekit.ledger.decision import DecisionStage
from tracekit.ledger.finalize import apply_decisions
from tracekit.ledger.shards import list_shards
from tracekit.mix.config import MixConfig, order_by_sql
from tracekit.record import ledger_schema_of

# Drop reasons (public: they show in stats and the card; `mix*` counts as the mix stage of the funnel).
DROP_OVER_QUOTA = "mix_over_quota"
DROP_MAX_PER_PROMPT = "mix_max_per_prompt"
DROP_NO_BUCKET = "mix_no_bucket"

MIX_OUTPUT_SCHEMA = ledger_schema_of("trace_id", "bucket", "split", "drop_reason")


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


class MixStage(DecisionStage):
    """Pick exactly the requested number of traces per bucket; write one parquet of decisions.

    1. Reads only the columns it needs (ids, `kept`, `drop_reason`, the columns the bucket predicates
       name, the prompt text for the split) from the parquet shards in `input_dir`, with DuckDB.
    2. Applies the earlier decision tables (dedup, decontamination) in order, as the finalize step
       does, so only traces still kept compete.
    3. Puts each kept trace in the first bucket whose `where` holds; the others are dropped as
       `mix_no_bucket`.
    4. Ranks each prompt's traces by their bucket's `order_by` (if it has one), then by a seeded hash
       of the trace id; those ranked `max_per_prompt` or later are dropped as `mix_max_per_prompt`.
    5. In each bucket takes the quota in order: by the bucket's `order_by` when it has one, ties (and
       buckets without it) one trace of as many prompts as possible first, then second traces, ...
       (rank within prompt, seeded hash). The rest are `mix_over_quota`.
    6. Splits the selected traces by prompt text (normalised), so no prompt is on both sides.

    Writes `output_path` (trace_id, bucket, split, drop_reason) for every trace that was still kept,
    and the shortfall table (bucket, requested, available, selected, short) to `shortfall_path`.
    The same seed and ledger give the same selection whatever the shard
    layout. Runs as a datatrove step with tasks=1 (with more tasks only rank 0 works).

    Example:
        >>> from datatrove.executor import LocalPipelineExecutor
        >>> cfg = MixConfig(buckets=[{"name": "math", "where": "domain = 'math'", "count": 1000}])
        >>> step = MixStage(config=cfg, input_dir="out/x/work/traces", decision_paths=[],
        ...                 output_path="out/x/mix.parquet", shortfall_path="out/x/mix.shortfall.json")
        >>> LocalPipelineExecutor([step], tasks=1, logging_dir="out/x/logs/mix").run()  # doctest: +SKIP
    """

    type = "🥣 - MIX"
    name = "mix"

    def __init__(
        self, *, config: MixConfig, input_dir: str, decision_paths: list[str], output_path: str, shortfall_path: str
    ) -> None:
        super().__init__(input_dir=input_dir, output_path=output_path)
        self.config = config
        self.decision_paths = decision_paths
        self.shortfall_path = shortfall_path

    def write(self, decided: tuple[pa.Table, list[dict[str, Any]]]) -> None:
        self._write(*decided)

    # -- reading -------------------------------------------------------------------------------
    def _read(self, con: duckdb.DuckDBPyConnection, files: list[str]) -> pl.DataFrame:
        cfg = self.config
        src = f"read_parquet({files!r}, union_by_name=true)"
        for b in cfg.buckets:  # name the bucket whose predicate is wrong
            try:
                con.execute(f"SELECT ({b.where}) FROM {src} LIMIT 0")
            except duckdb.Error as e:
                raise ValueError(f"mix bucket {b.name!r}: bad `where` {b.where!r}: {e}") from None
        case = " ".join(f"WHEN ({b.where}) THEN {i}" for i, b in enumerate(cfg.buckets))
        # a bucket's `order_by` as a rank over all rows (ties share a rank); only ranks within the bucket count
        ranks = " ".join(
            f"WHEN {i} THEN dense_rank() OVER (ORDER BY {order_by_sql(b.order_by)})"
            for i, b in enumerate(cfg.buckets)
            if b.order_by
        )
        order = f"(CASE (CASE {case} END) {ranks} END)::BIGINT" if ranks else "NULL::BIGINT"
        # the value each trace is spread by in its bucket (`spread_by`; the column name is a checked ledger column)
        spreads = " ".join(
            f'WHEN {i} THEN CAST("{b.spread_by}" AS VARCHAR)' for i, b in enumerate(cfg.buckets) if b.spread_by
        )
        spread = f"(CASE (CASE {case} END) {spreads} END)" if spreads else "NULL::VARCHAR"
        seed = _sql_str(f"mix:{cfg.seed}:")
        split_key = "NULL::UBIGINT"
        if cfg.split is not None:
            norm = "lower(trim(regexp_replace(coalesce(prompt, prompt_id, ''), '\\s+', ' ', 'g')))"
            split_key = f"(md5_number({_sql_str(f'split:{cfg.split.seed}:')} || {norm}) >> 64)::UBIGINT"
        sql = f"""
            SELECT trace_id, prompt_id, coalesce(kept, true) AS kept, drop_reason,
                   (CASE {case} END)::SMALLINT AS b, {order} AS ord, {spread} AS spread,
                   (md5_number({seed} || trace_id) >> 64)::UBIGINT AS prio,
                   {split_key} AS split_key
            FROM {src}"""
        df = pl.from_arrow(con.sql(sql).to_arrow_table())
        assert isinstance(df, pl.DataFrame)
        return df

    def _decisions(self) -> list[pl.DataFrame]:
        out = []
        for p in self.decision_paths:
            if Path(p).exists():
                out.append(pl.read_parquet(p, columns=["trace_id", "drop_reason"]))
        return out

    # -- deciding ------------------------------------------------------------------------------
    def decide(self) -> tuple[pa.Table, list[dict[str, Any]]]:
        """The decisions table (MIX_OUTPUT_SCHEMA) and the shortfall rows."""
        cfg = self.config
        quotas = cfg.quotas()
        names = [b.name for b in cfg.buckets]
        files = [str(p) for p in list_shards(Path(self.input_dir))]
        if not files:
            return MIX_OUTPUT_SCHEMA.empty_table(), _shortfall(
                names, quotas, [0] * len(names), [0] * len(names)
            )
        con = duckdb.connect()
        df = self._read(con, files)
        con.close()
        df = apply_decisions(df, self._decisions()).filter(pl.col("kept"))
        self.stat_update("competing", value=df.height)

        # rank of each trace within its prompt (its bucket's order_by first, then seeded), among the
        # traces that have a bucket
        in_bucket = df.filter(pl.col("b").is_not_null()).sort(
            ["prompt_id", "ord", "prio", "trace_id"], nulls_last=True
        )
        in_bucket = in_bucket.with_columns(r=pl.int_range(pl.len()).over("prompt_id"))
        cap = cfg.max_per_prompt
        eligible = in_bucket if cap is None else in_bucket.filter(pl.col("r") < cap)
        # each bucket takes its quota in order_by order, ties one trace per prompt at a time
        eligible = eligible.sort(["b", "ord", "r", "prio", "trace_id"], nulls_last=True).with_columns(
            pos=pl.int_range(pl.len()).over("b")
        )
        quota = pl.col("b").replace_strict(
            list(range(len(names))), [quotas[n] for n in names], return_dtype=pl.Int64
        )
        eligible = eligible.with_columns(take=pl.col("pos") < quota)
        spread_buckets = [i for i, b in enumerate(cfg.buckets) if b.spread_by]
        if spread_buckets:
            eligible = self._spread(eligible, spread_buckets, [quotas[n] for n in names])
        selected = eligible.filter(pl.col("take")).select("trace_id", "split_key", "b")
        available = eligible.group_by("b").len()
        avail = dict(zip(available["b"].to_list(), available["len"].to_list(), strict=True))
        chosen = selected.group_by("b").len()
        got = dict(zip(chosen["b"].to_list(), chosen["len"].to_list(), strict=True))

        split = self._split(selected)
        reason = (
            pl.when(pl.col("b").is_null())
            .then(pl.lit(DROP_NO_BUCKET))
            .when(pl.col("trace_id").is_in(selected["trace_id"].implode()))
            .then(pl.lit(None, dtype=pl.String))
            .when(pl.col("trace_id").is_in(eligible["trace_id"].implode()))
            .then(pl.lit(DROP_OVER_QUOTA))
            .otherwise(pl.lit(DROP_MAX_PER_PROMPT))
        )
        out = (
            df.select("trace_id", "b")
            .join(split, on="trace_id", how="left")
            .with_columns(
                bucket=pl.col("b").replace_strict(
                    list(range(len(names))), names, default=None, return_dtype=pl.String
                ),
                drop_reason=reason,
            )
            .select("trace_id", "bucket", "split", "drop_reason")
            .sort("trace_id")
        )
        for r, n in out.group_by("drop_reason").len().iter_rows():
            self.stat_update(r or "selected", value=n)
        shortfall = _shortfall(
            names,
            quotas,
            [avail.get(i, 0) for i in range(len(names))],
            [got.get(i, 0) for i in range(len(names))],
        )
        return out.to_arrow().cast(MIX_OUTPUT_SCHEMA), shortfall

    def _spread(self, eligible: pl.DataFrame, buckets: list[int], quotas: list[int]) -> pl.DataFrame:
        """`take` for the buckets with `spread_by`: each value's share of the quota (`spread_quota`), taken
        in the bucket's order within the value (`eligible` is sorted in it)."""
        eligible = eligible.with_columns(
            vpos=pl.int_range(pl.len()).over(["b", "spread"]), spread_key=pl.col("spread").fill_null("")
        )
        shares: list[tuple[int, str, int]] = []
        for b in buckets:
            sizes = eligible.filter(pl.col("b") == b).group_by("spread_key").len()
            counts = dict(zip(sizes["spread_key"].to_list(), sizes["len"].to_list(), strict=True))
            for value, n in spread_quota(counts, quotas[b], seed=self.config.seed).items():
                shares.append((b, value, n))
        table = pl.DataFrame(
            {"b": [x[0] for x in shares], "spread_key": [x[1] for x in shares], "share": [x[2] for x in shares]},
            schema={"b": eligible.schema["b"], "spread_key": pl.String, "share": pl.Int64},
        )
        eligible = eligible.join(table, on=["b", "spread_key"], how="left")
        take = pl.when(pl.col("share").is_not_null()).then(pl.col("vpos") < pl.col("share")).otherwise(pl.col("take"))
        return eligible.with_columns(take=take).drop("vpos", "spread_key", "share")

    def _split(self, selected: pl.DataFrame) -> pl.DataFrame:
        """trace_id -> split ('train'/'test') for the selected traces; null split when none is asked."""
        s = self.config.split
        if s is None:
            return selected.select("trace_id", split=pl.lit(None, dtype=pl.String))
        groups = selected.select("split_key").unique().sort("split_key")["split_key"]
        n = len(groups)
        n_test = s.test_prompts if s.test_prompts is not None else round((s.test_size or 0.0) * n)
        if s.test_size is not None and n >= 2:
            n_test = max(1, n_test)
        test = groups.head(min(n_test, n))
        return selected.select(
            "trace_id",
            split=pl.when(pl.col("split_key").is_in(test.implode()))
            .then(pl.lit("test"))
            .otherwise(pl.lit("train")),
        )

    # -- writing -------------------------------------------------------------------------------
    def _write(self, table: pa.Table, shortfall: list[dict[str, Any]]) -> None:
        out = Path(self.output_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".tmp.{out.name}")
        pq.write_table(table, tmp, compression="zstd")
        sf = Path(self.shortfall_path)
        sf_tmp = sf.with_name(f".tmp.{sf.name}")
        sf_tmp.write_text(json.dumps(shortfall, indent=1))
        os.replace(sf_tmp, sf)
        os.replace(tmp, out)
        for row in shortfall:
            if row["short"]:
                self.stat_update(f"short_{row['bucket']}", value=row["short"])


def spread_quota(sizes: dict[str, int], quota: int, *, seed: int = 0) -> dict[str, int]:
    """Share `quota` equally among values with `sizes` available each: values with fewer than an equal
    share give all they have and the rest is shared among the others (water filling); what does not
    divide evenly goes one each to values in a seeded order. The counts sum to min(quota, total).

        >>> spread_quota({"algebra": 10, "geometry": 2, "logic": 10}, 12)
        {'algebra': 5, 'geometry': 2, 'logic': 5}
        >>> sum(spread_quota({"a": 4, "b": 4, "c": 4}, 10).values())
        10
    """
    from tracekit.record import stable_hash

    out = dict.fromkeys(sizes, 0)
    left = min(quota, sum(sizes.values()))
    open_ = sorted(sizes, key=lambda v: sizes[v])
    while left and open_:
        share = left // len(open_)
        smallest = sizes[open_[0]] - out[open_[0]]
        if share >= smallest:  # the smallest value is used up: give it all, share the rest again
            out[open_[0]] += smallest
            left -= smallest
            open_.pop(0)
            continue
        for v in open_:
            out[v] += share
        left -= share * len(open_)
        for v in sorted(open_, key=lambda v: stable_hash("spread", seed, v))[:left]:
            out[v] += 1
        left = 0
    return out


def _shortfall(
    names: list[str], quotas: dict[str, int], available: list[int], selected: list[int]
) -> list[dict[str, Any]]:
    return [
        {
            "bucket": name,
            "requested": quotas[name],
            "available": available[i],
            "selected": selected[i],
            "short": quotas[name] - selected[i],
        }
        for i, name in enumerate(names)
    ]


def read_shortfall(path: str | Path) -> list[dict[str, Any]] | None:
    """The shortfall rows a mix stage wrote to `path`, or None if there are none."""
    p = Path(path)
    return json.loads(p.read_text()) if p.exists() else None


def shortfall_table(rows: list[dict[str, Any]] | None) -> Any:
    """A rich Table of the mix quotas (None when the build was not mixed)."""
    from rich.table import Table

    if not rows:
        return None
    t = Table(title="mix quotas", title_justify="left")
    for c in ("bucket", "requested", "available", "selected", "short"):
        t.add_column(c, justify="left" if c == "bucket" else "right")
    for r in rows:
        short = f"[red]{r['short']:,}[/]" if r["short"] else "0"
        t.add_row(r["bucket"], f"{r['requested']:,}", f"{r['available']:,}", f"{r['selected']:,}", short)
    return t
