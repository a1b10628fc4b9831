"""Benchmark decontamination: word n-grams, short items matched whole, rephrased problems (rule or judge)."""

from tracekit._lazy import lazy_exports

# names resolve on first use: importing a config module must not load the stage's dependencies
__getattr__ = lazy_exports(
    __name__,
    {
        "BENCHMARKS": "registry",
        "BenchmarkEntry": "config",
        "BenchmarkIndex": "stage",
        "BenchmarkSource": "registry",
        "DEFAULT_BENCHMARKS": "registry",
        "DecontamConfig": "config",
        "DecontamStage": "stage",
        "ItemIndex": "features",
        "Judge": "judge",
        "JudgeUnavailable": "judge",
        "RephraseConfig": "config",
        "benchmark_texts": "benchmarks",
        "load_benchmark": "registry",
    },
)

__all__ = [
    "BENCHMARKS",
    "BenchmarkEntry",
    "BenchmarkIndex",
    "BenchmarkSource",
    "DEFAULT_BENCHMARKS",
    "DecontamConfig",
    "DecontamStage",
    "ItemIndex",
    "Judge",
    "JudgeUnavailable",
    "RephraseConfig",
    "benchmark_texts",
    "load_benchmark",
]
