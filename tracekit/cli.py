"""`tracekit` command line: validate, build, stats, verify, train, push."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tracekit import __version__

EXIT_BAD_INPUT = 2


def _err(msg: str) -> None:
    print(f"tracekit: {msg}", file=sys.stderr)


def _load(recipe: str) -> Any:
    from tracekit.checks import check_sources
    from tracekit.recipe import RecipeError, load_recipe

    try:
        loaded = load_recipe(recipe)
    except RecipeError as e:
        _err(f"{recipe} has {len(e.problems)} problem(s):")
        for p in e.problems:
            print("  " + p.format(recipe), file=sys.stderr)
        return None
    problems = check_sources(loaded)
    if problems:
        _err(f"{recipe} has {len(problems)} problem(s):")
        for p in problems:
            print("  " + p.format(recipe), file=sys.stderr)
        return None
    return loaded


def cmd_validate(args: argparse.Namespace) -> int:
    import yaml

    from tracekit.checks import first_prompt
    from tracekit.engine import resolved_recipe

    loaded = _load(args.recipe)
    if loaded is None:
        return EXIT_BAD_INPUT
    print(f"# {args.recipe}: OK\n# resolved recipe (every default filled in)")
    print(yaml.safe_dump(resolved_recipe(loaded), sort_keys=False, allow_unicode=True))
    msgs = first_prompt(loaded)
    print("# first rendered prompt")
    if msgs is None:
        print("(the first source has no readable rows)")
    else:
        for m in msgs:
            print(f"[{m['role']}]\n{m['content']}\n")
    return 0


@contextlib.contextmanager
def _logs_to(path: Path) -> Iterator[None]:
    """Send this process's (and its workers') stderr to a file, so datatrove's logs don't bury the display."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "a") as f:
        os.dup2(f.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def cmd_build(args: argparse.Namespace) -> int:
    from rich.console import Console

    from tracekit.engine import OutputConflict, plan_build, prepare_output, run_plan
    from tracekit.lifeline import OutputLock
    from tracekit.progress import LiveDisplay
    from tracekit.stats.report import final_table

    loaded = _load(args.recipe)
    if loaded is None:
        return EXIT_BAD_INPUT
    try:
        out = prepare_output(loaded, overwrite=args.overwrite)
    except OutputConflict as e:
        _err(str(e))
        return EXIT_BAD_INPUT
    plan = plan_build(loaded, strict=args.strict)
    console = Console(stderr=True)
    console.print(f"[bold]building[/] {loaded.recipe.name} -> {out}")
    t0 = time.monotonic()
    log = out / "logs" / "datatrove.log"
    try:
        with OutputLock(out), LiveDisplay(out / "logs" / "progress", [s.name for s in plan.stages], None), _logs_to(log):
            run_plan(plan)
    except KeyboardInterrupt:
        _err(f"interrupted; run the same command again to resume ({out})")
        return 130
    except Exception as e:
        _err(f"build failed: {type(e).__name__}: {e}\n  details: {log} and {out / 'logs'}/<stage>/logs/")
        return 1
    console.print(final_table(out, seconds=time.monotonic() - t0))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from tracekit.stats.report import print_stats, run_sql

    try:
        if args.sql:
            print(run_sql(args.out, args.sql, fmt=args.format))
        else:
            print_stats(args.out, fmt=args.format)
    except FileNotFoundError as e:
        _err(str(e))
        return EXIT_BAD_INPUT
    except Exception as e:  # DuckDB errors name the problem in the query
        _err(f"{type(e).__name__}: {e}")
        return EXIT_BAD_INPUT
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    if args.kind == "math":
        from tracekit.verify.math.cli import verify_math_file

        summary = verify_math_file(
            input=Path(args.input), output=Path(args.output), gold_field=args.gold_field,
            pred_field=args.pred_field, workers=args.workers,
        )
    else:
        from tracekit.verify.code.cli import verify_code_file

        summary = verify_code_file(input=Path(args.input), output=Path(args.output), workers=args.workers)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from tracekit.train.cli import run_train

    final = run_train(Path(args.config), resume=args.resume)
    print(f"final model: {final}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tracekit", description=__doc__)
    p.add_argument("--version", action="version", version=f"tracekit {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check a recipe; print it resolved and the first prompt")
    v.add_argument("recipe")
    v.set_defaults(func=cmd_validate)

    b = sub.add_parser("build", help="build the dataset a recipe describes (resumes if interrupted)")
    b.add_argument("recipe")
    b.add_argument("--strict", action="store_true", help="stop at the first unreadable row")
    b.add_argument("--overwrite", action="store_true", help="delete an existing output folder first")
    b.set_defaults(func=cmd_build)

    s = sub.add_parser("stats", help="summaries of a build (DuckDB views `traces` and `dataset`)")
    s.add_argument("out")
    s.add_argument("--sql", help="run this query over the views instead")
    s.add_argument("--format", choices=["table", "json", "csv"], default="table")
    s.set_defaults(func=cmd_stats)

    ver = sub.add_parser("verify", help="verify a JSONL file of answers (math) or programs (code)")
    ver.add_argument("kind", choices=["math", "code"])
    ver.add_argument("--input", required=True)
    ver.add_argument("--output", required=True)
    ver.add_argument("--gold-field", default="gold")
    ver.add_argument("--pred-field", default="prediction")
    ver.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    ver.set_defaults(func=cmd_verify)

    t = sub.add_parser("train", help="supervised fine-tuning on a built dataset")
    t.add_argument("config")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    t.set_defaults(func=cmd_train)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
