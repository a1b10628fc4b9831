"""A tiny teacher made confident on a small task by `tracekit train`, a random student with the same tokenizer,
and the prompt files and configs `tracekit distill` runs on. Everything is built here from configs.

The task: "a+b?" answered as `<think>\\na+b=c\\n</think>\\n\\n\\boxed{c}` (~15 tokens). Models are Qwen2 with two
heads of 64 (vLLM's CPU kernels need head_dim >= 64) and the teachers' tiny tokenizer (tests/teachers).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from tests.teachers.tiny_model import save_tiny_model

# one small engine per model on a shared 2-core machine: no compilation, 1 GiB of KV cache, and a batch budget
# above every prompt (vLLM CPU dies on seeded requests whose prefill is split)
ENGINE = {"dtype": "float32", "max_model_len": 256, "enforce_eager": True, "max_num_seqs": 64,
          "max_num_batched_tokens": 4096}  # fmt: skip
ENGINE_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1"}


def task_rows(pairs: list[tuple[int, int]]) -> list[dict[str, Any]]:
    rows = []
    for a, b in pairs:
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"{a}+{b}?"},
                    {
                        "role": "assistant",
                        "content": f"<think>\n{a}+{b}={a + b}\n</think>\n\n\\boxed{{{a + b}}}",
                    },
                ],
                "answer": str(a + b),
            }
        )
    return rows


TRAIN_PAIRS = [(a, b) for a in range(2, 9) for b in range(3, 9, 2)]  # 21 prompts
HELD_OUT_PAIRS = [(9, 4), (10, 6), (11, 8), (12, 3)]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _sft(root: Path, *, base: Path, name: str, steps: int, lr: float) -> Path:
    import torch

    from tracekit.train.config import TrainConfig
    from tracekit.train.trainer import SFTTrainer

    data = write_jsonl(root / f"{name}-sft.jsonl", task_rows(TRAIN_PAIRS + HELD_OUT_PAIRS))
    cfg = TrainConfig(
        model=str(base), data=str(data), output_dir=root / name, max_length=1024, per_device_batch_size=1,
        max_steps=steps, learning_rate=lr, warmup_ratio=0.05, min_lr_ratio=0.1, seed=0, logging_every=20,
    )  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return SFTTrainer(config=cfg).train()
    finally:
        torch.set_num_threads(threads)


def make_teacher(root: Path) -> Path:
    """A random tiny model fine-tuned by tracekit's SFT trainer until it is sure of the task's format."""
    return _sft(root, base=save_tiny_model(root / "teacher-init", seed=1), name="teacher", steps=60, lr=5e-3)


def make_student(root: Path) -> Path:
    """Another random init (same tokenizer) with only a glimpse of the task: a few SFT steps, far from the teacher.

    On-policy distillation starts from an SFT student (docs/distill.md); a student from random weights samples
    the teacher's tokens so rarely that learning from its own samples takes far more steps than a CPU test has.
    """
    return _sft(root, base=save_tiny_model(root / "student-init", seed=2), name="student", steps=20, lr=5e-3)


def distill_config(
    root: Path, *, student: Path, teacher: str | dict[str, Any], out: Path, **extra: Any
) -> Path:
    prompts = write_jsonl(root / "prompts.jsonl", task_rows(TRAIN_PAIRS + HELD_OUT_PAIRS))
    cfg: dict[str, Any] = {
        "student": str(student),
        "teacher": teacher,
        "data": str(prompts),
        "held_out": 4,
        "output_dir": str(out),
        "max_steps": 12,
        "rollout": {"prompts": 8, "n": 4, "max_tokens": 24, "temperature": 1.0},
        "learning_rate": 3e-3,
        "max_length": 512,
        "seed": 0,
        "engine": ENGINE,
        "engine_env": ENGINE_ENV,
        **extra,
    }
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def cli_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
