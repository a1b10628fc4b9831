"""`tracekit eval`: load benchmarks, sample (or read samples), verify, score, write ledger + reports."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tracekit.eval.benchmarks import keep_fresh, load_problems
from tracekit.eval.config import EvalConfig
from tracekit.eval.layout import EvalLayout, default_output
from tracekit.eval.ledger import write_eval_ledger
from tracekit.eval.overlap import find_overlap
from tracekit.eval.problem import EvalProblem
from tracekit.eval.report import print_report, write_reports
from tracekit.eval.results import BenchResult, compute_results
from tracekit.eval.sample import EvalSample
from tracekit.eval.sampler import sample_model
from tracekit.eval.samples_file import read_samples
from tracekit.eval.scorer import score_samples
from tracekit.record import stable_hash
from tracekit.teachers.live import RUNTIME_ENGINE_ARGS
from tracekit.versions import tool_versions_json


def _warn(msg: str) -> None:
    print(f"tracekit eval: warning: {msg}", file=sys.stderr)


def eval_config_hash(config: EvalConfig) -> str:
    """What decides the samples: sampling, templates, output-changing engine arguments (not where or how fast)."""
    engine = {k: v for k, v in sorted(config.engine.items()) if k not in RUNTIME_ENGINE_ARGS}
    parts = [
        config.sampling(),
        config.math_template,
        config.code_template,
        config.system_prompt,
        engine,
        config.seed,
    ]
    return stable_hash("eval-config", json.dumps(parts, sort_keys=True, default=str))


def load_all(config: EvalConfig) -> tuple[list[EvalProblem], dict[str, dict[str, Any]]]:
    problems: list[EvalProblem] = []
    info: dict[str, dict[str, Any]] = {}
    for arg in config.benchmarks:
        probs = load_problems(arg, data_dir=config.data_dir)
        name = probs[0].benchmark if probs else arg
        entry: dict[str, Any] = {"loaded": len(probs), "undated": 0}
        if config.fresh_after is not None:
            probs, undated = keep_fresh(probs, config.fresh_after)
            entry.update(fresh_after=str(config.fresh_after), undated=undated)
            if undated:
                _warn(
                    f"{name}: {undated} problem(s) have no publication date and are left out (--fresh-after)"
                )
        if config.limit is not None:
            probs = probs[: config.limit]
        if not probs:
            _warn(f"{name}: no problems left to evaluate")
        entry["problems"] = len(probs)
        entry["domain"] = probs[0].domain if probs else None
        info[name] = entry
        problems += probs
    return problems, info


def eval_run_id(config: EvalConfig) -> str:
    """Names the default output folder: what decides the results (models, benchmarks, sampling, samples file)."""
    parts = [config.models, config.benchmarks, eval_config_hash(config), config.samples, config.limit]
    return stable_hash("eval-run", json.dumps(parts + [str(config.fresh_after)], default=str), size=6)


def output_layout(config: EvalConfig) -> EvalLayout:
    """The evaluation's output folder: `config.output`, else `out/eval/<run id>`."""
    return EvalLayout(Path(config.output) if config.output else default_output(eval_run_id(config)))


def run_eval(
    config: EvalConfig, *, console: bool = True, train_ledgers: Mapping[str, Path] | None = None
) -> list[BenchResult]:
    """Run an evaluation end to end; returns the results (also written to `output_layout(config)`).

    `train_ledgers`: the ledger folder of each build in `config.train_data` (the CLI finds them in the
    build's output layout), checked for overlap with the benchmarks.

    Example:
        >>> cfg = EvalConfig(models=["out/student"], benchmarks=["aime25"], data_dir="../shared/data/benchmarks",
        ...                  k=[1, 8], n=8, output="out/eval-student")
        >>> results = run_eval(cfg)  # doctest: +SKIP
    """
    layout = output_layout(config)
    ledgers = dict(train_ledgers or {})
    if missing := [t for t in config.train_data if t not in ledgers]:
        raise ValueError(f"no ledger folder given for the training build(s) {', '.join(missing)}")
    problems, info = load_all(config)
    # overlap with training sets built by tracekit
    overlap_by_key: dict[tuple[str, int], list[dict[str, str]]] = {}
    if config.train_data and problems:
        chosen = {t: ledgers[t] for t in config.train_data}
        for pos, hits in find_overlap(problems, chosen, ngram=config.ngram).items():
            p = problems[pos]
            overlap_by_key[(p.benchmark, p.row_index)] = hits
        for name, entry in info.items():
            keys = [k for k in overlap_by_key if k[0] == name]
            entry["overlap_problems"] = len(keys)
            entry["overlap_with"] = sorted({h["benchmark"] for k in keys for h in overlap_by_key[k]})
            if keys:
                _warn(
                    f"{name}: {len(keys)} of {entry['problems']} problem(s) share a {config.ngram}-gram with "
                    f"training data ({', '.join(entry['overlap_with'])}); their pass@k is not a fair measure"
                )
    config_hash = eval_config_hash(config)
    versions = tool_versions_json()
    all_samples: list[EvalSample] = []
    if config.samples:
        default = config.models[0] if len(config.models) == 1 else None
        samples = read_samples(Path(config.samples), problems, default_model=default)
        models = list(dict.fromkeys(s.model for s in samples))
        if config.models:  # models named on the command line: only theirs
            models = [m for m in models if m in config.models]
        per_model = {m: [s for s in samples if s.model == m] for m in models}
        sampling: dict[str, Any] = {"source": str(config.samples)}
    else:
        per_model = {}
        sampling = config.sampling()
        for m in config.models:
            per_model[m] = sample_model(
                config=config, model=m, problems=problems, log_dir=layout.logs, config_hash=config_hash
            )
    for rank, samples in enumerate(per_model.values()):
        score_samples(samples, sandbox=config.sandbox, workers=config.verify_workers)
        write_eval_ledger(
            samples,
            layout.ledger,
            rank=rank,
            config_hash=config_hash,
            sampling=sampling,
            versions=versions,
            overlap=overlap_by_key,
        )
        all_samples += samples
    results = compute_results(
        all_samples, ks=config.k, level=config.confidence, resamples=config.bootstrap, seed=config.seed
    )
    meta = {
        "models": list(per_model),
        "k": config.k,
        "n": config.n if not config.samples else None,
        "confidence": config.confidence,
        "ci_method": f"percentile bootstrap over problems, {config.bootstrap} resamples, seed {config.seed}",
        "sampling": sampling,
        "config_hash": config_hash,
        "benchmarks": info,
        "tool_versions": json.loads(versions),
    }
    written = write_reports(layout, results, meta)
    if console:
        print_report(results, meta)
        print(f"results: {written['markdown']} and {written['json']}; samples: {layout.ledger}")
    return results
