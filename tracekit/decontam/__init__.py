"""Benchmark decontamination: word n-gram overlap against a registry of benchmarks and user files."""

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
    "load_benchmark",
]
