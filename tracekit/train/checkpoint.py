"""Atomic checkpoints (model, optimizer, scheduler, RNG per rank, data position) and their loading.

A checkpoint is written to `OUTPUT_DIR/.tmp-checkpoint-N/` and renamed to `checkpoint-N/` only when every
rank has finished writing, so a crash never leaves a half-written checkpoint that `--resume` would pick.

Example:
    >>> latest_checkpoint(Path("runs/x"))  # doctest: +SKIP
    PosixPath('runs/x/checkpoint-200')
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import torch

_NAME = re.compile(r"^checkpoint-(\d+)$")


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The finished checkpoint with the highest step, or None."""
    if not output_dir.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in output_dir.iterdir() if (m := _NAME.match(p.name)) and p.is_dir()]
    return max(found)[1] if found else None


def _rng_state() -> dict[str, Any]:
    import numpy as np

    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _model_and_optim_state(module: Any, optimizer: Any, *, sharded: bool) -> tuple[dict, dict]:
    if sharded:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
            get_optimizer_state_dict,
        )

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_model_state_dict(module, options=opts), get_optimizer_state_dict(
            module, optimizer, options=opts
        )
    return module.state_dict(), optimizer.state_dict()


def save_checkpoint(
    *,
    output_dir: Path,
    step: int,
    module: Any,
    optimizer: Any,
    scheduler: Any,
    trainer_state: dict[str, Any],
    rank: int,
    sharded: bool,
    keep: int | None,
) -> Path:
    """Write checkpoint-`step` atomically; every rank must call this. Returns the final path."""
    tmp = output_dir / f".tmp-checkpoint-{step}"
    final = output_dir / f"checkpoint-{step}"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    _barrier()
    model_state, optim_state = _model_and_optim_state(module, optimizer, sharded=sharded)
    torch.save(_rng_state(), tmp / f"rng-{rank}.pt")
    if rank == 0:
        torch.save(model_state, tmp / "model.pt")
        torch.save(optim_state, tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        (tmp / "trainer_state.json").write_text(json.dumps(trainer_state, indent=2, default=str))
    _barrier()
    if rank == 0:
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        if keep is not None:
            done = sorted(
                (int(m.group(1)), p)
                for p in output_dir.iterdir()
                if (m := _NAME.match(p.name)) and p.is_dir()
            )
            for _, old in done[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    _barrier()
    return final


def load_checkpoint(
    *, path: Path, module: Any, optimizer: Any, scheduler: Any, rank: int, sharded: bool
) -> dict[str, Any]:
    """Restore everything `save_checkpoint` wrote; returns the trainer state."""
    model_state = torch.load(path / "model.pt", map_location="cpu", weights_only=False)
    optim_state = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False)
    if sharded:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        opts = StateDictOptions(full_state_dict=True)
        set_model_state_dict(module, model_state, options=opts)
        set_optimizer_state_dict(module, optimizer, optim_state_dict=optim_state, options=opts)
    else:
        module.load_state_dict(model_state)
        optimizer.load_state_dict(optim_state)
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    rng_file = path / f"rng-{rank}.pt"
    if rng_file.exists():
        _set_rng_state(torch.load(rng_file, weights_only=False))
    state: dict[str, Any] = json.loads((path / "trainer_state.json").read_text())
    return state
