"""torchrun with 2 CPU ranks (gloo): DDP and FSDP2 give the single-process run with the same global batch.

The global batch is per_device_batch_size * gradient_accumulation_steps * ranks; here 1 x 2 x 2 across ranks
against 1 x 4 in one process, over 19 rows (4 per step), so the last step of each epoch has 3 units: rank 0
runs two micro-batches and rank 1 one real and one empty one (zero loss, every parameter still in the graph),
so both ranks run the same number of forwards and collectives.
Each rank's loss sum is divided by the trainable tokens of the whole step (all ranks), and the gradient
all-reduce (DDP) / reduce-scatter (FSDP2) averages over ranks, which the `* world` factor undoes: the update
must equal the single-process one up to float summation order. The grad norm (before clipping) is compared
too, since Adam would hide a constant gradient scale error in the weights. Then a torchrun `--resume` from
the step-3 checkpoint (sharded optimizer state gathered and re-sharded under FSDP2) must continue exactly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import make_traces, write_dataset
from safetensors.torch import load_file

from tracekit.train.config import TrainConfig
from tracekit.train.trainer import SFTTrainer

BASE = {
    "max_length": 512,
    "packing": False,
    "max_steps": 6,  # 5 steps per epoch: crosses the uneven last step and an epoch boundary
    "learning_rate": 5e-3,
    "warmup_ratio": 0.0,
    "weight_decay": 0.1,
    "adam_epsilon": 1e-4,  # keeps Adam from amplifying 1e-9 float noise on near-zero gradients
    "per_device_batch_size": 1,
    "seed": 3,
}


def _rows():
    rows = make_traces(19)
    rows[1]["messages"][1]["content"] += " A longer answer so that rows differ in length."
    return rows


def _torchrun(cfg_file: Path, *args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run(
        [*cmd, "-m", "tracekit.cli", "train", str(cfg_file), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    return proc.stdout


def _metrics(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def single_run(tiny_model_dir, tmp_path_factory):
    import torch

    root = tmp_path_factory.mktemp("dist")
    data = write_dataset(root / "dataset", _rows())
    cfg = {**BASE, "model": str(tiny_model_dir), "data": str(data), "gradient_accumulation_steps": 4}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the ranks run with one thread each (torchrun's default)
    try:
        final = SFTTrainer(config=TrainConfig(**cfg, output_dir=root / "single")).train()
    finally:
        torch.set_num_threads(threads)
    return root, data, final


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("mode", ["ddp", "fsdp2"])
def test_two_ranks_equal_one_process(single_run, tiny_model_dir, mode):
    import torch

    root, data, single_final = single_run
    out = root / mode
    cfg_file = root / f"{mode}.yaml"
    cfg = {**BASE, "model": str(tiny_model_dir), "data": str(data), "output_dir": str(out)}
    cfg.update(gradient_accumulation_steps=2, distributed=mode, save_every=3, save_total_limit=None)
    cfg_file.write_text(yaml.safe_dump(cfg))
    stdout = _torchrun(cfg_file)
    assert "ranks 2" in stdout

    single, multi = _metrics(root / "single"), _metrics(out)
    assert [r["step"] for r in multi] == [1, 2, 3, 4, 5, 6]
    assert [r["tokens"] for r in multi] == [r["tokens"] for r in single]  # same data in every step
    for key in ("loss", "grad_norm"):
        assert [r[key] for r in multi] == pytest.approx([r[key] for r in single], rel=1e-5), key
    a, b = load_file(single_final / "model.safetensors"), load_file(out / "final" / "model.safetensors")
    start = load_file(tiny_model_dir / "model.safetensors")
    assert a.keys() == b.keys()
    assert any(not torch.equal(a[k], start[k]) for k in a)  # it trained
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=2e-5, msg=k)  # << one update (lr 5e-3)

    # Crash after step 3 (only checkpoint-3 survives), resume under torchrun: the same weights, bit for bit.
    shutil.rmtree(out / "checkpoint-6")
    shutil.rmtree(out / "final")
    assert "resumed from" in _torchrun(cfg_file, "--resume")
    resumed = load_file(out / "final" / "model.safetensors")
    for k in b:
        assert torch.equal(resumed[k], b[k]), k
    assert [r["loss"] for r in _metrics(out)] == [r["loss"] for r in multi]
