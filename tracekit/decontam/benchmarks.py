"""The benchmark texts a decontamination run checks against: the recipe's list, or an eval config's.

`benchmarks: eval` with `eval_config: FILE` reads the `tracekit eval --config` file and takes its
`benchmarks` exactly as `tracekit eval` does: a registry name is read from the eval config's
`data_dir` (else the recipe's, else the Hub) with the registry's text column; a `NAME=FILE` or a
file is read by the evaluation's own loader (`tracekit.eval.benchmarks.load_problems`), so the
data is cleaned against the very problems the student is scored on. `--limit` and
`--fresh-after` only narrow what is scored, so every item of each benchmark is checked.

Example:
    >>> from tracekit.decontam.config import DecontamConfig
    >>> cfg = DecontamConfig(benchmarks=["aime25"], data_dir="../shared/data/benchmarks")
    >>> [(t.name, len(t.items)) for t in benchmark_texts(cfg)]
    [('aime25', 30)]
"""

from __future__ import annotations

from tracekit.decontam.config import DecontamConfig
from tracekit.decontam.registry import BENCHMARKS, BenchmarkFileError, BenchmarkTexts, load_benchmark


def benchmark_texts(config: DecontamConfig) -> list[BenchmarkTexts]:
    """Item ids and texts of every benchmark the config names (BenchmarkFileError if one can't be read)."""
    if config.benchmarks != "eval":
        return [load_benchmark(src, data_dir=config.data_dir) for src in config.sources()]
    assert config.eval_config is not None  # checked by DecontamConfig
    return eval_benchmark_texts(config.eval_config, data_dir=config.data_dir)


def eval_benchmark_texts(eval_config: str, *, data_dir: str | None = None) -> list[BenchmarkTexts]:
    """The benchmarks of a `tracekit eval --config` file (see the module docstring)."""
    from tracekit.eval.benchmarks import BenchmarkLoadError, load_problems, parse_bench_arg
    from tracekit.eval.config import EvalConfigFileError, load_eval_config

    try:
        ev = load_eval_config(eval_config)
    except (EvalConfigFileError, BenchmarkLoadError) as e:
        raise BenchmarkFileError(str(e)) from None
    out = []
    for arg in ev.benchmarks:
        try:
            name, path = parse_bench_arg(arg)
            if path is None:
                out.append(load_benchmark(BENCHMARKS[name], data_dir=ev.data_dir or data_dir))
                continue
            problems = load_problems(arg)
        except BenchmarkLoadError as e:
            raise BenchmarkFileError(f"eval config {eval_config}: {e}") from None
        out.append(
            BenchmarkTexts(
                name=name, items=[p.problem_id for p in problems], texts=[p.prompt for p in problems]
            )
        )
    return out
