"""Checks of a recipe beyond its schema: files exist, named columns exist in the sources, settings that
only make sense together are together."""

from __future__ import annotations

from tracekit.recipe.loader import LoadedRecipe, Problem
from tracekit.sources.base import peek_columns, source_files


def check_sources(loaded: LoadedRecipe) -> list[Problem]:
    problems: list[Problem] = []
    for i, src in enumerate(loaded.recipe.sources):
        if src.hub is not None:
            continue
        files = source_files(src, loaded.base_dir)
        missing = [f for f in files if not f.exists()]
        if not files or missing:
            where = missing[0] if missing else loaded.resolve_path(src.path or "")
            path: tuple[str | int, ...] = ("sources", i, "path")
            problems.append(Problem(path, f"file not found: {where}", loaded.line(path)))
            continue
        cols = peek_columns(src, loaded.base_dir)
        if cols is None:
            continue
        for key, col in src.columns.model_dump().items():
            if col is None or col in cols:
                continue
            if key == "prompt" and src.columns.messages and "prompt" not in src.columns.model_fields_set:
                continue  # the default prompt column is optional when messages carry the prompt
            path = ("sources", i, "columns", key)
            problems.append(
                Problem(path, f"column {col!r} does not exist in {files[0].name} (it has: {', '.join(cols)})", loaded.line(path))
            )
    return problems


# domains whose traces end in no single final answer to vote on
NO_FINAL_ANSWER = ("code", "general")


def check_votes(loaded: LoadedRecipe) -> list[Problem]:
    """Majority answers (`no_gold` / `gold_repair: majority`) only where the math verifier applies."""
    r = loaded.recipe
    problems: list[Problem] = []

    def wrong(path: tuple[str | int, ...], msg: str) -> None:
        problems.append(Problem(path, msg, loaded.line(path)))

    def key_of(cfg: object, base: tuple[str | int, ...]) -> tuple[str | int, ...]:
        return (*base, "no_gold" if getattr(cfg, "no_gold", None) else "gold_repair")

    top = r.verify.math
    if top is not None and top.votes:
        bad = [d for d in top.domains if d in NO_FINAL_ANSWER]
        if bad:
            wrong(key_of(top, ("verify", "math")), f"majority voting needs a final answer to compare; domain(s) {bad} have none")
        elif not any(s.domain in top.domains and (s.verify is None or s.verify.math is None) for s in r.sources):
            wrong(
                key_of(top, ("verify", "math")),
                f"majority voting applies to domains {top.domains}, and no source without its own `verify.math` has one",
            )
    for i, s in enumerate(r.sources):
        own = s.verify.math if s.verify is not None else None
        if own is None or not own.votes:
            continue
        if s.domain not in own.domains or s.domain in NO_FINAL_ANSWER:
            wrong(
                key_of(own, ("sources", i, "verify", "math")),
                f"majority voting is for math answers; source {s.name!r} has domain {s.domain!r}",
            )
    return problems


def check_benchmarks(loaded: LoadedRecipe) -> list[Problem]:
    """The decontamination benchmarks that are files (user files, local registry copies, an eval
    config and its files) exist and hold the named columns. Hub datasets are not checked here."""
    from tracekit.decontam.benchmarks import eval_benchmark_texts
    from tracekit.decontam.config import BenchmarkEntry
    from tracekit.decontam.registry import BENCHMARKS, BenchmarkFileError, _local_path, load_benchmark

    cfg = loaded.recipe.decontaminate
    if cfg is None:
        return []
    data_dir = str(loaded.resolve_path(cfg.data_dir)) if cfg.data_dir else None
    problems: list[Problem] = []
    if cfg.benchmarks == "eval":
        assert cfg.eval_config is not None
        path: tuple[str | int, ...] = ("decontaminate", "eval_config")
        file = loaded.resolve_path(cfg.eval_config)
        try:
            from tracekit.eval.benchmarks import parse_bench_arg
            from tracekit.eval.config import EvalConfigFileError, load_eval_config

            ev = load_eval_config(file)
            if any(parse_bench_arg(a)[1] is not None for a in ev.benchmarks):
                eval_benchmark_texts(str(file), data_dir=data_dir)
        except (BenchmarkFileError, EvalConfigFileError, ValueError) as e:
            problems.append(Problem(path, str(e), loaded.line(path)))
        return problems
    for i, b in enumerate(cfg.benchmarks):
        src = BENCHMARKS[b] if isinstance(b, str) else b.source()
        if isinstance(b, BenchmarkEntry) and b.path:
            src = b.model_copy(update={"path": str(loaded.resolve_path(b.path))}).source()
        if _local_path(src, data_dir) is None:
            continue  # read from the Hub when the build runs
        try:
            load_benchmark(src, data_dir=data_dir)
        except BenchmarkFileError as e:
            key: tuple[str | int, ...] = ("decontaminate", "benchmarks", i)
            problems.append(Problem(key, str(e), loaded.line(key)))
    return problems
