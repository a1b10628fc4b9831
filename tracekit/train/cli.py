"""Entry points the `tracekit train` command calls.

Example:
    >>> run_train(Path("pipelines/train-tiny-cpu.yaml"), overrides={"max_steps": 5})  # doctest: +SKIP
    PosixPath('out/train-tiny-cpu/final')
    >>> print(plan_train(Path("pipelines/train-r1-distill-7b.yaml"), world_size=8,
    ...                  overrides={"memory_budget_gib": 80}))  # doctest: +SKIP
    memory plan per device: weights 3.8 + grads 3.8 + AdamW 7.6 GiB; ...; expected peak 39.9 GiB of 80.0 GiB
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


def plan_train(config_path: Path, *, world_size: int = 1, overrides: dict[str, Any] | None = None) -> str:
    """The memory plan of a config on `world_size` GPUs (model config read, no weights loaded); raises
    MemoryPlanError (a ValueError naming the setting to change) when it cannot fit."""
    import torch
    from transformers import AutoConfig

    from tracekit.train.memory import plan_for_config
    from tracekit.train.trainer import device_memory

    config = TrainConfig.from_yaml(Path(config_path), overrides=overrides)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    budget, where = device_memory(config=config, device=device)
    plan = plan_for_config(
        config=config,
        model_config=AutoConfig.from_pretrained(config.model),
        world=world_size,
        cuda=True,  # a plan is for GPUs, also when made on a laptop
        budget=budget,
        where=where,
    )
    return f"{plan.summary(budget=budget)} ({world_size} GPU{'s' if world_size > 1 else ''})"
