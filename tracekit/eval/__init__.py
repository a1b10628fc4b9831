"""`tracekit eval`: pass@k of models on (fresh) benchmark problems, scored by tracekit's own verifiers.

Example:
    >>> from tracekit.eval import EvalConfig, run_eval
    >>> run_eval(EvalConfig(models=["out/student"], benchmarks=["aime25"], k=[1, 8], n=8,
    ...                     output="out/eval"))  # doctest: +SKIP
"""

from tracekit._lazy import lazy_exports

# names resolve on first use: `tracekit --help` and `tracekit.eval.cli` must not load the verifiers
__getattr__ = lazy_exports(
    __name__,
    {
        "EvalConfig": "config",
        "PassAtK": "passk",
        "benchmark_pass_at_k": "passk",
        "pass_at_k": "passk",
        "run_eval": "run",
    },
)

__all__ = ["EvalConfig", "PassAtK", "benchmark_pass_at_k", "pass_at_k", "run_eval"]
