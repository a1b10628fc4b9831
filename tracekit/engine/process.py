"""The build process. `tracekit build` starts it in its own process group and waits for it.

Why a separate process: datatrove's local executor starts a manager, a fork server and pool workers.
If the `tracekit build` command is killed (even with SIGKILL), all of them must stop before a
resumed build writes the same shards. This process leads its own process group and watches the
command that started it; when that command is gone it kills the whole group at once.

Usage (internal): python -m tracekit.engine.process RECIPE [--strict] [--no-wait]
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from tracekit.engine.layout import BuildLayout
from tracekit.engine.lifeline import MAIN_PID_ENV
from tracekit.teachers.process_reaper import die_with_parent


def command(recipe: Path, *, strict: bool, no_wait: bool) -> list[str]:
    """The command line that runs the build of `recipe` in this Python."""
    return [sys.executable, "-m", "tracekit.engine.process", str(recipe)] + ["--strict"] * strict + ["--no-wait"] * no_wait


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os.killpg(0, signal.SIGKILL)
        time.sleep(0.1)


def _die_with_runner(_key: object) -> None:
    """In every process multiprocess forks from this one (datatrove's Manager): SIGKILL it when this
    process dies, even by SIGKILL (a Manager otherwise outlives a killed build, idle, forever)."""
    die_with_parent(signal.SIGKILL)


def main(argv: list[str]) -> int:
    recipe, strict = argv[0], "--strict" in argv
    parent = os.getppid()
    os.environ[MAIN_PID_ENV] = str(parent)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    import multiprocess.util

    multiprocess.util.register_after_fork(_die_with_runner, _die_with_runner)  # keyed by a weakref

    from tracekit.engine.plan import layout_of, plan_build
    from tracekit.engine.run import run_plan
    from tracekit.recipe import load_recipe

    loaded = load_recipe(recipe)
    layout = layout_of(loaded)
    layout.error_file.unlink(missing_ok=True)
    try:
        run_plan(plan_build(loaded, strict=strict), wait="--no-wait" not in argv)  # no-wait: Slurm submits only
    except Exception as e:
        layout.error_file.parent.mkdir(parents=True, exist_ok=True)
        layout.error_file.write_text(f"{type(e).__name__}: {e}\n")
        traceback.print_exc()
        return 1
    return 0


def read_error(layout: BuildLayout) -> str | None:
    f = layout.error_file
    return f.read_text().strip() if f.exists() else None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
