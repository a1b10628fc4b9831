"""One tiny vLLM OpenAI server (vLLM's CPU build, a random model made here) for the whole session."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from tests.teachers.tiny_model import save_tiny_model
from tracekit.engine.layout import BuildLayout

ROOT = Path(__file__).resolve().parents[2]
TRACEKIT = [sys.executable, "-m", "tracekit.cli"]
SERVED = "tiny"
# small and quick on a shared 2-core machine: no compilation, 1 GiB of KV cache
# max_num_batched_tokens: no chunked prefills (vLLM CPU dies on seeded requests whose prefill is split)
ENGINE = {
    "dtype": "float32",
    "max_model_len": 512,
    "enforce_eager": True,
    "max_num_seqs": 16,
    "max_num_batched_tokens": 8192,
}
ENGINE_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1"}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-teacher"))


@pytest.fixture(scope="session")
def vllm_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (…/v1) of a vLLM server with the deepseek_r1 reasoning parser, serving `tiny`.

    TRACEKIT_TEST_VLLM_URL points the tests at a server that already runs these settings (development).
    """
    import os

    from tracekit.teachers.vllm_server import ManagedVllmServer

    if os.environ.get("TRACEKIT_TEST_VLLM_URL"):
        yield os.environ["TRACEKIT_TEST_VLLM_URL"]
        return

    engine = {**ENGINE, "served_model_name": SERVED, "reasoning_parser": "deepseek_r1"}
    log = tmp_path_factory.mktemp("vllm-log") / "server.log"
    with ManagedVllmServer(
        model=str(tiny_model), engine=engine, env=ENGINE_ENV, log_path=log, startup_timeout_s=900
    ) as url:
        yield url


def prompts_file(path: Path, n: int, *, dup: bool = True) -> Path:
    """n math prompts; with `dup`, the last row repeats the first prompt (same prompt, another row)."""
    rows = [{"problem": f"What is {i} + {2 * i}?", "answer": str(3 * i)} for i in range(n)]
    if dup and n > 1:
        rows[-1] = dict(rows[0])
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_recipe(
    folder: Path,
    teacher: dict[str, Any],
    *,
    n_prompts: int = 4,
    extra_sources: list[dict[str, Any]] | None = None,
    name: str = "live",
    tasks: int = 1,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    prompts_file(folder / "math.jsonl", n_prompts)
    recipe = {
        "name": name,
        "output": "out",
        "sources": [
            {
                "name": "math",
                "domain": "math",
                "path": "math.jsonl",
                "columns": {"prompt": "problem", "answer": "answer"},
            },
            *(extra_sources or []),
        ],
        "teacher": teacher,
        "executor": {"kind": "local", "tasks": tasks, "workers": 1},
    }
    p = folder / "recipe.yaml"
    p.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return p


def build(
    recipe: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [*TRACEKIT, "build", str(recipe), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def ledger_rows(out: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in sorted(BuildLayout(out).ledger.glob("*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return rows


def usage(out: Path) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for f in sorted(BuildLayout(out).teacher_logs.glob("usage-*.json")):
        for k, v in json.loads(f.read_text()).items():
            total[k] = total.get(k, 0) + v
    return total
