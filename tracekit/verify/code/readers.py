"""Read tests in the shapes datasets publish them: APPS/TACO `input_output`, LiveCodeBench public and
private tests, open-r1 `verification_info`, HumanEval `test` + `entry_point`, MBPP `test_list`,
deepmind/code_contests `{input: [...], output: [...]}`.
"""

from __future__ import annotations

import ast
import base64
import io
import json
import pickle
import re
import zlib
from typing import Any

from tracekit.verify.code.suite import TestCase, TestSuite


class TestFormatError(ValueError):
    """The tests could not be read in any known shape."""

    __test__ = False  # not a pytest class


class _StringsOnlyUnpickler(pickle.Unpickler):
    # LiveCodeBench private tests are base64(zlib(pickle(json string))): allow no classes at all.
    def find_class(self, module: str, name: str) -> Any:
        raise TestFormatError(f"refusing to unpickle {module}.{name}")


def decode_tests(text: str) -> Any:
    """Tests given as text: JSON, a Python literal, or LiveCodeBench's base64(zlib(pickle(json)))."""
    text = text.strip()
    if not text:
        raise TestFormatError("empty tests")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)  # Python repr of a dict/list (seen in dataset dumps)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        raw = zlib.decompress(base64.b64decode(text, validate=True))
        obj = _StringsOnlyUnpickler(io.BytesIO(raw)).load()
    except (ValueError, zlib.error, pickle.UnpicklingError, EOFError) as e:
        raise TestFormatError(f"tests are not JSON, a Python literal or LiveCodeBench-compressed: {e}") from e
    return json.loads(obj) if isinstance(obj, str | bytes) else obj


def _as_text(v: Any) -> str:
    if isinstance(v, list):  # some APPS rows give a test's stdin/stdout as a list of lines
        return "\n".join(str(x) for x in v) + ("\n" if v else "")
    return str(v)


def _lcb_args(text: str) -> list[Any]:
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def _entry_from_check_call(check_call: str | None) -> str | None:
    m = re.match(r"\s*check\(\s*([A-Za-z_]\w*)\s*\)", check_call or "")
    return m.group(1) if m else None


def _from_list(items: list[Any], *, fn_name: str | None) -> TestSuite:
    if not all(isinstance(t, dict) and "input" in t and "output" in t for t in items):
        raise TestFormatError("a list of tests must hold {'input', 'output'} objects")
    kinds = {str(t.get("testtype") or t.get("type") or "stdin").lower() for t in items}
    functional = bool(kinds & {"functional", "function_call", "call"})
    if functional:
        fn = fn_name or next((t.get("fn_name") for t in items if t.get("fn_name")), None)
        if not fn:
            raise TestFormatError("functional tests need fn_name (LiveCodeBench metadata func_name)")
        cases = tuple(
            TestCase(
                args=_lcb_args(t["input"]) if isinstance(t["input"], str) else list(t["input"]),
                expected=json.loads(t["output"]) if isinstance(t["output"], str) else t["output"],
            )
            for t in items
        )
        return TestSuite(mode="call", cases=cases, fn_name=fn)
    cases = tuple(TestCase(stdin=_as_text(t["input"]), expected=_as_text(t["output"])) for t in items)
    return TestSuite(mode="stdio", cases=cases)


def _from_dict(d: dict[str, Any], *, fn_name: str | None, entry_point: str | None) -> TestSuite:
    for wrapper in ("input_output", "verification_info"):
        if wrapper in d and len(d) <= 3:
            return read_tests(d[wrapper], fn_name=fn_name, entry_point=entry_point)
    if "test_cases" in d:  # open-r1 verification_info
        suite = read_tests(d["test_cases"], fn_name=fn_name or d.get("fn_name"), entry_point=entry_point)
        return suite
    test_code = d.get("test") if isinstance(d.get("test"), str) else d.get("test_code")
    if isinstance(test_code, str) and test_code.strip():  # HumanEval: run test code, then check(entry)
        entry = (
            entry_point
            or d.get("entry_point")
            or _entry_from_check_call(d.get("check_call"))
            or d.get("fn_name")
        )
        return TestSuite(mode="assert", cases=(TestCase(assert_code=test_code),), entry_point=entry)
    if isinstance(d.get("test_list"), list):  # MBPP: each assert line is one test
        setup = d.get("test_setup_code") or ""
        imports = d.get("test_imports") or []
        prefix = "\n".join([*imports, setup]).strip()
        asserts = [*d["test_list"], *(d.get("challenge_test_list") or [])]
        cases = tuple(TestCase(assert_code=(prefix + "\n" + a).strip() + "\n") for a in asserts)
        return TestSuite(mode="assert", cases=cases)
    if set(d) == {"input", "output"} and isinstance(d["input"], list):  # deepmind/code_contests tests
        d = {"inputs": d["input"], "outputs": d["output"]}
    if "inputs" in d and "outputs" in d:
        inputs, outputs = d["inputs"], d["outputs"]
        if len(inputs) != len(outputs):
            raise TestFormatError(f"{len(inputs)} inputs but {len(outputs)} outputs")
        checker = d.get("checker")
        fn = fn_name or d.get("fn_name")
        if fn:
            if all(isinstance(x, str) for x in inputs):  # LiveCodeBench: JSON per line, JSON output
                cases = tuple(
                    TestCase(args=_lcb_args(i), expected=json.loads(o) if isinstance(o, str) else o)
                    for i, o in zip(inputs, outputs, strict=True)
                )
                return TestSuite(mode="call", cases=cases, fn_name=fn, checker=checker)
            cases = tuple(
                TestCase(args=list(i) if isinstance(i, list) else [i], expected=o)
                for i, o in zip(inputs, outputs, strict=True)
            )
            return TestSuite(mode="call", cases=cases, fn_name=fn, wrapped_outputs=True, checker=checker)
        cases = tuple(
            TestCase(stdin=_as_text(i), expected=_as_text(o)) for i, o in zip(inputs, outputs, strict=True)
        )
        return TestSuite(mode="stdio", cases=cases, checker=checker)
    raise TestFormatError(f"unknown tests shape with keys {sorted(d)[:8]}")


def read_tests(raw: Any, *, fn_name: str | None = None, entry_point: str | None = None) -> TestSuite:
    """Turn tests in any published shape (object or its JSON / Python-literal text) into a `TestSuite`.

    Example:
        >>> s = read_tests('{"inputs": ["1 2\\\\n"], "outputs": ["3\\\\n"]}')
        >>> s.mode, s.cases[0].stdin, s.cases[0].expected
        ('stdio', '1 2\\n', '3\\n')
        >>> read_tests({"fn_name": "f", "inputs": ["[1, 2]\\n3"], "outputs": ["6"]}).cases[0].args
        [[1, 2], 3]
    """
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    if isinstance(raw, str):
        raw = decode_tests(raw)
        if isinstance(raw, str):  # double-encoded JSON
            raw = decode_tests(raw)
    if isinstance(raw, list):
        suite = _from_list(raw, fn_name=fn_name)
    elif isinstance(raw, dict):
        suite = _from_dict(raw, fn_name=fn_name, entry_point=entry_point)
    else:
        raise TestFormatError(f"tests must be an object or a list, got {type(raw).__name__}")
    if not suite.cases:
        raise TestFormatError("no tests")
    return suite
