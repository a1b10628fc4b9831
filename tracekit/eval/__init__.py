"""`tracekit eval`: pass@k of models on (fresh) benchmark problems, scored by tracekit's own verifiers.

Example:
    >>> from tracekit.eval import EvalConfig, run_eval
    >>> run_eval(EvalConfig(models=["out/student"], benchmarks=["aime25"], k=[1, 8], n=8,
    ...                     output="out/eval"))  # doctest: +SKIP
"""

from tracekit.eval.config import EvalConfig
from tracekit.eval.passk import PassAtK, benchmark_pass_at_k, pass_at_k
from tracekit.eval.run import run_eval

__all__ = ["EvalConfig", "PassAtK", "benchmark_pass_at_k", "pass_at_k", "run_eval"]
