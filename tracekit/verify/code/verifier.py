"""Run solutions against their tests in the sandbox, many at once, with three-way verdicts."""

from __future__ import annotations

import ast
import json
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tracekit.sandbox import (
    SandboxBroken,
    SandboxLane,
    SandboxLimits,
    SandboxRunner,
    SandboxSession,
    make_runner,
)
from tracekit.verify.base import VerifyResult
from tracekit.verify.code.compare import (
    call_result_matches,
    compare_output,
    float_tolerance,
    validate_compare,
)
from tracekit.verify.code.config import CodeVerifyConfig
from tracekit.verify.code.item import CodeItem
from tracekit.verify.code.readers import TestFormatError, read_tests
from tracekit.verify.code.suite import TestCase, TestSuite
from tracekit.verify.code.verdict import CodeVerdict

EXCERPT = 200
REASONS = {
    "timeout": "timeout",
    "signal": "killed_by_signal",
    "exit": "runtime_error",
    "output_limit": "output_limit",
}


def _excerpt(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
    return s if len(s) <= EXCERPT else s[:EXCERPT] + "..."


@dataclass(slots=True)
class _Queued:
    """A solution sent to a lane's sandbox and not read yet (`session` None: sending it failed)."""

    index: int
    item: CodeItem
    suite: TestSuite
    compare: str
    session: SandboxSession | None
    error: str | None

    @property
    def sent_all(self) -> bool:
        return self.session is not None and self.session.sent_all


def _checker_arity(source: str) -> int:
    try:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef) and node.name == "check":
                return len(node.args.args)
    except SyntaxError:
        pass
    return 2


class CodeVerifier:
    """Verify (code, language, tests) items in the sandbox the config names, on all cores.

    Example:
        >>> v = CodeVerifier(CodeVerifyConfig())  # doctest: +SKIP
        >>> v.verify_many([CodeItem(code="print(int(input())*2)",
        ...                         tests={"inputs": ["2\\n"], "outputs": ["4\\n"]})])[0].verdict  # doctest: +SKIP
        'pass'
    """

    def __init__(
        self, config: CodeVerifyConfig | None = None, *, runner: SandboxRunner | None = None
    ) -> None:
        self.config = config or CodeVerifyConfig()
        self.runner = runner or make_runner(kind=self.config.sandbox, options=self.config.sandbox_options)
        self.method = self.runner.name

    # ------------------------------------------------------------------ public
    def close(self) -> None:
        """Stop the warm sandboxes (they also stop with this process); the verifier stays usable."""
        self.runner.close()

    def __enter__(self) -> CodeVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def verify_many(self, items: Sequence[CodeItem]) -> list[CodeVerdict]:
        """Verdicts in input order; solutions run concurrently (`workers`, default all cores).

        Each worker holds one warm sandbox (a `SandboxLane`) and queues the next solution behind the
        one it is judging, so the sandbox never waits for the host between solutions.
        """
        workers = min(self.config.workers or os.cpu_count() or 1, max(1, len(items)))
        results: list[CodeVerdict | None] = [None] * len(items)
        todo = iter(enumerate(items))
        lock = threading.Lock()

        def take() -> tuple[int, CodeItem] | None:
            with lock:
                return next(todo, None)

        def lane_worker() -> None:
            with self.runner.lane() as lane:
                queued: _Queued | None = None
                while (job := take()) is not None:
                    i, item = job
                    prepared = self._prepare(item)
                    if isinstance(prepared, CodeVerdict):
                        results[i] = prepared
                        continue
                    nxt = None
                    if queued is None or queued.sent_all:
                        nxt = self._queue(i, item, *prepared, lane=lane)
                    if queued is not None:
                        results[queued.index] = self._finish(queued)
                    queued = nxt or self._queue(i, item, *prepared, lane=lane)
                if queued is not None:
                    results[queued.index] = self._finish(queued)

        if workers == 1:
            lane_worker()
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for f in [pool.submit(lane_worker) for _ in range(workers)]:
                    f.result()
        return [r for r in results if r is not None]

    def verify_results(self, items: Sequence[CodeItem]) -> list[VerifyResult]:
        """`verify_many` mapped to the ledger: pass -> correct, fail -> incorrect, error -> error."""
        return [v.to_verify_result() for v in self.verify_many(items)]

    def limits_for(self, item: CodeItem) -> SandboxLimits:
        o = self.config.sandbox_options
        return SandboxLimits(
            time_limit_s=item.time_limit_s or self.config.time_limit_s,
            memory_mb=item.memory_mb or self.config.memory_mb,
            wall_factor=o.wall_factor,
            max_processes=o.max_processes,
            max_output_bytes=o.max_output_kb * 1024,
            max_open_files=o.max_open_files,
            compile_time_limit_s=o.compile_time_limit_s,
            compile_memory_mb=o.compile_memory_mb,
        )

    def _prepare(self, item: CodeItem) -> CodeVerdict | tuple[TestSuite, str]:
        """(suite, compare) of a runnable item, or its verdict when there is nothing to run."""
        try:
            suite = read_tests(item.tests, fn_name=item.fn_name, entry_point=item.entry_point)
            compare = validate_compare(item.compare or self.config.compare)
        except (TestFormatError, ValueError, TypeError, KeyError) as e:
            return CodeVerdict(
                "error", 0, 0, {"reason": "bad_tests", "error": str(e)[:300]}, method=self.method
            )
        if not item.code.strip():
            return CodeVerdict("fail", 0, suite.total, {"reason": "no_code"}, method=self.method)
        if item.language not in ("python", "cpp") or (item.language == "cpp" and suite.mode != "stdio"):
            detail: dict[str, Any] = {
                "reason": "unsupported",
                "error": f"{item.language} with {suite.mode} tests",
            }
            return CodeVerdict("error", 0, suite.total, detail, method=self.method)
        return suite, compare

    def verify(self, item: CodeItem) -> CodeVerdict:
        """One solution: read its tests, run it (retrying a broken sandbox), decide the verdict."""
        prepared = self._prepare(item)
        if isinstance(prepared, CodeVerdict):
            return prepared
        return self._run_with_retries(item, *prepared)

    def _run_with_retries(
        self, item: CodeItem, suite: TestSuite, compare: str, *, failed: int = 0, last_error: str = ""
    ) -> CodeVerdict:
        """`failed` attempts already broke (in a lane); the rest run in sandboxes from the pool."""
        for attempt in range(failed, self.config.max_retries + 1):
            try:
                verdict = self._run(item, suite, compare, self._open(item, suite))
                if attempt:
                    verdict.detail["retries"] = attempt
                return verdict
            except SandboxBroken as e:
                last_error = str(e)
        detail = {
            "reason": "sandbox_error",
            "error": last_error[-500:],
            "attempts": self.config.max_retries + 1,
        }
        return CodeVerdict("error", 0, suite.total, detail, method=self.method)

    def _queue(
        self, index: int, item: CodeItem, suite: TestSuite, compare: str, *, lane: SandboxLane
    ) -> _Queued:
        """Send a solution and its tests to the lane's sandbox; read nothing yet."""
        try:
            return _Queued(index, item, suite, compare, self._open(item, suite, lane=lane), None)
        except SandboxBroken as e:
            return _Queued(index, item, suite, compare, None, str(e))

    def _finish(self, q: _Queued) -> CodeVerdict:
        """Read and judge a queued solution; if its sandbox broke, retry it like `verify` does. A
        solution that never started (the sandbox broke under the one before it) has used no attempt."""
        failed = 0
        if q.session is not None:
            try:
                return self._run(q.item, q.suite, q.compare, q.session)
            except SandboxBroken as e:
                q.error = str(e)
                failed = 1 if q.session.started else 0
        return self._run_with_retries(q.item, q.suite, q.compare, failed=failed, last_error=q.error or "")

    # ----------------------------------------------------------------- running
    def _open(self, item: CodeItem, suite: TestSuite, *, lane: SandboxLane | None = None) -> SandboxSession:
        return self.runner.open_session(
            code=item.code,
            language=item.language,
            mode=suite.mode,
            limits=self.limits_for(item),
            fn_name=suite.fn_name,
            entry_point=suite.entry_point,
            tests=[case.request(k) for k, case in enumerate(suite.cases)],
            lane=lane,
        )

    def _run(self, item: CodeItem, suite: TestSuite, compare: str, session: SandboxSession) -> CodeVerdict:
        limits = self.limits_for(item)
        tol = float_tolerance(compare)
        passed, peak_kb, cpu_total, max_wall = 0, 0, 0.0, 0.0
        failure: dict[str, Any] | None = None
        pending: list[tuple[int, TestCase, str]] = []  # outputs waiting for the special judge
        with session:
            if session.compile_error is not None:
                detail = {
                    "reason": "compile_error",
                    "first_failing_test": 0,
                    "stderr_tail": session.compile_error[-400:],
                }
                return CodeVerdict("fail", 0, suite.total, detail, method=self.method)
            for k, (case, raw) in enumerate(zip(suite.cases, session.run_tests(), strict=False)):
                peak_kb = max(peak_kb, int(raw.get("maxrss_kb") or 0))
                cpu_total += float(raw.get("cpu_s") or 0.0)
                max_wall = max(max_wall, float(raw.get("wall_s") or 0.0))
                if raw["outcome"] == "ok" and suite.mode == "stdio" and suite.checker:
                    pending.append((k, case, raw.get("stdout", "")))
                    continue
                reason, got = self._judge(suite, case, raw, compare, tol)
                if reason is None:
                    passed += 1
                    continue
                if failure is None:
                    failure = self._failure(k, case, raw, reason, got)
                if self.config.stop_on_first_failure:
                    break
        if pending and suite.checker:
            passed, failure = self._special_judge(suite.checker, pending, limits, passed, failure)
        stats = {"time_s": round(max_wall, 4), "cpu_s": round(cpu_total, 4), "peak_memory_kb": peak_kb}
        if failure is None and passed == suite.total:
            return CodeVerdict("pass", passed, suite.total, stats, method=self.method)
        detail = {**(failure or {"reason": "not_all_tests_run"}), **stats}
        return CodeVerdict("fail", passed, suite.total, detail, method=self.method)

    @staticmethod
    def _judge(
        suite: TestSuite, case: TestCase, raw: dict[str, Any], compare: str, tol: float | None
    ) -> tuple[str | None, Any]:
        """(None, got) when the test passed, else (reason, got). Any non-ok run fails the test."""
        outcome = raw["outcome"]
        if outcome != "ok":
            return REASONS.get(outcome, outcome), raw.get("stdout", "")
        if suite.mode == "stdio":
            got = raw.get("stdout", "")
            return (None if compare_output(got, str(case.expected), compare) else "wrong_answer"), got
        result = raw.get("result")
        if result is None:  # exited 0 without finishing the test (e.g. sys.exit before the asserts)
            return "no_result", raw.get("stdout", "")
        if suite.mode == "assert":
            return (None if result == "ok" else "no_result"), result
        try:
            got = json.loads(result)
        except json.JSONDecodeError:
            return "no_result", result
        ok = call_result_matches(got, case.expected, wrapped_ok=suite.wrapped_outputs, float_tol=tol)
        return (None if ok else "wrong_answer"), got

    @staticmethod
    def _failure(k: int, case: TestCase, raw: dict[str, Any], reason: str, got: Any) -> dict[str, Any]:
        f: dict[str, Any] = {"first_failing_test": k, "reason": reason}
        if reason in ("wrong_answer", "no_result"):
            if case.expected is not None:
                f["expected"] = _excerpt(case.expected)
            f["got"] = _excerpt(got)
        for key in ("exit_code", "signal"):
            if raw.get(key) is not None:
                f[key] = raw[key]
        if raw.get("stderr_tail"):
            f["stderr_tail"] = raw["stderr_tail"][-300:]
        f["test_time_s"] = raw.get("wall_s")
        return f

    def _special_judge(
        self,
        checker: str,
        pending: list[tuple[int, TestCase, str]],
        limits: SandboxLimits,
        passed: int,
        failure: dict[str, Any] | None,
    ) -> tuple[int, dict[str, Any] | None]:
        """Run the problem's `check(input, output[, expected])` in its own sandbox on each output."""
        arity = _checker_arity(checker)
        requests = [
            {"i": k, "args": [case.stdin or "", out] + ([case.expected] if arity >= 3 else [])}
            for k, case, out in pending
        ]
        with self.runner.open_session(
            code=checker, language="python", mode="call", limits=limits, fn_name="check", tests=requests
        ) as session:
            if session.compile_error is not None:
                raise SandboxBroken(f"special judge does not compile: {session.compile_error[-200:]}")
            for (k, case, out), raw in zip(pending, session.run_tests(), strict=False):
                ok = (
                    raw["outcome"] == "ok"
                    and raw.get("result") is not None
                    and json.loads(raw["result"]) is True
                )
                if ok:
                    passed += 1
                    continue
                if failure is None or k < int(failure.get("first_failing_test", 1 << 30)):
                    failure = {
                        "first_failing_test": k,
                        "reason": "wrong_answer",
                        "judge": "special",
                        "expected": _excerpt(case.expected),
                        "got": _excerpt(out),
                    }
                if self.config.stop_on_first_failure:
                    break
        return passed, failure
