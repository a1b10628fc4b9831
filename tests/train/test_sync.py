"""The step loop never waits for the device: zero host synchronisations per micro-batch and per step, one read
per logging step.

A CPU has no device queue to wait for, so the test counts what would make the host wait on a GPU: every op that
needs a device value on the host (`.item()`, `float(t)`, `.tolist()`, `.numpy()`), that has an output size only
the device knows (`nonzero`, boolean-mask indexing, `masked_select`, `unique`, `repeat_interleave` without an
output size), or an explicit `torch.cuda.synchronize`. On a GPU `torch.cuda.set_sync_debug_mode` would report
the same ops (tests/train/test_gpu.py checks it there).
"""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tracekit.train.config import TrainConfig
from tracekit.train.trainer import SFTTrainer

_DATA_DEPENDENT = {
    "nonzero",
    "masked_select",
    "_unique2",
    "unique_dim",
    "unique_consecutive",
    "equal",
    "is_nonzero",
}


class HostSyncCounter(TorchDispatchMode):
    """Records every op or call that would make the host wait for a GPU."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self._patched: list[tuple[object, str, object]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.__name__.split(".")[0]
        if name == "_local_scalar_dense":
            self.events.append("item")
        elif name in _DATA_DEPENDENT:
            self.events.append(name)
        elif name == "repeat_interleave" and kwargs.get("output_size") is None and len(args) == 1:
            self.events.append("repeat_interleave")
        elif name in ("index", "index_put", "index_put_") and any(
            isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in (args[1] or [])
        ):
            self.events.append(f"{name} with a boolean mask")
        return func(*args, **kwargs)

    def __enter__(self):
        for owner, attr in ((torch.Tensor, "tolist"), (torch.Tensor, "numpy"), (torch.cuda, "synchronize")):
            original = getattr(owner, attr)

            def wrapper(*a, _original=original, _attr=attr, **kw):
                self.events.append(_attr)
                return _original(*a, **kw)

            self._patched.append((owner, attr, original))
            setattr(owner, attr, wrapper)
        return super().__enter__()

    def __exit__(self, *exc):
        for owner, attr, original in self._patched:
            setattr(owner, attr, original)
        self._patched.clear()
        return super().__exit__(*exc)


def test_the_counter_sees_each_kind_of_host_sync():
    t = torch.tensor([1.0, -2.0, 3.0])
    with HostSyncCounter() as c:
        t[t > 0]  # boolean-mask indexing
        float(t.sum())
        t.tolist()
        torch.nonzero(t)
        t.repeat_interleave(torch.tensor([1, 2, 1]))
        t.numpy()
    assert c.events == [
        "index with a boolean mask",
        "item",
        "tolist",
        "nonzero",
        "repeat_interleave",
        "numpy",
    ]
    with (
        HostSyncCounter() as c
    ):  # what the loop does instead: positions known on the host, sums on the device
        acc = torch.zeros(())
        acc += t.index_select(0, torch.tensor([0, 2])).sum()
        t.repeat_interleave(torch.tensor([1, 2, 1]), output_size=4)
    assert c.events == []


@pytest.mark.slow
def test_step_loop_has_no_host_sync_and_one_read_per_logging_step(
    tiny_model_dir, tiny_dataset_dir, tmp_path, monkeypatch
):
    steps, every = 7, 3
    in_steps: list[str] = []
    per_flush: list[list[str]] = []
    step_fn, flush_fn = SFTTrainer._train_step, SFTTrainer._flush

    def counted_step(self, step, batches):
        with HostSyncCounter() as c:
            out = step_fn(self, step, batches)
        in_steps.extend(c.events)
        return out

    def counted_flush(self, pending, elapsed):
        with HostSyncCounter() as c:
            out = flush_fn(self, pending, elapsed)
        per_flush.append(c.events)
        return out

    monkeypatch.setattr(SFTTrainer, "_train_step", counted_step)
    monkeypatch.setattr(SFTTrainer, "_flush", counted_flush)
    cfg = TrainConfig(
        model=str(tiny_model_dir),
        data=str(tiny_dataset_dir),
        output_dir=tmp_path / "o",
        max_length=160,
        per_device_batch_size=2,
        gradient_accumulation_steps=2,  # several micro-batches per step
        max_steps=steps,
        logging_every=every,
        gradient_checkpointing=True,
        warmup_ratio=0.0,
    )
    SFTTrainer(config=cfg).train()
    assert in_steps == []  # every micro-batch's forward/backward, the clip and the optimizer step
    assert per_flush == [["tolist"]] * 3  # steps 3, 6 and the last: one read each
    recs = [json.loads(x) for x in (tmp_path / "o" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == list(range(1, steps + 1))  # every step still gets its record
    assert all(r["loss"] > 0 and r["grad_norm"] > 0 for r in recs)
