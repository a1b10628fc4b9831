"""Code verification inside a build: the step survives datatrove's deep copy and pickling, and the
tests of deepmind/code_contests (`{input: [...], output: [...]}`) are read as stdin/stdout cases."""

from __future__ import annotations

import copy
import pickle
import random

from tracekit.verify.code.config import CodeVerifyConfig
from tracekit.verify.code.readers import read_tests
from tracekit.verify.code_step import CodeVerifyStep


def test_code_step_is_copied_and_pickled_to_tasks() -> None:
    step = CodeVerifyStep(config=CodeVerifyConfig(sandbox="process"))
    _ = step.verifier.runner.pool  # a used runner holds warm sandboxes and a lock
    for clone in (copy.deepcopy(step), pickle.loads(pickle.dumps(step))):
        assert clone.verifier.runner._pool is None
        with clone.verifier.runner._pool_lock:
            pass
    step.verifier.close()


def test_code_contests_tests_are_stdin_stdout_cases() -> None:
    rng = random.Random(0)
    for _ in range(50):
        n = rng.randint(1, 6)
        ins = [f"{rng.randint(0, 99)} {rng.randint(0, 99)}\n" for _ in range(n)]
        outs = [f"{rng.randint(0, 200)}\n" for _ in range(n)]
        suite = read_tests({"input": ins, "output": outs})
        assert suite.mode == "stdio"
        assert [(c.stdin, c.expected) for c in suite.cases] == list(zip(ins, outs, strict=True))
