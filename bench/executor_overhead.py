"""Executor overhead: the same 100K-trace replay build on the local executor and on Ray.

    .venv/bin/python bench/executor_overhead.py [--traces 100000] [--tasks 2] [--workers 2]

Both builds run the same recipe (replay teacher, parse, ledger, finalize) with the same tasks and
workers, in this process, into separate output folders; the datasets are checked to be identical. The
Ray cluster (a private one-machine cluster, as `executor: {kind: ray}` starts) is brought up before the
timed build and its start-up time is printed on its own: a cluster is started once and serves many
builds. Prints a table with wall times and the Ray/local ratio (target: within 1.3x).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def write_source(path: Path, *, traces: int, per_prompt: int = 4, seed: int = 0) -> None:
    """Math prompts with `per_prompt` replayed generations: right, wrong, and truncated answers."""
    rng = random.Random(seed)
    with path.open("w") as f:
        for i in range(traces // per_prompt):
            a, b = rng.randint(0, 10_000), rng.randint(0, 10_000)
            gens = []
            for k in range(per_prompt):
                if k == per_prompt - 1:
                    gens.append(f"<think>\nLet me add {a} and {b} carefully, digit by digit")  # truncated
                else:
                    ans = a + b if k % 2 == 0 else a + b + 1
                    gens.append(
                        f"<think>\nWe need {a} + {b}. Adding the units, then the tens: the sum is {ans}.\n"
                        f"</think>\n\nThe answer is \\boxed{{{ans}}}."
                    )
            row = {"problem": f"Problem {i}: what is {a} + {b}?", "answer": str(a + b), "generations": gens}
            f.write(json.dumps(row) + "\n")


def write_recipe(folder: Path, name: str, source: Path, executor: dict) -> Path:
    recipe = {
        "name": name,
        "output": str(folder / name),
        "sources": [
            {
                "name": "bench-math",
                "domain": "math",
                "path": str(source),
                "columns": {"prompt": "problem", "answer": "answer", "generations": "generations"},
            }
        ],
        "teacher": {"kind": "dataset", "model": "bench-teacher"},
        "rows_per_shard": 20_000,
        "executor": executor,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def build(recipe: Path) -> tuple[float, Path]:
    from tracekit.engine import plan_build, prepare_output, run_plan
    from tracekit.recipe import load_recipe

    loaded = load_recipe(recipe)
    out = prepare_output(loaded, overwrite=True)
    plan = plan_build(loaded)
    t0 = time.perf_counter()
    run_plan(plan)
    return time.perf_counter() - t0, out


def dataset_rows(out: Path) -> list[dict]:
    import pyarrow.parquet as pq

    rows: list[dict] = []
    for f in sorted((out / "dataset" / "data").glob("*.parquet")):
        rows.extend(pq.read_table(f).to_pylist())
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traces", type=int, default=100_000)
    ap.add_argument("--tasks", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    import ray

    with tempfile.TemporaryDirectory(prefix="tk-bench-") as tmp:
        folder = Path(tmp)
        source = folder / "math.jsonl"
        write_source(source, traces=args.traces)
        local = write_recipe(
            folder, "local", source, {"kind": "local", "tasks": args.tasks, "workers": args.workers}
        )
        on_ray = write_recipe(
            folder, "ray", source, {"kind": "ray", "tasks": args.tasks, "workers": args.workers}
        )

        local_s, local_out = build(local)

        t0 = time.perf_counter()
        ray.init(
            num_cpus=args.workers,
            include_dashboard=False,
            configure_logging=False,
            runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
        )
        ray.get(ray.remote(lambda: 1).remote())  # the first worker is up
        start_s = time.perf_counter() - t0
        try:
            ray_s, ray_out = build(on_ray)
        finally:
            ray.shutdown()

        same = dataset_rows(local_out) == dataset_rows(ray_out)
        n = len(dataset_rows(local_out))

    print(f"\nexecutor overhead: {args.traces:,} replayed traces, tasks={args.tasks}, workers={args.workers}")
    print(f"{'executor':<28}{'wall s':>10}{'traces/s':>12}{'vs local':>10}")
    print(f"{'local (LocalPipelineExecutor)':<28}{local_s:>10.1f}{args.traces / local_s:>12,.0f}{1.0:>9.2f}x")
    print(
        f"{'ray (RayPipelineExecutor)':<28}{ray_s:>10.1f}{args.traces / ray_s:>12,.0f}{ray_s / local_s:>9.2f}x"
    )
    print(f"ray cluster start (once, not in the build): {start_s:.1f}s")
    print(f"datasets identical: {same} ({n:,} kept rows); target: ray within 1.30x of local")


if __name__ == "__main__":
    main()
