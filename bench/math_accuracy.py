"""Math verifier accuracy: tracekit vs Math-Verify (default settings) on the public cases and graded outputs.

Run: .venv/bin/python bench/math_accuracy.py [--graded-limit N] [--fuzz-pairs N] [--show-disagreements]

Public cases: agreement with `expected_semantic` (else `expected`) per source; tracekit uses the row's
`allow_set_relation_comp` / `strict` when the row records them and `allow_bare_number=True` (the suites
grade free text). Math-Verify runs `verify(parse(gold), parse(prediction))` with its defaults.
Graded outputs: agreement with the independent grader (`score`, Qwen2.5-Math harness) on the full model
generation and the gold `gt`; PRM800K: agreement with the human rating (1 = correct, -1 = wrong).
Fuzz suite: generated pairs (tests/verify/mathfuzz.py, exact oracle), agreement per construct.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class _CountTimeouts(logging.Handler):
    """Math-Verify logs every timeout with the whole input ("Timeout during parsing: <text>"): count
    them instead, so neither the tables (stdout) nor stderr carry those inputs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: dict[str, int] = defaultdict(int)

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        self.counts["parse" if msg.startswith("Timeout during parsing") else "compare" if "Timeout" in msg else "other"] += 1


MV_LOG = _CountTimeouts()
_mv_logger = logging.getLogger("math_verify")
_mv_logger.addHandler(MV_LOG)
_mv_logger.propagate = False
sys.path.insert(0, str(ROOT))
DATA = ROOT / ".." / "shared" / "data"
VERIFY = DATA / "verify"

from tracekit.verify.math import MathVerifier, MathVerifyConfig  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import math_fuzz  # noqa: E402

_mv_logger.setLevel(logging.WARNING)  # math_fuzz silences Math-Verify's log; here its timeouts are counted


def mv_verify(gold: str, pred: str) -> bool:
    from math_verify import parse, verify

    try:
        return bool(verify(parse(gold), parse(pred)))
    except Exception:
        return False


def mv_guarded(gold: str, pred: str, budget_s: int = 10) -> bool:
    """Math-Verify with an outer SIGALRM so a hang (its known DoS case) cannot stop the benchmark."""

    def _raise(*_: object) -> None:
        raise TimeoutError

    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(budget_s)
    try:
        return mv_verify(gold, pred)
    except TimeoutError:
        return False
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def is_numeric_trap(row: dict) -> bool:
    gold = row["gold"] or ""
    exp = row.get("expected_semantic", row["expected"])
    return not exp and bool({"decimal", "fraction"} & set(row["tags"])) and "," not in gold


def public_cases(show: bool) -> list[str]:
    rows = [
        json.loads(x)
        for x in (VERIFY / "math_equivalence_public.jsonl").read_text().splitlines()
        if x.strip()
    ]
    verifiers: dict[str, MathVerifier] = {}
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    traps = [0, 0, 0]
    lines = []
    for r in rows:
        c = r.get("config") or {}
        cfg = MathVerifyConfig(
            allow_bare_number=True,
            allow_set_relation_comp=bool(c.get("allow_set_relation_comp", True)),
            strict=bool(c.get("strict", True)),
        )
        v = verifiers.setdefault(cfg.model_dump_json(), MathVerifier(cfg))
        exp = r.get("expected_semantic", r["expected"])
        tk = v.verify(answer_text=r["prediction"] or "", gold=r["gold"] or "").verdict == "correct"
        mv = mv_guarded(r["gold"] or "", r["prediction"] or "")
        src = r["source"].split(":")[0]
        src = src if "/issues/" not in r["source"] and ":issues" not in r["source"] else src
        key = f"{src} ({r['source'].split(':')[1].split('/')[0]})" if ":issues/" in r["source"] else src
        for k in (key, "ALL"):
            per[k][0] += 1
            per[k][1] += tk == exp
            per[k][2] += mv == exp
        if is_numeric_trap(r):
            traps[0] += 1
            traps[1] += tk
            traps[2] += mv
        if show and (tk != exp or mv != exp):
            lines.append(
                f"  {r['id']} expected={exp} tracekit={tk} math-verify={mv} gold={r['gold']!r:.60} pred={(r['prediction'] or '')[-60:]!r}"
            )
    for v in verifiers.values():
        v.close()
    out = [
        "## public cases (agreement with expected)",
        "",
        "| source | rows | tracekit | Math-Verify |",
        "|---|---|---|---|",
    ]
    for k in sorted(per, key=lambda x: (x == "ALL", x)):
        n, a, b = per[k]
        out.append(f"| {k} | {n} | {a / n:.1%} ({a}) | {b / n:.1%} ({b}) |")
    out.append(
        f"\nnumeric traps (wrong single numbers): {traps[0]}; accepted by tracekit {traps[1]}, by Math-Verify {traps[2]}"
    )
    return out + ([""] + lines if lines else [])


PRM = "prm800k_human"
PRM_ANSWER_GRADED = "prm800k_human, answer-graded rows"


def graded_rows(limit: int | None) -> list[tuple[str, str, str, bool]]:
    """(set name, generation, gold, grade)."""
    rows: list[tuple[str, str, str, bool]] = []
    base = VERIFY / "graded" / "skythought_eval_outputs"
    for f in sorted(glob.glob(str(base / "**" / "*.jsonl"), recursive=True)):
        rel = Path(f).relative_to(base)
        name = (
            f"{rel.parts[0]}/{rel.parts[1]}:{rel.parts[-2]}"
            if rel.parts[0] != "Sky-T1-math-correct-5K-27B"
            else f"Sky-T1:{rel.parts[-2]}"
        )
        for line in Path(f).read_text().splitlines()[:limit]:
            d = json.loads(line)
            # MATH-500 rows keep the benchmark's own answer; the harness's `gt` lost `\\` in matrices
            gold = d.get("answer") or d["gt"]
            rows.append((name, d["code"][0], str(gold), bool(d["score"][0])))
    q = VERIFY / "graded" / "qwen25_math_rm_maj_example" / "math_cot_100.jsonl"
    for line in q.read_text().splitlines()[: (limit // 8 + 1) if limit else None]:
        d = json.loads(line)
        for gen, sc in zip(d["code"], d["score"], strict=True):
            rows.append(("qwen25_math_rm_maj", gen, str(d["gt"]), bool(sc)))
    import polars as pl

    gold = {
        json.loads(x)["problem"].strip(): json.loads(x)["answer"]
        for x in (DATA / "benchmarks" / "math500.jsonl").read_text().splitlines()
        if x.strip()
    }
    prm = pl.read_parquet(VERIFY / "graded" / "prm800k" / "phase1_test.stepwise-critic.parquet")
    prm = prm.filter(pl.col("answer").is_not_null() & pl.col("rating").is_in([1, -1]))
    for rec in prm.head(limit).iter_rows(named=True) if limit else prm.iter_rows(named=True):
        g = gold.get(rec["instruction"].strip())
        if g is not None:
            rows.append((PRM, str(rec["answer"]), g, rec["rating"] == 1))
    return rows


def disagreement_class(gold: str, ours: str | None, detail: str, accepted: bool) -> str:
    """A mechanical first sort of one disagreement (the docs give the hand-checked classes)."""
    squeeze = "".join((gold or "").split()), "".join((ours or "").split())
    if ours is not None and squeeze[0] == squeeze[1]:
        return "answer string equals the gold"
    if detail == "no_answer":
        return "no answer at the end (cut off or never stated)"
    if accepted and ("e" in gold.lower() and any(c.isdigit() for c in gold) and "\\times" in (ours or "")):
        return "scientific notation spelled otherwise"
    if accepted and (",\\!" in gold or "{,}" in gold or "," in (ours or "") and gold.replace(",", "") == (ours or "").replace(",", "")):
        return "thousands separators"
    if accepted and ours is not None and "=" in ours and "=" not in gold:
        return "name = value against the value"
    return "other (read by hand)"


def graded(limit: int | None, show: bool) -> list[str]:
    rows = graded_rows(limit)
    v = MathVerifier(MathVerifyConfig())
    t0 = time.perf_counter()
    tk_res = v.verify_many([(gen, gold) for _, gen, gold, _ in rows])
    tk_s = time.perf_counter() - t0
    v.close()
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    classes: dict[tuple[str, str], int] = defaultdict(int)
    lines = []
    for (name, gen, gold, grade), res in zip(rows, tk_res, strict=True):
        tk = res.verdict == "correct"
        mv = mv_guarded("\\boxed{" + gold + "}", gen)
        keys = [name, "ALL"]
        if name == PRM and not (not grade and "".join(gen.split()) == "".join(gold.split())):
            keys.append(PRM_ANSWER_GRADED)
        if tk != grade:
            side = "tracekit accepts" if tk else "tracekit rejects"
            classes[(side, disagreement_class(gold, res.extracted_answer, res.detail, tk))] += 1
        for k in keys:
            p = per[k]
            p[0] += 1
            p[1] += tk == grade
            p[2] += mv == grade
            p[3] += tk and not grade  # accepted although the grader says wrong
            p[4] += grade and not tk
        if show and tk != grade:
            lines.append(
                f"  [{name}] grader={grade} tracekit={tk} ({res.detail}) mv={mv} gold={gold!r:.50} ours={res.extracted_answer!r:.60}"
                f" [{disagreement_class(gold, res.extracted_answer, res.detail, tk)}]"
            )
    out = [
        "## graded outputs (agreement with the grader)",
        "",
        "| set | rows | tracekit | Math-Verify | tracekit accepts, grader rejects | grader accepts, tracekit rejects |",
        "|---|---|---|---|---|---|",
    ]
    for k in sorted(per, key=lambda x: (x == "ALL", x == PRM_ANSWER_GRADED, x)):
        n, a, b, fp, fn = per[k]
        out.append(f"| {k} | {n} | {a / n:.1%} ({a}) | {b / n:.1%} ({b}) | {fp} | {fn} |")
    out.append(
        f"\n{PRM_ANSWER_GRADED}: the PRM800K rows without those rated -1 whose answer is the gold string "
        "(the rating grades the step's argument; the data's README calls them ambiguous); not in ALL."
    )
    out += ["", "| disagreement (mechanical sort) | rows |", "|---|---|"]
    out += [f"| {side}: {cls} | {n} |" for (side, cls), n in sorted(classes.items())]
    out.append(f"\ntracekit verify_many wall time: {tk_s:.1f}s for {len(rows)} rows")
    timeouts = ", ".join(f"{k} {v}" for k, v in sorted(MV_LOG.counts.items())) or "none"
    out.append(f"Math-Verify timeouts (its log, counted): {timeouts}")
    return out + ([""] + lines if lines else [])


def fuzz_suite(pairs: int, seed: int) -> list[str]:
    tk, mv, seconds, _ = math_fuzz.tally(pairs, seed, with_mv=True)
    return [
        f"## fuzz suite (generated pairs, exact oracle; {pairs} pairs, seed {seed})",
        "",
        *math_fuzz.agreement_table(tk, mv),
        f"\nseconds: tracekit {seconds['tracekit']:.1f}, Math-Verify {seconds['math_verify']:.1f}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--graded-limit", type=int, default=None, help="rows per graded file (default: all)")
    ap.add_argument("--skip-graded", action="store_true")
    ap.add_argument("--fuzz-pairs", type=int, default=1000, help="generated pairs (0: skip the fuzz suite)")
    ap.add_argument("--fuzz-seed", type=int, default=7)
    ap.add_argument("--show-disagreements", action="store_true")
    args = ap.parse_args()
    print("\n".join(public_cases(args.show_disagreements)))
    if not args.skip_graded:
        print()
        print("\n".join(graded(args.graded_limit, args.show_disagreements)))
    if args.fuzz_pairs:
        print()
        print("\n".join(fuzz_suite(args.fuzz_pairs, args.fuzz_seed)))


if __name__ == "__main__":
    main()
