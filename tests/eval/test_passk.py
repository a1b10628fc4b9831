"""The pass@k estimator against exact enumeration of every k-subset of the n samples."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest

from tracekit.eval.passk import benchmark_pass_at_k, pass_at_k


def enumerated(n: int, c: int, k: int) -> Fraction:
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    hit = sum(1 for s in subsets if any(samples[i] for i in s))
    return Fraction(hit, len(subsets))


@pytest.mark.parametrize("n", range(1, 9))
def test_estimator_equals_enumeration(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n=n, c=c, k=k) == pytest.approx(float(enumerated(n, c, k)), abs=1e-12), (n, c, k)


def test_estimator_large_n_is_stable() -> None:
    # 1 - C(n-c, k) / C(n, k) with exact integers, for n far beyond where naive factorials overflow floats
    n, c, k = 1000, 3, 64
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert pass_at_k(n=n, c=c, k=k) == pytest.approx(float(exact), rel=1e-12)


def test_estimator_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        pass_at_k(n=4, c=5, k=1)
    with pytest.raises(ValueError):
        pass_at_k(n=4, c=1, k=5)


def test_benchmark_mean_and_interval() -> None:
    counts = [(4, 4), (4, 1), (4, 0)]
    r1 = benchmark_pass_at_k(counts, k=1)
    assert r1.value == pytest.approx((1 + 0.25 + 0) / 3)
    assert r1.problems == 3
    assert 0.0 <= r1.low <= r1.value <= r1.high <= 1.0 and r1.low < r1.high
    # the bootstrap is seeded: the same input gives the same interval
    again = benchmark_pass_at_k(counts, k=1)
    assert (again.low, again.high) == (r1.low, r1.high)
    # every problem the same: no spread, the interval is the point
    flat = benchmark_pass_at_k([(4, 2), (4, 2)], k=2)
    assert flat.low == flat.value == flat.high == pytest.approx(1 - 1 / 6)
    # problems with fewer than k samples are left out
    part = benchmark_pass_at_k([(2, 2), (8, 0)], k=4)
    assert part.problems == 1 and part.value == 0.0
