"""`python -m tracekit.train CONFIG.yaml [--resume] [--set KEY=VALUE ...]`: the trainer as a module, for torchrun.

torchrun starts a script or a module in every rank; this is the module, so a multi-GPU run needs no wrapper:

Example:
    $ torchrun --nproc_per_node 8 -m tracekit.train pipelines/train-r1-distill-7b.yaml --set max_steps=100
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from tracekit.train.cli import run_train


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["max_steps=5", "packing=false"]` -> `{"max_steps": 5, "packing": False}` (values read as YAML)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tracekit.train", description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="train config YAML (see pipelines/train-*.yaml)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    run_train(args.config, resume=args.resume, overrides=parse_overrides(args.overrides))


if __name__ == "__main__":
    main()
