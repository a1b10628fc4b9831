"""Mix 2M ledger rows down to the 800K R1 dataset (600K reasoning + 200K general): time and peak memory.

Peer, measured in the same run: the obvious polars job (read the shards whole, filter each bucket,
`sample(n, seed)`), which has no first-bucket rule, no k per prompt and no split, so it does less.
Each contender runs in a fresh process so its peak RSS is its own.

    .venv/bin/python bench/mix_speed.py [--rows 2000000] [--shards 40]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

R1_MIX = {
    "seed": 0,
    "max_per_prompt": 4,
    "total": 800_000,
    "buckets": [
        {"name": "reasoning", "where": "domain <> 'general' AND verdict = 'correct'", "share": 0.75},
        {"name": "general", "where": "domain = 'general'", "share": 0.25},
    ],
    "split": {"test_size": 0.01, "seed": 0},
}


def make_ledger(folder: Path, rows: int, shards: int) -> Path:
    """Ledger shards with the ledger's columns that matter here (and a completion to read past)."""
    rng = np.random.default_rng(0)
    per_prompt = 4
    folder.mkdir(parents=True)
    domains = np.array(["math", "code", "science", "general"])
    per_shard = rows // shards
    for s in range(shards):
        idx = np.arange(s * per_shard, (s + 1) * per_shard)
        prompt = idx // per_prompt
        dom = domains[np.searchsorted([0.4, 0.6, 0.75], (prompt * 2654435761 % 1000) / 1000, side="right")]
        correct = rng.random(len(idx)) < 0.62
        verdict = np.where(dom == "general", "unverified", np.where(correct, "correct", "incorrect"))
        kept = rng.random(len(idx)) < 0.97
        table = pa.table(
            {
                "trace_id": [f"{i:016x}" for i in idx * 7919],
                "prompt_id": [f"p{p:015x}" for p in prompt],
                "source": pa.array(dom).cast(pa.string()),
                "domain": pa.array(dom),
                "prompt": [f"Question number {p}: compute the value of {p} plus {p % 97}." for p in prompt],
                "completion": [f"<think>working on {i} ...</think> The answer is {i % 1000}." for i in idx],
                "verdict": pa.array(verdict),
                "completion_tokens": rng.integers(50, 30000, len(idx)),
                "kept": pa.array(kept),
                "drop_reason": pa.array(np.where(kept, None, "truncated").tolist(), pa.string()),
            }
        )
        pq.write_table(table, folder / f"{s:05d}_0000.parquet", compression="zstd")
    return folder


def make_dedup_decisions(path: Path, rows: int) -> Path:
    ids = [f"{i:016x}" for i in np.arange(0, rows, 20) * 7919]  # 5% of traces: duplicates
    pq.write_table(pa.table({"trace_id": ids, "drop_reason": ["duplicate_completion"] * len(ids)}), path)
    return path


def run_tracekit(traces: str, decisions: str, out: str, total: int) -> dict:
    from tracekit.mix.config import MixConfig
    from tracekit.mix.stage import MixStage

    step = MixStage(
        config=MixConfig.model_validate({**R1_MIX, "total": total}),
        input_dir=traces,
        decision_paths=[decisions],
        output_path=out,
        shortfall_path=out.removesuffix(".parquet") + ".shortfall.json",
    )
    table, shortfall = step.decide()
    step._write(table, shortfall)
    sel = pa.compute.sum(pa.compute.is_null(table["drop_reason"])).as_py()
    return {"selected": sel, "short": sum(r["short"] for r in shortfall)}


def run_polars_naive(traces: str, decisions: str, out: str, total: int) -> dict:
    import polars as pl

    df = pl.read_parquet(sorted(Path(traces).glob("*.parquet")))
    dropped = pl.read_parquet(decisions)["trace_id"]
    df = df.filter(pl.col("kept") & ~pl.col("trace_id").is_in(dropped.implode()))
    parts = [
        df.filter((pl.col("domain") != "general") & (pl.col("verdict") == "correct")).sample(
            total * 3 // 4, seed=0
        ),
        df.filter(pl.col("domain") == "general").sample(total // 4, seed=0),
    ]
    res = pl.concat(parts).select("trace_id")
    res.write_parquet(out)
    return {"selected": res.height, "short": 0}


def child(name: str, traces: str, decisions: str, out: str, total: str) -> None:
    fn = {"tracekit MixStage": run_tracekit, "polars read+sample (peer)": run_polars_naive}[name]
    t0 = time.perf_counter()
    res = fn(traces, decisions, out, int(total))
    res["seconds"] = time.perf_counter() - t0
    res["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--shards", type=int, default=40)
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        traces = make_ledger(Path(tmp) / "traces", args.rows, args.shards)
        dec = make_dedup_decisions(Path(tmp) / "dedup.parquet", args.rows)
        size = sum(f.stat().st_size for f in traces.glob("*.parquet")) / 1024**2
        print(
            f"ledger: {args.rows:,} rows in {args.shards} shards ({size:,.0f} MiB), made in {time.perf_counter() - t0:.1f}s"
        )
        results = {}
        for name in ("tracekit MixStage", "polars read+sample (peer)"):
            cmd = [
                sys.executable,
                __file__,
                "--child",
                name,
                str(traces),
                str(dec),
                str(Path(tmp) / "out.parquet"),
                str(args.rows * 2 // 5),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    base = results["polars read+sample (peer)"]
    print(
        "\n| contender | rows selected | short | time (s) | peak RSS (GB) | time vs peer | memory vs peer |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {r['selected']:,} | {r['short']:,} | {r['seconds']:.1f} | {r['peak_rss_gb']:.2f} | "
            f"{r['seconds'] / base['seconds']:.2f}x | {r['peak_rss_gb'] / base['peak_rss_gb']:.2f}x |"
        )
    tk = results["tracekit MixStage"]
    print(
        f"\ntargets ({args.rows:,} rows -> {args.rows * 2 // 5:,}): < 30 s -> {'met' if tk['seconds'] < 30 else 'MISSED'}, "
        f"< 3 GB -> {'met' if tk['peak_rss_gb'] < 3 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
