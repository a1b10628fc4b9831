"""`EvalLayout`: every path of an evaluation's output folder, named once.

    out/
      ledger/*.parquet   every sample, scored (the build ledger's columns)
      logs/              managed vLLM server logs
      results.json       pass@k per model and benchmark, with intervals and the run's settings
      results.md         the same as tables

Without `--output`, an evaluation writes to `out/eval/<id>`, the id a hash of what decides its results
(models, benchmarks, sampling), so running the same evaluation again reuses its folder.

    >>> EvalLayout(Path("out/eval/x")).results_json
    PosixPath('out/eval/x/results.json')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path("out") / "eval"


@dataclass(frozen=True)
class EvalLayout:
    out: Path

    @property
    def ledger(self) -> Path:
        return self.out / "ledger"

    @property
    def logs(self) -> Path:
        return self.out / "logs"

    @property
    def results_json(self) -> Path:
        return self.out / "results.json"

    @property
    def results_md(self) -> Path:
        return self.out / "results.md"


def default_output(run_id: str) -> Path:
    """Where an evaluation run without `--output` writes (relative to the current folder)."""
    return DEFAULT_ROOT / run_id
