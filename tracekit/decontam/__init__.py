"""Benchmark decontamination: word n-gram overlap against a registry of benchmarks and user files."""

from tracekit.decontam.config import BenchmarkEntry, DecontamConfig
from tracekit.decontam.registry import BENCHMARKS, DEFAULT_BENCHMARKS, BenchmarkSource, load_benchmark
from tracekit.decontam.stage import BenchmarkIndex, DecontamStage

__all__ = [
    "BENCHMARKS",
    "DEFAULT_BENCHMARKS",
    "BenchmarkEntry",
    "BenchmarkIndex",
    "BenchmarkSource",
    "DecontamConfig",
    "DecontamStage",
    "load_benchmark",
]
