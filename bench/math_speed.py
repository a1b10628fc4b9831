"""Math verifier speed: verified pairs/s per core on R1-style outputs, tracekit vs Math-Verify parse+verify.

Run: .venv/bin/python bench/math_speed.py [--pairs N] [--scaling-only]

Without --pairs it measures the first 400 pairs and the full set (every MATH-500 generation of the
graded files once), each in one process per verifier, one core; the ratio is Math-Verify's time over
tracekit's.

Inputs are real model generations (SkyThought MATH-500 outputs) wrapped R1-style: `<think>` + the whole
generation + `</think>` + a one-line summary with `\\boxed{answer}` (the answer the model gave), against
the gold. Both tools get the same full text: tracekit splits off the reasoning and verifies the answer
text; Math-Verify parses the whole completion (`parse(text)`) and the boxed gold, then `verify`.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
logging.getLogger("math_verify").setLevel(logging.CRITICAL)  # its timeouts log whole inputs
sys.path.insert(0, str(ROOT))
GRADED = ROOT / ".." / "shared" / "data" / "verify" / "graded" / "skythought_eval_outputs"

from tracekit.parse.split import split_reasoning  # noqa: E402
from tracekit.verify.math import MathVerifier, MathVerifyConfig  # noqa: E402


def r1_pairs(n: int | None = None) -> list[tuple[str, str]]:
    """The first n R1-style pairs (all of them once when n is None; repeated to reach a larger n)."""
    pairs = []
    for f in sorted(glob.glob(str(GRADED / "**" / "math500" / "*.jsonl"), recursive=True)):
        for line in Path(f).read_text().splitlines():
            d = json.loads(line)
            pred = d["pred"][0] or "0"
            text = f"<think>\n{d['code'][0]}\n</think>\n\nSo the final answer is $\\boxed{{{pred}}}$."
            pairs.append((text, str(d["gt"])))
    if n is None:
        return pairs
    return (pairs * (n // len(pairs) + 1))[:n]


def run_tracekit(pairs: list[tuple[str, str]]) -> tuple[float, list[bool]]:
    v = MathVerifier(MathVerifyConfig())
    v.warm_up()  # start the sympy worker before timing (Math-Verify is warmed up the same way)
    t0 = time.perf_counter()
    out = [v.verify(answer_text=split_reasoning(t).answer_text, gold=g).verdict == "correct" for t, g in pairs]
    dt = time.perf_counter() - t0
    v.close()
    return dt, out


def run_math_verify(pairs: list[tuple[str, str]]) -> tuple[float, list[bool]]:
    from math_verify import parse, verify

    parse("$1$")
    t0 = time.perf_counter()
    out = []
    for t, g in pairs:
        try:
            out.append(bool(verify(parse("\\boxed{" + g + "}"), parse(t))))
        except Exception:
            out.append(False)
    return time.perf_counter() - t0, out


def run_pool(pairs: list[tuple[str, str]], workers: int) -> float:
    """Seconds to verify `pairs` with a pool of `workers` processes, pool start-up included.

    The same machinery for 1 and 2 workers (verify_many's own chunks, initializer and start method),
    so the ratio is the scaling, not in-process vs pool. 1 worker in-process is timed separately."""
    from concurrent.futures import ProcessPoolExecutor

    from tracekit.verify.math.verifier import _init_pool, _pool_context, _verify_chunk

    answer_pairs = [(split_reasoning(t).answer_text, g) for t, g in pairs]
    chunks = [answer_pairs[i : i + 32] for i in range(0, len(answer_pairs), 32)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_pool_context(),
        initializer=_init_pool,
        initargs=(MathVerifyConfig().model_dump(),),
    ) as pool:
        n = sum(len(r) for r in pool.map(_verify_chunk, chunks))
    assert n == len(pairs)
    return time.perf_counter() - t0


def run_in_process(pairs: list[tuple[str, str]]) -> float:
    v = MathVerifier(MathVerifyConfig())
    answer_pairs = [(split_reasoning(t).answer_text, g) for t, g in pairs]
    t0 = time.perf_counter()
    v.verify_many(answer_pairs, workers=1)
    dt = time.perf_counter() - t0
    v.close()
    return dt


def compare_once(pairs: list[tuple[str, str]], label: str) -> None:
    tk_s, tk = run_tracekit(pairs)
    mv_s, mv = run_math_verify(pairs)
    agree = sum(a == b for a, b in zip(tk, mv, strict=True))
    avg_chars = sum(len(t) for t, _ in pairs) / len(pairs)
    print(f"\n{label}: {len(pairs)} R1-style pairs, mean {avg_chars:.0f} chars; cores here: {os.cpu_count()}")
    print()
    print("| verifier (1 process) | seconds | pairs/s | ratio |")
    print("|---|---|---|---|")
    print(f"| Math-Verify parse+verify | {mv_s:.2f} | {len(pairs) / mv_s:.0f} | 1.00x |")
    print(f"| tracekit MathVerifier | {tk_s:.2f} | {len(pairs) / tk_s:.0f} | {mv_s / tk_s:.2f}x |")
    print(
        f"\nverdicts equal on {agree}/{len(pairs)} pairs; correct: tracekit {sum(tk)}, Math-Verify {sum(mv)}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--pairs", type=int, default=None, help="one run on this many pairs (default: 400 and all)"
    )
    ap.add_argument(
        "--scaling-only", action="store_true", help="skip the Math-Verify comparison (about 6 pairs/s)"
    )
    ap.add_argument("--no-scaling", action="store_true", help="skip the process-pool scaling table")
    args = ap.parse_args()
    everything = r1_pairs()
    if args.scaling_only:
        scaling(everything[:400])
        return
    if args.pairs is not None:
        compare_once(r1_pairs(args.pairs), f"first {args.pairs}")
    else:
        compare_once(everything[:400], "first 400")
        compare_once(everything, "full set")
    if not args.no_scaling:
        scaling(everything[:400])


def scaling(pairs: list[tuple[str, str]]) -> None:
    # best of two runs each: the machine may be shared, and the best run is the least disturbed one
    work = pairs * 2
    inproc = min(run_in_process(work) for _ in range(2))
    one = min(run_pool(work, 1) for _ in range(2))
    two = min(run_pool(work, 2) for _ in range(2))
    print()
    print(f"| tracekit, {len(work):,} pairs | seconds | pairs/s | scaling |")
    print("|---|---|---|---|")
    print(f"| in-process, 1 core (warm verifier) | {inproc:.2f} | {len(work) / inproc:.0f} | - |")
    print(f"| process pool, 1 worker (start-up included) | {one:.2f} | {len(work) / one:.0f} | 1.00x |")
    print(
        f"| process pool, 2 workers (start-up included) | {two:.2f} | {len(work) / two:.0f} | {one / two:.2f}x |"
    )


if __name__ == "__main__":
    main()
