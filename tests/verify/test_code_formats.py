"""Reading published test shapes, comparing outputs, extracting code from answers (no sandbox)."""

from __future__ import annotations

import base64
import json
import pickle
import zlib

import pytest

from tracekit.verify.code import TestFormatError, extract_code, read_tests
from tracekit.verify.code.compare import compare_output, validate_compare, values_equal
from tracekit.verify.code.config import CodeVerifyConfig


def test_apps_taco_stdio_and_python_literal_text() -> None:
    s = read_tests("{'inputs': ['1 2\\n'], 'outputs': ['3\\n']}")  # repr text, as some dumps store it
    assert (s.mode, s.cases[0].stdin, s.cases[0].expected) == ("stdio", "1 2\n", "3\n")
    s = read_tests(json.dumps({"input_output": json.dumps({"inputs": [["a", "b"]], "outputs": [["c"]]})}))
    assert s.cases[0].stdin == "a\nb\n" and s.cases[0].expected == "c\n"


def test_taco_call_based_accepts_wrapped_outputs() -> None:
    s = read_tests({"fn_name": "f", "inputs": [[1, 2]], "outputs": [[3]]})
    assert s.mode == "call" and s.cases[0].args == [1, 2] and s.wrapped_outputs


def test_livecodebench_functional_and_public_list() -> None:
    s = read_tests({"fn_name": "g", "inputs": ['"ab"\n[1, 2]'], "outputs": ["true"]})
    assert s.cases[0].args == ["ab", [1, 2]] and s.cases[0].expected is True and not s.wrapped_outputs
    public = json.dumps([{"input": "1\n", "output": "2\n", "testtype": "stdin"}])
    assert read_tests(public).mode == "stdio"
    fn = read_tests([{"input": "[3]", "output": "6", "testtype": "functional"}], fn_name="h")
    assert (fn.mode, fn.fn_name, fn.cases[0].args, fn.cases[0].expected) == ("call", "h", [[3]], 6)
    with pytest.raises(TestFormatError):
        read_tests([{"input": "[3]", "output": "6", "testtype": "functional"}])


def test_livecodebench_private_tests_are_decompressed_without_unsafe_unpickling() -> None:
    payload = json.dumps([{"input": "5\n", "output": "25\n", "testtype": "stdin"}])
    blob = base64.b64encode(zlib.compress(pickle.dumps(payload))).decode()
    assert read_tests(blob).cases[0].expected == "25\n"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("pwned",))

    evil = base64.b64encode(zlib.compress(pickle.dumps(Evil()))).decode()
    with pytest.raises(TestFormatError):
        read_tests(evil)


def test_open_r1_verification_info() -> None:
    info = {"language": "python", "test_cases": [{"type": "stdin_stdout", "input": "x\n", "output": "y\n"}]}
    assert read_tests(json.dumps(info)).cases[0].stdin == "x\n"


def test_humaneval_and_mbpp_assert_shapes() -> None:
    he = read_tests({"test": "def check(candidate):\n    assert candidate(1) == 2\n", "entry_point": "inc"})
    assert he.mode == "assert" and he.entry_point == "inc" and he.total == 1
    ds = read_tests({"test_code": "def check(c): pass", "check_call": "check(foo)", "fn_name": "foo"})
    assert ds.entry_point == "foo"
    mbpp = read_tests(
        {"test_list": ["assert f(1) == 1", "assert f(2) == 4"], "test_imports": ["import math"]}
    )
    assert mbpp.total == 2 and mbpp.cases[1].assert_code.startswith("import math\n")


@pytest.mark.parametrize("bad", ["", "not tests", "[1, 2]", '{"foo": 1}', '{"inputs": ["1"], "outputs": []}'])
def test_unknown_shapes_are_rejected(bad: str) -> None:
    with pytest.raises(TestFormatError):
        read_tests(bad)


def test_compare_modes() -> None:
    assert compare_output("1  2\n3\n\n", "1 2\n3", "tokens")
    assert not compare_output("1 3 2", "1 2 3", "tokens")
    assert not compare_output("2\n3 2", "2 \n3 2\n", "exact")
    assert compare_output("YES no", "yes NO", "tokens_nocase") and not compare_output("YES", "yes", "tokens")
    assert compare_output("1.5000001 x", "1.5 x", "float:1e-6")
    assert not compare_output("1.51", "1.5", "float:1e-6")
    with pytest.raises(ValueError):
        validate_compare("fuzzy")
    with pytest.raises(ValueError):
        CodeVerifyConfig(compare="float:")


def test_values_are_type_exact() -> None:
    assert values_equal([1, [2, "a"]], [1, [2, "a"]])
    assert not values_equal(True, 1) and not values_equal(None, 0) and not values_equal("1", 1)
    assert values_equal(0.1 + 0.2, 0.3) and not values_equal(0.31, 0.3)
    assert values_equal({"a": 1}, {"a": 1}) and not values_equal({"a": 1}, {"a": 2})


def test_extract_last_python_or_cpp_block() -> None:
    text = "```python\nprint(1)\n```\nbetter:\n```python3\nprint(2)\n```\n```text\nno\n```"
    assert extract_code(text) == ("print(2)\n", "python")
    assert extract_code("```cpp\nint main(){}\n```") == ("int main(){}\n", "cpp")
    assert extract_code("```\nx = 1\n```") == ("x = 1\n", "python")
    assert extract_code("The answer is 42.") is None and extract_code(None) is None


def test_config_forbids_unknown_keys() -> None:
    with pytest.raises(ValueError):
        CodeVerifyConfig(sandbox="docker")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        CodeVerifyConfig(timeout=3)  # type: ignore[call-arg]
