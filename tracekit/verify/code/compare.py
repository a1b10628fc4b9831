"""Compare what a program printed or returned with what was expected."""

from __future__ import annotations

import math
import re
from typing import Any

COMPARE_PATTERN = r"^(exact|tokens|tokens_nocase|float:[0-9.]+([eE][-+]?[0-9]+)?)$"


def validate_compare(mode: str) -> str:
    """Check a comparison mode: `exact | tokens | tokens_nocase | float:TOL`.

    Example:
        >>> validate_compare("float:1e-6")
        'float:1e-6'
    """
    if not re.match(COMPARE_PATTERN, mode):
        raise ValueError(
            f"compare must be exact, tokens, tokens_nocase or float:TOL (e.g. float:1e-6), got {mode!r}"
        )
    return mode


def _float_tol(mode: str) -> float | None:
    return float(mode.split(":", 1)[1]) if mode.startswith("float:") else None


def _close(a: str, b: str, tol: float) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    if math.isnan(x) or math.isnan(y):
        return False
    return abs(x - y) <= tol * max(1.0, abs(y))


def compare_output(got: str, expected: str, mode: str) -> bool:
    """stdout comparison.

    - `exact`: identical after removing trailing whitespace at the very end (the final newline);
    - `tokens`: same whitespace-separated tokens in the same order (line breaks and spacing free);
    - `tokens_nocase`: `tokens`, ignoring letter case (problems that accept YES/yes);
    - `float:TOL`: `tokens`, numbers equal within TOL relative to max(1, |expected|).

    Example:
        >>> compare_output("1 2\\n3", "1 2 3 \\n", "tokens")
        True
        >>> compare_output("2.66666667", "2.6666666666667", "float:1e-6")
        True
    """
    if mode == "exact":
        return got.rstrip() == expected.rstrip()
    a, b = got.split(), expected.split()
    if len(a) != len(b):
        return False
    if mode == "tokens":
        return a == b
    if mode == "tokens_nocase":
        return [t.casefold() for t in a] == [t.casefold() for t in b]
    tol = _float_tol(mode)
    assert tol is not None, mode
    return all(_close(x, y, tol) for x, y in zip(a, b, strict=True))


def values_equal(got: Any, expected: Any, *, float_tol: float | None = None) -> bool:
    """Return-value equality after JSON conversion (tuples are lists already): type-exact, so
    None != 0 and True != 1; ints and floats compare by value (floats within `float_tol`, or 1e-9).

    Example:
        >>> values_equal([1, True], [1, True]), values_equal(1, True), values_equal(2, 2.0)
        (True, False, True)
    """
    if isinstance(got, bool) or isinstance(expected, bool):
        return type(got) is type(expected) and got == expected
    if got is None or expected is None:
        return got is None and expected is None
    if isinstance(got, int | float) and isinstance(expected, int | float):
        if isinstance(got, int) and isinstance(expected, int):
            return got == expected
        tol = 1e-9 if float_tol is None else float_tol
        return math.isclose(float(got), float(expected), rel_tol=tol, abs_tol=tol if float_tol else 0.0)
    if isinstance(got, str) or isinstance(expected, str):
        return isinstance(got, str) and isinstance(expected, str) and got == expected
    if isinstance(got, list) and isinstance(expected, list):
        return len(got) == len(expected) and all(
            values_equal(x, y, float_tol=float_tol) for x, y in zip(got, expected, strict=True)
        )
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == {str(k) for k in expected} and all(
            values_equal(got[str(k)], v, float_tol=float_tol) for k, v in expected.items()
        )
    return False


def call_result_matches(got: Any, expected: Any, *, wrapped_ok: bool, float_tol: float | None) -> bool:
    """`values_equal`, also accepting APPS/TACO's one-element-list wrapping of the expected value."""
    if values_equal(got, expected, float_tol=float_tol):
        return True
    return (
        wrapped_ok
        and isinstance(expected, list)
        and len(expected) == 1
        and values_equal(got, expected[0], float_tol=float_tol)
    )


def float_tolerance(mode: str) -> float | None:
    return _float_tol(mode)
