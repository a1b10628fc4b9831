"""The `tracekit eval` subcommand: its arguments and the function the CLI calls."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


def _key_values(items: list[str] | None, flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"{flag} takes KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip().replace("-", "_")] = yaml.safe_load(value) if value else ""
    return out


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    # defaults live in EvalConfig: a flag left out takes the --config file's value, else EvalConfig's
    p.add_argument(
        "models", nargs="*", help="model paths / Hub ids (managed vLLM) or served names (--base-url)"
    )
    p.add_argument(
        "--config",
        help="YAML file of these settings (EvalConfig's field names; paths relative to it); flags override it",
    )
    p.add_argument("--bench", action="append", help="registry name, NAME=FILE or a file (repeat)")
    p.add_argument(
        "--output", help="output folder: ledger/, results.json, results.md (default: out/eval/<id>, printed)"
    )
    p.add_argument("--k", help="comma-separated k values, e.g. 1,4,16 (default 1)")
    p.add_argument("--n", type=int, help="samples per problem (default 16)")
    p.add_argument("--max-tokens", type=int, help="default 32768")
    p.add_argument("--temperature", type=float, help="default 0.6")
    p.add_argument("--top-p", type=float, help="default 0.95")
    p.add_argument("--engine", action="append", metavar="KEY=VALUE", help="vLLM engine argument (repeat)")
    p.add_argument(
        "--engine-env", action="append", metavar="KEY=VALUE", help="environment of the managed vLLM"
    )
    p.add_argument(
        "--base-url", help="use this running OpenAI-compatible server (…/v1) instead of a managed vLLM"
    )
    p.add_argument("--api-key-env", help="environment variable holding the endpoint's API key")
    p.add_argument("--samples", help="score the generations in this file (no model run)")
    p.add_argument("--data-dir", help="folder with local copies of registry benchmarks")
    p.add_argument(
        "--fresh-after", type=dt.date.fromisoformat, help="keep problems published after YYYY-MM-DD"
    )
    p.add_argument("--limit", type=int, help="first N problems of each benchmark")
    p.add_argument("--train-data", action="append", help="tracekit build output to check overlap with")
    p.add_argument("--sandbox", choices=["bwrap", "process"], help="code sandbox (default bwrap)")
    p.add_argument("--workers", type=int, help="verifier processes (default: all cores)")
    p.add_argument("--max-concurrency", type=int, help="requests in flight (default 64)")
    p.add_argument("--seed", type=int, help="default 0")


def config_from_args(args: argparse.Namespace) -> Any:
    from tracekit.eval.config import EvalConfig, read_eval_config_file

    settings: dict[str, Any] = read_eval_config_file(args.config) if args.config else {}
    given = {
        "models": args.models or None,
        "benchmarks": args.bench,
        "output": args.output,
        "k": [int(x) for x in str(args.k).split(",") if x.strip()] if args.k is not None else None,
        "n": args.n,
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "engine": _key_values(args.engine, "--engine") if args.engine else None,
        "engine_env": (
            {k: str(v) for k, v in _key_values(args.engine_env, "--engine-env").items()}
            if args.engine_env
            else None
        ),
        "base_url": args.base_url,
        "api_key_env": args.api_key_env,
        "samples": args.samples,
        "data_dir": args.data_dir,
        "fresh_after": args.fresh_after,
        "limit": args.limit,
        "train_data": args.train_data,
        "sandbox": args.sandbox,
        "verify_workers": args.workers,
        "max_concurrency": args.max_concurrency,
        "seed": args.seed,
    }
    settings.update({k: v for k, v in given.items() if v is not None})
    return EvalConfig.model_validate(settings)


def run_eval_command(args: argparse.Namespace, *, ledger_of: Callable[[str], Path] | None = None) -> int:
    """Exit status: 0 done, 2 bad input (message on stderr). `ledger_of`: the ledger folder of a
    training build's output folder (each `train_data` entry, from `--train-data` or the config file)."""
    import sys

    from pydantic import ValidationError

    from tracekit.eval.benchmarks import BenchmarkLoadError
    from tracekit.eval.config import EvalConfigFileError
    from tracekit.eval.run import run_eval
    from tracekit.eval.samples_file import SamplesFileError

    try:
        config = config_from_args(args)
        train_ledgers = {out: ledger_of(out) for out in config.train_data} if ledger_of else None
        run_eval(config, train_ledgers=train_ledgers)
    except (
        ValidationError,
        BenchmarkLoadError,
        EvalConfigFileError,
        SamplesFileError,
        FileNotFoundError,
        argparse.ArgumentTypeError,
        ValueError,
    ) as e:
        print(f"tracekit eval: {e}", file=sys.stderr)
        return 2
    return 0
