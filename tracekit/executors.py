"""Which datatrove executor runs a stage (`executor:` in a recipe)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracekit.engine import Stage
    from tracekit.executor_config import LocalExecutorConfig


def make_executor(config: LocalExecutorConfig, stage: Stage, *, logging_dir: Path, depends: Any = None) -> Any:
    from datatrove.executor import LocalPipelineExecutor

    return LocalPipelineExecutor(
        pipeline=stage.pipeline,
        tasks=stage.tasks,
        workers=stage.workers,
        logging_dir=str(logging_dir),
        depends=depends,
    )
