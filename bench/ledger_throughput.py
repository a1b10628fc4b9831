"""Ledger throughput: traces/s and peak memory of `tracekit build` (replay: parse + ledger + dataset).

Makes replay sources of synthetic R1-length traces (mean about 20 KB, long tail to 120 KB) and runs
the real CLI on them at several sizes; as a peer, runs datatrove's own JsonlReader -> ParquetWriter
over the same file with the same number of tasks (it reads and writes, but parses nothing).
Peak memory is the largest sum of RSS over the build's whole process tree, sampled every 0.1 s.

Usage: python bench/ledger_throughput.py [--rows 20000,100000,200000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS = ("so", "we", "have", "the", "sum", "of", "terms", "wait", "let", "me", "check", "again", "then",
         "x", "=", "+", "2", "3", "\\frac{1}{2}", "squared", "because", "hmm", "factor", "equation")


def make_source(path: Path, rows: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    # a pool of paragraphs, joined into traces of log-normal length (mean ~20 KB, tail to 120 KB)
    pool = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 160))) + ".\n\n" for _ in range(2000)]
    size = 0
    with open(path, "w") as f:
        for i in range(rows):
            target = min(120_000, int(rng.lognormvariate(9.75, 0.6)))
            parts, n = [], 0
            while n < target:
                p = pool[rng.randrange(len(pool))]
                parts.append(p)
                n += len(p)
            ans = rng.randint(0, 999)
            gen = "<think>\n" + "".join(parts) + f"</think>\n\nThe answer is $\\boxed{{{ans}}}$."
            line = json.dumps({"problem": f"Problem {i}: find the value.", "answer": str(ans), "generations": gen})
            f.write(line + "\n")
            size += len(line) + 1
    return size


def tree_rss(pid: int) -> int:
    """Sum of RSS (bytes) of pid and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            ppid, pages = int(parts[1]), int(parts[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
        rss[int(d)] = pages * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


def run_measured(cmd: list[str], cwd: Path) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.1)
    out = proc.stdout.read() if proc.stdout else ""
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{out[-3000:]}")
    return dt, peak, out


PEER = """
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import ParquetWriter
if __name__ == "__main__":
    src, out, tasks = sys.argv[1], sys.argv[2], int(sys.argv[3])
    LocalPipelineExecutor(
        [JsonlReader(src, text_key="generations"), ParquetWriter(out + "/data")],
        tasks=tasks, workers=tasks, logging_dir=out + "/logs",
    ).run()
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", default="20000,100000,200000")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    sizes = [int(x) for x in args.rows.split(",")]
    print(f"cores: {os.cpu_count()}, workers: {args.workers}")
    print("| rows | source MB | tracekit s | tracekit traces/s | per core | peak RSS MB | datatrove read+write s | ratio (tracekit/datatrove time) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
            tmp = Path(d)
            src_dir = tmp / "src"
            src_dir.mkdir()
            size = make_source(src_dir / "traces.jsonl", n)
            recipe = tmp / "r.yaml"
            recipe.write_text(
                "name: bench\noutput: out\n"
                "sources:\n  - name: s\n    path: src/traces.jsonl\n"
                "    columns: {prompt: problem, answer: answer, generations: generations}\n"
                f"executor: {{kind: local, tasks: {args.workers}, workers: {args.workers}}}\n"
            )
            dt, peak, _ = run_measured([sys.executable, "-m", "tracekit.cli", "build", str(recipe)], tmp)
            (tmp / "peer.py").write_text(PEER)
            pdt, _, _ = run_measured([sys.executable, str(tmp / "peer.py"), str(src_dir), str(tmp / "peer"), str(args.workers)], tmp)
            rate = n / dt
            print(
                f"| {n:,} | {size / 1e6:,.0f} | {dt:,.1f} | {rate:,.0f} | {rate / args.workers:,.0f} | "
                f"{peak / 2**20:,.0f} | {pdt:,.1f} | {dt / pdt:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
