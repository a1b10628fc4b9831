"""Differential fuzzing of the math verifier, longer than CI: counts per construct, and Math-Verify's.

Run: .venv/bin/python bench/math_fuzz.py [--pairs 50000] [--seed 1] [--math-verify] [--show 20]

Pairs come from tests/verify/mathfuzz.py (a grammar of nested fractions, roots, powers, subscripts,
functions, intervals, units, equations and decimals, several LaTeX spellings, value-changing edits);
the truth is its exact oracle over the generated trees, never a parser. Prints, per construct, the
pairs, accepts, rejects, false accepts (accepted although the values differ) and false rejects, for
tracekit and (with --math-verify) for Math-Verify on the same pairs.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
logging.getLogger("math_verify").setLevel(logging.CRITICAL)  # its timeouts log whole inputs
sys.path.insert(0, str(ROOT))

from tests.verify.mathfuzz import Fuzzer  # noqa: E402
from tracekit.verify.math import MathVerifier, MathVerifyConfig  # noqa: E402


def math_verify(gold: str, pred: str, budget_s: int = 5) -> bool:
    """Math-Verify's verdict with its defaults, LaTeX given in $...$; an outer alarm stops its hangs."""
    from math_verify import parse, verify

    def _raise(*_: object) -> None:
        raise TimeoutError

    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(budget_s)
    try:
        return bool(verify(parse(f"${gold}$"), parse(f"${pred}$")))
    except Exception:
        return False
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def tally(
    pairs: int, seed: int, with_mv: bool, show: int = 0
) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]], dict[str, float], list[str]]:
    """Counts per (construct, outcome) for tracekit and Math-Verify, seconds spent, disagreements."""
    fz = Fuzzer(seed=seed)
    v = MathVerifier(MathVerifyConfig())
    tk: Counter[tuple[str, str]] = Counter()
    mv: Counter[tuple[str, str]] = Counter()
    examples: list[str] = []
    seconds = {"tracekit": 0.0, "math_verify": 0.0}
    judged = 0
    while judged < pairs:
        case = fz.case()
        if case["equal"] is None:
            continue
        judged += 1
        c, truth = case["construct"], bool(case["equal"])
        t0 = time.perf_counter()
        res = v.verify(answer_text=f"\\boxed{{{case['pred']}}}", gold=case["gold"])
        seconds["tracekit"] += time.perf_counter() - t0
        _count(tk, c, res.verdict == "correct", truth)
        if (res.verdict == "correct") != truth and len(examples) < show:
            examples.append(
                f"  [{c}/{case['kind']}] truth={truth} tracekit={res.verdict}/{res.detail} "
                f"gold={case['gold']!r} pred={case['pred']!r}"
            )
        if with_mv:
            t0 = time.perf_counter()
            got = math_verify(case["gold"], case["pred"])
            seconds["math_verify"] += time.perf_counter() - t0
            _count(mv, c, got, truth)
    v.close()
    return tk, mv, seconds, examples


def _count(counts: Counter[tuple[str, str]], construct: str, got: bool, truth: bool) -> None:
    for key in (construct, "ALL"):
        counts[(key, "n")] += 1
        counts[(key, "accept" if got else "reject")] += 1
        counts[(key, "agree")] += got == truth
        if got and not truth:
            counts[(key, "false accept")] += 1
        if truth and not got:
            counts[(key, "false reject")] += 1


def agreement_table(tk: Counter[tuple[str, str]], mv: Counter[tuple[str, str]]) -> list[str]:
    out = [
        "| construct | pairs | tracekit | Math-Verify | tracekit false accepts | Math-Verify false accepts |"
    ]
    out.append("|---|---|---|---|---|---|")
    for c in [*Fuzzer.CONSTRUCTS, "ALL"]:
        n = tk[(c, "n")]
        out.append(
            f"| {c} | {n} | {tk[(c, 'agree')] / n:.1%} | {mv[(c, 'agree')] / n:.1%} | "
            f"{tk[(c, 'false accept')]} | {mv[(c, 'false accept')]} |"
        )
    return out


def run(pairs: int, seed: int, with_mv: bool, show: int) -> list[str]:
    tk, mv, seconds, examples = tally(pairs, seed, with_mv, show)
    n = tk[("ALL", "n")]
    head = "| construct | pairs | accepts | rejects | false accepts | false rejects |"
    out = [f"{n} pairs, seed {seed}", "", "### tracekit", "", head, "|---|---|---|---|---|---|"]
    out += _rows(tk)
    out.append(f"\ntracekit: {seconds['tracekit']:.1f}s ({n / seconds['tracekit']:.0f} pairs/s)")
    if with_mv:
        out += [
            "",
            "### Math-Verify (same pairs, defaults, LaTeX in $...$)",
            "",
            head,
            "|---|---|---|---|---|---|",
        ]
        out += _rows(mv)
        out.append(f"\nMath-Verify: {seconds['math_verify']:.1f}s ({n / seconds['math_verify']:.0f} pairs/s)")
        out += ["", "### agreement with the oracle", "", *agreement_table(tk, mv)]
    if examples:
        out += ["", "tracekit disagreements:", *examples]
    return out


def _rows(counts: Counter[tuple[str, str]]) -> list[str]:
    rows = []
    for c in [*Fuzzer.CONSTRUCTS, "ALL"]:
        rows.append(
            f"| {c} | {counts[(c, 'n')]} | {counts[(c, 'accept')]} | {counts[(c, 'reject')]} | "
            f"{counts[(c, 'false accept')]} | {counts[(c, 'false reject')]} |"
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--math-verify", action="store_true", help="also run Math-Verify on every pair")
    ap.add_argument("--show", type=int, default=20, help="print up to this many tracekit disagreements")
    args = ap.parse_args()
    print("\n".join(run(args.pairs, args.seed, args.math_verify, args.show)))


if __name__ == "__main__":
    main()
