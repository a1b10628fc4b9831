"""pass@k: the unbiased estimator from n samples with c correct, and a bootstrap interval over problems.

The estimator (Chen et al. 2021, "Evaluating Large Language Models Trained on Code") is the
probability that at least one of k samples drawn without replacement from the n is correct:
`1 - C(n-c, k) / C(n, k)`, computed as a product so large n never overflows. A benchmark's pass@k is
the mean over its problems. The confidence interval is a percentile bootstrap over problems
(problems resampled with replacement, seeded): it covers the uncertainty of which problems were
drawn, which dominates on small benchmarks such as AIME's 30.

Example:
    >>> pass_at_k(n=4, c=1, k=1)
    0.25
    >>> round(pass_at_k(n=4, c=1, k=2), 4)
    0.5
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def pass_at_k(*, n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with `c` correct among `n` samples (k <= n)."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got c={c}, n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


@dataclass(frozen=True, slots=True)
class PassAtK:
    """pass@k of a benchmark: the mean over problems, and a `level` bootstrap interval [low, high]."""

    k: int
    value: float
    low: float
    high: float
    problems: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "k": self.k,
            "value": self.value,
            "ci_low": self.low,
            "ci_high": self.high,
            "problems": self.problems,
        }


def benchmark_pass_at_k(
    counts: Sequence[tuple[int, int]],
    *,
    k: int,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> PassAtK:
    """pass@k over problems given as (n, c) pairs, with a percentile bootstrap interval over problems.

    Problems with fewer than k samples are left out (`problems` says how many were used).

    Example:
        >>> r = benchmark_pass_at_k([(4, 4), (4, 0)], k=1)
        >>> r.value, r.problems
        (0.5, 2)
    """
    per = np.array([pass_at_k(n=n, c=c, k=k) for n, c in counts if n >= k], dtype=np.float64)
    if per.size == 0:
        return PassAtK(k=k, value=float("nan"), low=float("nan"), high=float("nan"), problems=0)
    value = float(per.mean())
    if per.size == 1 or np.all(per == per[0]):
        return PassAtK(k=k, value=value, low=value, high=value, problems=int(per.size))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, per.size, size=(resamples, per.size))
    means = per[idx].mean(axis=1)
    alpha = (1.0 - level) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return PassAtK(k=k, value=value, low=float(low), high=float(high), problems=int(per.size))
