"""`BuildLayout`: every path of a build's output folder, named once.

    out/
      recipe.resolved.yaml    the recipe with every default filled in, plus tool versions
      ledger/*.parquet        every sampled trace, kept or not
      dataset/                data/{split}-*.parquet, plots/*.png, README.md (the card)
      report.html             funnel, lengths, verdicts, mix
      audit/math.parquet      the math verifier audit, when the recipe asks for one
      logs/                   build.log, stages.json, progress/, teacher/, one datatrove folder per stage
      work/                   what a running build keeps between stages (traces, decisions, caches)

Nothing else in tracekit spells these names: the engine hands the paths a stage needs to the stage.

    >>> layout = BuildLayout(Path("out/quickstart"))
    >>> layout.ledger
    PosixPath('out/quickstart/ledger')
    >>> layout.decision("mix")
    PosixPath('out/quickstart/work/decisions/mix.parquet')
    >>> layout.stage_logs("sample-r1")
    PosixPath('out/quickstart/logs/sample-r1')
    >>> layout.card.relative_to(layout.dataset)
    PosixPath('README.md')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tracekit.ledger.shards import DATA_DIR, DATASET_DIR


@dataclass(frozen=True)
class BuildLayout:
    """The paths of one output folder. Creating one touches nothing on disk."""

    out: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))

    # -- what a finished build leaves ------------------------------------------------------------
    @property
    def marker(self) -> Path:
        """The recipe fingerprint that makes the folder refuse another recipe."""
        return self.out / ".tracekit.json"

    @property
    def resolved_recipe(self) -> Path:
        return self.out / "recipe.resolved.yaml"

    @property
    def report(self) -> Path:
        return self.out / "report.html"

    @property
    def ledger(self) -> Path:
        return self.out / "ledger"

    @property
    def dataset(self) -> Path:
        """The Hub dataset folder: pushed as it is, so paths inside it are the repository's paths."""
        return self.out / DATASET_DIR

    @property
    def dataset_data(self) -> Path:
        return self.dataset / DATA_DIR

    @property
    def plots(self) -> Path:
        """Inside `dataset/`, so the card links the plots both locally and on the Hub."""
        return self.dataset / "plots"

    @property
    def card(self) -> Path:
        return self.dataset / "README.md"

    @property
    def math_audit(self) -> Path:
        """The verifier audit's table (its name is the audit module's: stats, report and card read it)."""
        from tracekit.verify.math.audit import AUDIT_FILE

        return self.out / AUDIT_FILE

    # -- locks --------------------------------------------------------------------------------------
    @property
    def build_lock(self) -> Path:
        """Held by the `tracekit build` command for as long as it runs."""
        return self.out / ".build.lock"

    @property
    def workers_lock(self) -> Path:
        """Held (shared) by every task of a local build; a new build waits for stragglers on it."""
        return self.out / ".workers.lock"

    # -- logs ---------------------------------------------------------------------------------------
    @property
    def logs(self) -> Path:
        return self.out / "logs"

    @property
    def build_log(self) -> Path:
        return self.logs / "build.log"

    @property
    def error_file(self) -> Path:
        """The build process's last error, for the command that waits on it."""
        return self.logs / "build_error.txt"

    @property
    def stages_file(self) -> Path:
        """Stage order, tasks and job ids of the build (what `tracekit status` follows)."""
        return self.logs / "stages.json"

    @property
    def progress(self) -> Path:
        """Per-task row counters, read by the live display and `tracekit status`."""
        return self.logs / "progress"

    @property
    def teacher_logs(self) -> Path:
        """Token usage per task and the managed vLLM server's logs."""
        return self.logs / "teacher"

    @property
    def judge_logs(self) -> Path:
        """The logs of a decontamination judge's managed vLLM server."""
        return self.logs / "judge"

    def stage_logs(self, stage: str) -> Path:
        """datatrove's logging folder of one stage (completion markers, task logs, stats)."""
        return self.logs / stage

    # inside a stage's folder, datatrove's own names
    def task_logs(self, stage: str) -> Path:
        return self.stage_logs(stage) / "logs"

    def task_log(self, stage: str, rank: int) -> Path:
        """datatrove's log of one task of a stage."""
        return self.task_logs(stage) / f"task_{rank:05d}.log"

    def completions(self, stage: str) -> Path:
        """One empty file per finished task of a stage, named by its rank."""
        return self.stage_logs(stage) / "completions"

    def task_stats(self, stage: str) -> Path:
        """The per-task stats (JSON) of a stage."""
        return self.stage_logs(stage) / "stats"

    def slurm_logs(self, stage: str) -> Path:
        """Slurm's own output of a stage's job (datatrove's SlurmPipelineExecutor writes it there)."""
        return self.stage_logs(stage) / "slurm_logs"

    def executor_json(self, stage: str) -> Path:
        """The executor's settings of a stage (its number of tasks)."""
        return self.stage_logs(stage) / "executor.json"

    # -- work: what a running build keeps between stages -----------------------------------------
    @property
    def work(self) -> Path:
        return self.out / "work"

    @property
    def traces(self) -> Path:
        """Per-trace stage output that the global stages and finalize read."""
        return self.work / "traces"

    @property
    def sampled(self) -> Path:
        """Raw samples of a live teacher, before the verify stage."""
        return self.work / "sampled"

    @property
    def rewritten(self) -> Path:
        """Traces after the `rewrite` stage, before the verify stage."""
        return self.work / "rewritten"

    @property
    def rewrite_requests(self) -> Path:
        """The rewriting model's cache of answered requests (resume)."""
        return self.work / "rewrite-requests"

    @property
    def judge_requests(self) -> Path:
        """The LLM judge's cache of answered requests (`verify: {llm}`; resume)."""
        return self.work / "judge-requests"

    @property
    def staged(self) -> Path:
        """Final ledger and dataset shards of a recipe with no global stage, before finalize moves them."""
        return self.work / "final"

    @property
    def staged_ledger(self) -> Path:
        return self.staged / "ledger"

    @property
    def staged_data(self) -> Path:
        return self.staged / "data"

    @property
    def selected(self) -> Path:
        """The prompts the select stage kept, for the sample stage."""
        return self.work / "selected"

    def select_requests(self, model: str) -> Path:
        """Request cache of the select stage's `student` (`student-1`, ... for several) or `judge` (resume)."""
        return self.work / "select-requests" / model

    def select_logs(self, model: str) -> Path:
        """Token usage per task of the select stage's `student` (`student-1`, ...) or `judge` (and a managed
        server's log)."""
        return self.logs / f"select-{model}"

    @property
    def requests(self) -> Path:
        """A live teacher's cache of answered requests (resume)."""
        return self.work / "requests"

    @property
    def decisions(self) -> Path:
        return self.work / "decisions"

    def decision(self, stage: str) -> Path:
        """The decision table a global stage (dedup, decontam, mix) writes."""
        return self.decisions / f"{stage}.parquet"

    @property
    def judge_answers(self) -> Path:
        """The decontamination judge's answers (resume: a rerun asks only what is unanswered)."""
        return self.decisions / "decontam-judge.jsonl"

    @property
    def shortfall(self) -> Path:
        """The mix's quota table: bucket, requested, available, selected, short."""
        return self.decisions / "mix.shortfall.json"

    @property
    def resample_log(self) -> Path:
        """The specs of the resample rounds run so far (replayed as recorded on resume)."""
        return self.decisions / "resample.json"

    @property
    def rounds(self) -> Path:
        return self.work / "rounds"

    def round_selected(self, rnd: int) -> Path:
        """The prompts the select stage of resample round `rnd` kept."""
        return self.rounds / f"r{rnd}" / "selected"

    def round_sampled(self, rnd: int) -> Path:
        """Raw samples of a live teacher in resample round `rnd`."""
        return self.rounds / f"r{rnd}" / "sampled"

    def round_rewritten(self, rnd: int) -> Path:
        """Rewritten traces of resample round `rnd`."""
        return self.rounds / f"r{rnd}" / "rewritten"

    @property
    def temporary(self) -> tuple[Path, ...]:
        """Work folders removed when a build finishes (the decisions stay: the card reads them)."""
        return (
            self.traces,
            self.staged,
            self.selected,
            self.work / "select-requests",
            self.sampled,
            self.rewritten,
            self.requests,
            self.rewrite_requests,
            self.judge_requests,
            self.rounds,
        )
