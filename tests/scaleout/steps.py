"""Pipeline steps for the executor tests: they run on Slurm and Ray workers, so they live in an importable
module (the workers get the checkout on PYTHONPATH) and talk to the test only through files."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep


class ScriptedTask(PipelineStep):
    """A task that records each of its runs and does what files in `folder` tell it to.

    - `{stage}-runs-{rank}-*`: one empty file per run of task `rank` (so a test counts attempts);
    - `hold`: while it exists, every task waits (a test looks at a running build);
    - `{stage}-fail-{rank}`: holds how many more runs of that task fail (-1: all of them);
    - `{stage}-out-{rank}`: written when the task succeeds.
    """

    type = "🧪 - TEST"
    name = "scripted"

    def __init__(self, *, folder: str, stage: str) -> None:
        super().__init__()
        self.folder = folder
        self.stage = stage

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        folder = Path(self.folder)
        (folder / f"{self.stage}-runs-{rank}-{uuid.uuid4().hex}").touch()
        while (folder / "hold").exists():
            time.sleep(0.2)
        fail = folder / f"{self.stage}-fail-{rank}"
        if fail.exists():
            left = int(fail.read_text().strip() or "0")
            if left != 0:
                fail.write_text(str(left - 1) if left > 0 else "-1")
                raise RuntimeError(f"injected failure of {self.stage} task {rank}")
        (folder / f"{self.stage}-out-{rank}").write_text("ok")
        return
        yield


def runs(folder: Path, stage: str, rank: int) -> int:
    """How many times task `rank` of `stage` has started."""
    return len(list(folder.glob(f"{stage}-runs-{rank}-*")))
