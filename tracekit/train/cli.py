"""Entry point the `tracekit train` command calls.

Example:
    >>> run_train(Path("pipelines/train-tiny-cpu.yaml"), overrides={"max_steps": 5})  # doctest: +SKIP
    PosixPath('out/train-tiny-cpu/final')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracekit.train.config import TrainConfig


def run_train(config_path: Path, *, resume: bool = False, overrides: dict[str, Any] | None = None) -> Path:
    """Train with the YAML config at `config_path` (keys overridden by `overrides`); returns OUTPUT_DIR/final.

    Under `torchrun` every rank calls this; ranks come from the environment torchrun sets.
    """
    import torch.distributed as dist

    from tracekit.train.trainer import SFTTrainer

    config = TrainConfig.from_yaml(Path(config_path), overrides=overrides)
    try:
        return SFTTrainer(config=config).train(resume=resume)
    finally:
        # the command owns the process group: a gloo group left to interpreter exit once aborted a
        # rank after export ("terminate called without an active exception")
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
