"""`tracekit` command line: validate, build, stats, verify, train, distill, push."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from tracekit import __version__

EXIT_BAD_INPUT = 2


def _err(msg: str) -> None:
    print(f"tracekit: {msg}", file=sys.stderr)


def _load(recipe: str) -> Any:
    from tracekit.recipe import RecipeError, load_recipe
    from tracekit.recipe.checks import (
        check_benchmarks,
        check_select,
        check_sources,
        check_verifier_domains,
        check_votes,
    )

    try:
        loaded = load_recipe(recipe)
    except RecipeError as e:
        _err(f"{recipe} has {len(e.problems)} problem(s):")
        for p in e.problems:
            print("  " + p.format(recipe), file=sys.stderr)
        return None
    problems = [
        *check_sources(loaded),
        *check_votes(loaded),
        *check_benchmarks(loaded),
        *check_verifier_domains(loaded),
        *check_select(loaded),
    ]
    if problems:
        _err(f"{recipe} has {len(problems)} problem(s):")
        for p in problems:
            print("  " + p.format(recipe), file=sys.stderr)
        return None
    return loaded


def cmd_validate(args: argparse.Namespace) -> int:
    import yaml

    from tracekit.engine.output import resolved_recipe
    from tracekit.engine.preview import first_prompt
    from tracekit.recipe.checks import check_hub_sources

    loaded = _load(args.recipe)
    if loaded is None:
        return EXIT_BAD_INPUT
    print(f"# {args.recipe}: OK\n# resolved recipe (every default filled in)")
    print(yaml.safe_dump(resolved_recipe(loaded), sort_keys=False, allow_unicode=True))
    unchecked = check_hub_sources(loaded)
    if unchecked:  # the recipe is well formed, but what it reads could not all be looked at
        _err(f"{args.recipe}: {len(unchecked)} source problem(s):")
        for p in unchecked:
            print("  " + p.format(args.recipe), file=sys.stderr)
        return EXIT_BAD_INPUT
    src = loaded.recipe.sources[0]
    try:
        msgs = first_prompt(loaded)
    except Exception as e:  # a source that reads its metadata but not its rows: the preview says so
        where = f"hub {src.hub!r}" if src.hub else f"path {src.path!r}"
        _err(
            f"{args.recipe}: sources[0] ({src.name}, {where}) could not be read to render the first prompt: "
            f"{type(e).__name__}: {e}"
        )
        return EXIT_BAD_INPUT
    print("# first rendered prompt")
    if msgs is None:
        print("(the first source has no readable rows)")
    else:
        for m in msgs:
            print(f"[{m['role']}]\n{m['content']}\n")
    if args.estimate:
        from tracekit.engine.preview import estimate_recipe

        try:
            print(estimate_recipe(loaded, n=args.estimate).format())
        except ValueError as e:
            _err(str(e))
            return EXIT_BAD_INPUT
    return 0


def _wait(proc: Any) -> int:
    """Wait for a child in short sleeps: a blocking waitpid would not see a Ctrl-C that the kernel hands
    to one of this process's other threads (e.g. a teacher's event loop), so it would come too late."""
    import subprocess

    while True:
        try:
            return int(proc.wait(timeout=0.2))
        except subprocess.TimeoutExpired:
            continue


def _stop_group(proc: Any, *, grace_s: float) -> None:
    """Ctrl-C: let the build's process group stop cleanly (servers shut down), then make sure it is gone."""
    import signal
    import subprocess

    # SIGTERM, not SIGINT: a worker may be inside code that catches KeyboardInterrupt and carries on
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:  # a second Ctrl-C: stop now
            continue
    proc.wait()


def _expected_prompts(loaded: Any) -> int | None:
    from tracekit.sources.base import estimate_rows

    total = 0
    for src in loaded.recipe.sources:
        n = estimate_rows(src, loaded.base_dir)
        if n is None:
            return None
        total += n
    return total


def cmd_build(args: argparse.Namespace) -> int:
    import subprocess

    from rich.console import Console

    from tracekit.engine import process
    from tracekit.engine.lifeline import OutputLock
    from tracekit.engine.output import OutputConflict, prepare_output
    from tracekit.engine.plan import layout_of, stage_names
    from tracekit.engine.progress import LiveDisplay
    from tracekit.engine.resample import wants_resample
    from tracekit.stats.report import final_table

    loaded = _load(args.recipe)
    if loaded is None:
        return EXIT_BAD_INPUT
    if args.no_wait and wants_resample(loaded):
        _err(
            f"{args.recipe}: --no-wait cannot be used with mix `fill: resample`: each resample round is "
            "planned from the mix before it, so the build waits for its jobs (run it in tmux or as a job)"
        )
        return EXIT_BAD_INPUT
    try:
        out = prepare_output(loaded, overwrite=args.overwrite)
    except OutputConflict as e:
        _err(str(e))
        return EXIT_BAD_INPUT
    layout = layout_of(loaded)
    stages = stage_names(loaded)
    console = Console(stderr=True)
    console.print(f"[bold]building[/] {loaded.recipe.name} -> {out.resolve()}")
    t0 = time.monotonic()
    log = layout.build_log
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = process.command(loaded.file, strict=args.strict, no_wait=args.no_wait)
    expected = _expected_prompts(loaded)
    with OutputLock(layout.build_lock), open(log, "a") as logf, LiveDisplay(layout.progress, stages, expected):
        # the build runs in its own process group (see tracekit/engine/process.py); its logs go to build.log
        proc = subprocess.Popen(cmd, stdout=logf, stderr=logf, start_new_session=True)
        try:
            rc = _wait(proc)
        except KeyboardInterrupt:
            _stop_group(proc, grace_s=30)
            _err(f"interrupted; run the same command again to resume ({out})")
            return 130
    if rc != 0:
        msg = process.read_error(layout) or f"the build process exited with status {rc}"
        _err(f"build failed: {msg}\n  details: {log} and {layout.task_logs('<stage>')}/")
        return 1
    if args.no_wait and loaded.recipe.executor.kind == "slurm":
        console.print(f"submitted to Slurm; follow it with `tracekit status {out}`")
        return 0
    from tracekit.engine.finish import open_build
    from tracekit.engine.status import bad_rows, skipped_rows
    from tracekit.ledger.shards import list_shards

    if not list_shards(layout.ledger):  # nothing was read: say why instead of describing an empty build
        why = skipped_rows(layout)
        _err(
            "the build read no row from its sources"
            + (":\n" + "\n".join(f"  {w}" for w in why) if why else " (every source is empty)")
            + f"\n  details: {layout.task_logs('sample')}"
        )
        return EXIT_BAD_INPUT
    summary = final_table(
        open_build(layout), name=out.name, seconds=time.monotonic() - t0, bad_rows=bad_rows(layout)
    )
    console.print(summary)
    from tracekit.mix.stage import read_shortfall, shortfall_table

    if (quotas := shortfall_table(read_shortfall(layout.shortfall))) is not None:
        console.print(quotas)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from tracekit.engine.status import print_status

    return print_status(Path(args.out))


def cmd_stats(args: argparse.Namespace) -> int:
    from tracekit.engine.finish import open_build
    from tracekit.engine.layout import BuildLayout
    from tracekit.stats.report import print_stats, run_sql
    from tracekit.verify.math.audit import audit_tables

    try:
        con = open_build(BuildLayout(Path(args.out)))
        if args.sql:
            print(run_sql(con, args.sql, fmt=args.format))
        else:
            print_stats(con, fmt=args.format, extra=audit_tables(Path(args.out)))
    except FileNotFoundError as e:
        _err(str(e))
        return EXIT_BAD_INPUT
    except Exception as e:  # DuckDB errors name the problem in the query
        _err(f"{type(e).__name__}: {e}")
        return EXIT_BAD_INPUT
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    if args.audit and args.kind != "math":
        _err("--audit applies to `tracekit verify math` only")
        return EXIT_BAD_INPUT
    if args.audit < 0:
        _err(f"--audit takes a number of rows >= 0, got {args.audit}")
        return EXIT_BAD_INPUT
    from tracekit.sources.formats import RowsFileError

    try:
        if args.kind == "math":
            from tracekit.verify.math.cli import verify_math_file

            summary = verify_math_file(
                input=Path(args.input), output=Path(args.output), gold_field=args.gold_field,
                pred_field=args.pred_field, workers=args.workers, audit=args.audit,
            )
        else:
            from tracekit.verify.code.cli import verify_code_file

            summary = verify_code_file(input=Path(args.input), output=Path(args.output), workers=args.workers)
    except RowsFileError as e:  # names the file and line; nothing was written
        _err(str(e))
        return EXIT_BAD_INPUT
    print(json.dumps(summary, indent=2))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import yaml

    from tracekit.train.cli import run_train

    overrides = {}
    for item in args.set or []:
        key, eq, value = item.partition("=")
        if not eq:
            _err(f"--set takes KEY=VALUE, got {item!r}")
            return EXIT_BAD_INPUT
        overrides[key] = yaml.safe_load(value)
    try:
        if args.plan:
            from tracekit.train.cli import plan_train

            print(plan_train(Path(args.config), world_size=args.world_size, overrides=overrides or None))
            return 0
        final = run_train(Path(args.config), resume=args.resume, overrides=overrides or None)
    except (FileNotFoundError, ValueError) as e:  # config problems (and unfit memory plans) name the key
        _err(str(e))
        return EXIT_BAD_INPUT
    print(f"final model: {final}")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    import yaml

    from tracekit.distill.cli import nested_override, run_distill
    from tracekit.distill.config import merge_settings

    overrides: dict[str, Any] = {}
    for item in args.set or []:
        key, eq, value = item.partition("=")
        if not eq:
            _err(f"--set takes KEY=VALUE, got {item!r}")
            return EXIT_BAD_INPUT
        overrides = merge_settings(overrides, nested_override(key, yaml.safe_load(value)))
    try:
        final = run_distill(Path(args.config), resume=args.resume, overrides=overrides or None)
    except (FileNotFoundError, ValueError) as e:  # config problems and tokenizer mismatches name the key / models
        _err(str(e))
        return EXIT_BAD_INPUT
    print(f"final model: {final}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from tracekit.engine.finish import build_files
    from tracekit.engine.layout import BuildLayout
    from tracekit.publish.hub import describe, push_dataset

    try:
        files = build_files(BuildLayout(Path(args.out)))
        if args.dry_run:
            print(f"# would upload to {args.repo_id} (dataset){' @ ' + args.revision if args.revision else ''}:")
            print(describe(files), end="")
            return 0
        sent = push_dataset(files, args.repo_id, private=args.private, revision=args.revision)
    except FileNotFoundError as e:
        _err(str(e))
        return EXIT_BAD_INPUT
    except Exception as e:  # network / Hub errors: a re-run resumes (files already there are skipped)
        _err(f"push failed: {type(e).__name__}: {e}\n  run the same command again to resume")
        return 1
    print(f"pushed {len(sent)} file(s) to {args.repo_id} (files already on the Hub skipped)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from tracekit.engine.layout import BuildLayout
    from tracekit.eval.cli import run_eval_command

    return run_eval_command(args, ledger_of=lambda out: BuildLayout(Path(out)).ledger)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tracekit", description=__doc__)
    p.add_argument("--version", action="version", version=f"tracekit {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check a recipe; print it resolved and the first prompt")
    v.add_argument("recipe")
    v.add_argument(
        "--estimate", type=int, metavar="N", help="sample N prompts and project tokens, GPU-hours or cost, wall time"
    )
    v.set_defaults(func=cmd_validate)

    b = sub.add_parser("build", help="build the dataset a recipe describes (resumes if interrupted)")
    b.add_argument("recipe")
    b.add_argument("--strict", action="store_true", help="stop at the first unreadable row")
    b.add_argument("--overwrite", action="store_true", help="delete an existing output folder first")
    b.add_argument("--no-wait", action="store_true", help="Slurm: submit the stages and return at once")
    b.set_defaults(func=cmd_build)

    st = sub.add_parser("status", help="per-stage progress of a running, finished or failed build")
    st.add_argument("out")
    st.set_defaults(func=cmd_status)

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
    ver.add_argument(
        "--audit", type=int, default=0, metavar="N",
        help="math: re-check N accepted and N rejected rows per source with a second opinion",
    )
    ver.set_defaults(func=cmd_verify)

    t = sub.add_parser("train", help="supervised fine-tuning on a built dataset")
    t.add_argument("config")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    t.add_argument("--plan", action="store_true", help="print the memory plan per GPU and exit (2: does not fit)")
    t.add_argument("--world-size", type=int, default=1, help="GPUs the --plan is for (default 1)")
    t.set_defaults(func=cmd_train)

    dis = sub.add_parser("distill", help="on-policy distillation: the student learns from the teacher on its own samples")
    dis.add_argument("config")
    dis.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    dis.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. rollout.n=8")
    dis.set_defaults(func=cmd_distill)

    pu = sub.add_parser("push", help="upload a build's dataset, card, plots and recipe to the Hub (resumable)")
    pu.add_argument("out", help="output folder of a finished build")
    pu.add_argument("repo_id", help="Hub dataset id, e.g. my-org/r1-800k")
    pu.add_argument("--private", action="store_true", help="create the repository private")
    pu.add_argument("--revision", help="branch to push to (created if missing)")
    pu.add_argument("--dry-run", action="store_true", help="list what would be uploaded; send nothing")
    pu.set_defaults(func=cmd_push)

    from tracekit.eval.cli import add_eval_arguments

    ev = sub.add_parser("eval", help="pass@k of models on benchmark problems, scored by tracekit's verifiers")
    add_eval_arguments(ev)
    ev.set_defaults(func=cmd_eval)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
