"""Running a plan: the first pass, the resample rounds, finalize, then the report, card and push.

    first pass   sample (verify) dedup decontam mix       one batch on the recipe's executor
    rounds       sample-rN ... mix-rN                     while a bucket is short (`fill: resample`)
    finalize     ledger/ and dataset/                     one batch
    finish       report.html, plots, card; push if `publish:` asks

Without resampling every stage goes in one batch, so Slurm chains them all at submission (and
`--no-wait` can return at once). A task that finished is never re-run (datatrove's completion
markers); an interrupted task is re-run whole and first removes what its earlier attempt wrote, so
`kill -9` at any moment followed by the same command gives exactly the rows of an uninterrupted run.
"""

from __future__ import annotations

import shutil

from tracekit.engine.executors import open_runner
from tracekit.engine.finish import finish_build
from tracekit.engine.plan import BuildPlan
from tracekit.engine.resample import fill_short_buckets, wants_resample
from tracekit.ledger.shards import TMP_PREFIX


class NoWaitWithResample(ValueError):
    """`--no-wait` asked of a recipe whose build must see each round's mix before planning the next."""


def run_plan(plan: BuildPlan, *, wait: bool = True) -> bool:
    """Run every stage in order (finished tasks are skipped), then drop the work folder.

    On Slurm with `wait=False` the stages are only submitted: returns False and leaves the work folder.
    """
    layout = plan.layout
    resample = wants_resample(plan.loaded)
    if resample and not wait:
        raise NoWaitWithResample(
            "mix `fill: resample` plans each round from the mix before it, so the build has to wait for "
            "its jobs; run it without --no-wait (in tmux, or as a job of its own)"
        )
    first, last = (plan.stages[:-1], plan.stages[-1:]) if resample else (plan.stages, [])
    with open_runner(plan.loaded.recipe.executor, layout) as runner:
        # the runner has made sure no task of an earlier attempt is still writing
        for f in layout.work.rglob(f"{TMP_PREFIX}*") if layout.work.exists() else []:
            f.unlink()
        if not runner.run(first, wait=wait):
            return False  # Slurm, submitted only
        fill_short_buckets(plan, runner)
        runner.run(last)
    for done in layout.temporary:
        shutil.rmtree(done, ignore_errors=True)
    math = plan.loaded.recipe.verify.math
    if math is not None and math.audit.sample > 0:  # a second opinion on a sample of verdicts
        from tracekit.verify.math.audit import audit_build

        audit_build(ledger=layout.ledger, out_file=layout.math_audit, config=math)
    finish_build(layout, publish=plan.loaded.recipe.publish)  # report + plots, card, push if asked
    return True
