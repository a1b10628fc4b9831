"""Entry point the `tracekit distill` command calls.

Example:
    >>> run_distill(Path("pipelines/distill-tiny-cpu.yaml"), overrides={"max_steps": 5})  # doctest: +SKIP
    PosixPath('out/distill-tiny-cpu/final')
    >>> nested_override("rollout.n", 8)
    {'rollout': {'n': 8}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracekit.distill.config import DistillConfig


def nested_override(key: str, value: Any) -> dict[str, Any]:
    """`a.b=v` as `{a: {b: v}}` (what `--set` builds)."""
    out: dict[str, Any] = {}
    node = out
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return out


def run_distill(config_path: Path, *, resume: bool = False, overrides: dict[str, Any] | None = None) -> Path:
    """Distill with the YAML config at `config_path`; returns OUTPUT_DIR/final."""
    config = DistillConfig.from_yaml(Path(config_path), overrides=overrides)
    from tracekit.distill.trainer import DistillTrainer

    return DistillTrainer(config=config).train(resume=resume)
