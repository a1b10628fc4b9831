"""Code-verification throughput: tracekit's sandbox vs one plain subprocess.run per test (no
isolation) vs one bwrap process per test, over the tests of the public problems in
../shared/data/verify/code_cases.jsonl (correct solutions, every test run). All three use the same
thread pool (one worker per core) and the same interpreter, and check every output. tracekit's time
is shown two ways: with the verifier a pipeline worker keeps for its whole run (sandboxes started once,
in the warm-up), and with a new verifier each round (starting and stopping its sandboxes counted).

    .venv/bin/python bench/sandbox_speed.py [--rounds 3] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tracekit.sandbox import BubblewrapRunner, SandboxLimits, SandboxOptions
from tracekit.sandbox.bubblewrap import SANDBOX_ENV
from tracekit.verify.code import CodeItem, CodeVerifier, CodeVerifyConfig, read_tests
from tracekit.verify.code.compare import call_result_matches, compare_output
from tracekit.verify.code.suite import TestSuite

CASES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "verify" / "code_cases.jsonl"
TIME_LIMIT = 10.0

# What a plain runner does for function-call and assert tests: exec the solution, then the test.
DRIVER = r"""
import json, sys
job = json.loads(sys.stdin.read())
g = {"__name__": "__main__"}
exec(compile(job["code"], "solution.py", "exec"), g)
if job["mode"] == "call":
    sol = g.get("Solution")
    fn = getattr(sol(), job["fn"]) if sol is not None and hasattr(sol, job["fn"]) else g[job["fn"]]
    def conv(v):
        return [conv(x) for x in v] if isinstance(v, (list, tuple)) else v
    print(json.dumps(conv(fn(*job["args"]))))
else:
    exec(compile(job["test"], "test.py", "exec"), g)
    if job.get("entry") and "check" in g:
        g["check"](g[job["entry"]])
    print("ok")
"""


def load(repeat: int = 1) -> list[tuple[dict[str, Any], TestSuite, str]]:
    """The problems; `repeat` > 1 repeats each stdin/call test list (TACO-sized suites)."""
    out = []
    for line in CASES.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        tests = {**row["tests"], "checker": row["checker"]} if row.get("checker") else row["tests"]
        if repeat > 1 and isinstance(tests, dict) and "inputs" in tests:
            tests = {**tests, "inputs": tests["inputs"] * repeat, "outputs": tests["outputs"] * repeat}
        c = row["comparison"]
        compare = (
            "float:1e-6"
            if c.startswith("float")
            else "tokens_nocase"
            if "case-insensitive" in c
            else "tokens"
        )
        out.append(({**row, "tests": tests}, read_tests(tests), compare))
    return out


def per_test_commands(suite: TestSuite, code: str, python: str) -> list[tuple[list[str], str]]:
    cmds = []
    for case in suite.cases:
        if suite.mode == "stdio":
            cmds.append(([python, "-I", "-B", "-c", code], case.stdin or ""))
        else:
            job = {"code": code, "mode": suite.mode, "fn": suite.fn_name, "args": case.args}
            job.update({"test": case.assert_code, "entry": suite.entry_point})
            cmds.append(([python, "-I", "-B", "-c", DRIVER], json.dumps(job)))
    return cmds


def check_one(
    suite: TestSuite, k: int, proc: subprocess.CompletedProcess[str], compare: str, checker: bool
) -> bool:
    if proc.returncode != 0:
        return False
    case = suite.cases[k]
    if suite.mode == "stdio":
        return checker or compare_output(proc.stdout, str(case.expected), compare)
    if suite.mode == "assert":
        return proc.stdout.strip() == "ok"
    return call_result_matches(
        json.loads(proc.stdout), case.expected, wrapped_ok=suite.wrapped_outputs, float_tol=None
    )


def run_per_test(
    problems: list[tuple[dict[str, Any], TestSuite, str]], prefix: list[str], workers: int
) -> tuple[int, int]:
    """One process per test (optionally wrapped by `prefix`, e.g. bwrap ... --). (tests, passed)."""
    env = dict(SANDBOX_ENV)

    def one(p: tuple[dict[str, Any], TestSuite, str]) -> tuple[int, int]:
        row, suite, compare = p
        passed = 0
        for k, (cmd, stdin) in enumerate(per_test_commands(suite, row["solution_correct"], PYTHON)):
            try:
                proc = subprocess.run(
                    prefix + cmd, input=stdin, capture_output=True, text=True, timeout=TIME_LIMIT, env=env
                )
            except subprocess.TimeoutExpired:
                continue
            passed += check_one(suite, k, proc, compare, checker=bool(row["tests"].get("checker")))
        return suite.total, passed

    with ThreadPoolExecutor(workers) as pool:
        res = list(pool.map(one, problems))
    return sum(t for t, _ in res), sum(p for _, p in res)


def tracekit_config(workers: int, *, warm_solutions: int = 1000) -> CodeVerifyConfig:
    return CodeVerifyConfig(
        workers=workers,
        stop_on_first_failure=False,
        time_limit_s=TIME_LIMIT,
        sandbox_options=SandboxOptions(warm_solutions=warm_solutions),
    )


def run_tracekit(
    problems: list[tuple[dict[str, Any], TestSuite, str]], verifier: CodeVerifier
) -> tuple[int, int]:
    items = [
        CodeItem(code=row["solution_correct"], tests=row["tests"], compare=cmp) for row, _, cmp in problems
    ]
    verdicts = verifier.verify_many(items)
    return sum(v.tests_total for v in verdicts), sum(v.tests_passed for v in verdicts)


def run_tracekit_fresh(
    problems: list[tuple[dict[str, Any], TestSuite, str]], workers: int, *, warm_solutions: int = 1000
) -> tuple[int, int]:
    """A new verifier for this round only: starting and stopping its sandboxes is counted."""
    with CodeVerifier(tracekit_config(workers, warm_solutions=warm_solutions)) as verifier:
        return run_tracekit(problems, verifier)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat-tests", type=int, default=1, help="repeat each problem's test list N times")
    ap.add_argument(
        "--cold",
        action="store_true",
        help="also run tracekit with a new sandbox per solution (warm_solutions=1)",
    )
    args = ap.parse_args()
    problems = load(args.repeat_tests)
    runner = BubblewrapRunner()
    global PYTHON
    PYTHON = runner.python
    argv, _ = runner.command(limits=SandboxLimits())
    bwrap_prefix = argv[: argv.index("--") + 1]
    # The verifier a pipeline worker keeps for its whole run: warm sandboxes started in the warm-up.
    steady = CodeVerifier(tracekit_config(args.workers))
    ways = {
        "tracekit, warm sandboxes (one bwrap per worker, fork per solution and per test)": lambda: (
            run_tracekit(problems, steady)
        ),
        "subprocess.run per test (no isolation)": lambda: run_per_test(problems, [], args.workers),
        "bwrap per test": lambda: run_per_test(problems, bwrap_prefix, args.workers),
        "tracekit, new verifier each round (sandbox start-up counted)": lambda: run_tracekit_fresh(
            problems, args.workers
        ),
    }
    if args.cold:
        ways["tracekit, new bwrap per solution (warm_solutions=1)"] = lambda: run_tracekit_fresh(
            problems, args.workers, warm_solutions=1
        )
    names = list(ways)
    for fn in ways.values():
        fn()  # warm-up (page cache)
    totals = {n: [0, 0, 0.0] for n in names}
    for r in range(args.rounds):  # interleaved and rotated: the machine's load hits all three alike
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            t, p = ways[name]()
            totals[name][0] += t
            totals[name][1] += p
            totals[name][2] += time.perf_counter() - t0
    steady.close()
    results = {n: (int(v[0]), int(v[1]), float(v[2])) for n, v in totals.items()}
    base = results[next(iter(ways))]
    base_rate = base[0] / base[2]
    la = os.getloadavg()
    print(f"load average {la[0]:.1f} {la[1]:.1f} {la[2]:.1f} at the end, {os.cpu_count()} cores")
    print(
        f"{len(problems)} problems, {base[0] // args.rounds} tests/round, {args.rounds} rounds, {args.workers} workers, python {PYTHON}"
    )
    print("| runner | tests | passed | seconds | tests/s | tracekit speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (t, p, s) in results.items():
        rate = t / s
        print(f"| {name} | {t} | {p} | {s:.2f} | {rate:.1f} | {base_rate / rate:.2f}x |")


PYTHON = "/usr/bin/python3"

if __name__ == "__main__":
    main()
