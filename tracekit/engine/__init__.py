"""The engine: recipe -> stages of datatrove steps -> the recipe's executor, and the output folder.

    layout.py     BuildLayout: every path of an output folder
    stages.py     Stage and the one stage order (sample, verify, dedup, decontam, mix, finalize)
    plan.py       recipe -> stages (and a resample round -> its stages)
    output.py     fingerprint, refusing another recipe's folder, recipe.resolved.yaml
    run.py        first pass, resample rounds (resample.py), finalize, report/card/push
    executors.py  one runner per executor kind (local, Slurm, Ray); config.py: their recipe models
    slurm.py      tracekit's Slurm job script and the one `squeue` reader
    process.py    the build process `tracekit build` starts; lifeline.py ties its workers to it
    status.py     `tracekit status`; progress.py: live row counters
    preview.py    `tracekit validate`: first prompt, `--estimate`

It calls the stages (sources, teachers, parse, verify, filters, ledger, dedup, decontam, mix, publish);
no stage imports it. Names below are imported on first use, so `tracekit.engine.config` (which the
recipe models import) stays light.
"""

from tracekit._lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__,
    {
        "BuildLayout": "layout",
        "Stage": "stages",
        "BuildPlan": "plan",
        "plan_build": "plan",
        "plan_round": "plan",
        "stage_names": "plan",
        "output_dir": "plan",
        "per_trace_steps": "plan",
        "local_tokenizer": "plan",
        "has_global_stage": "plan",
        "OutputConflict": "output",
        "fingerprint": "output",
        "prepare_output": "output",
        "resolved_recipe": "output",
        "run_plan": "run",
    },
)
