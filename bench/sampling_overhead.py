"""Sampling overhead: raw vLLM (its offline `LLM.chat` API) vs `tracekit build` with the same engine.

Both sample the same prompts (R1 template, n samples each, per-request seeds, `ignore_eos` so every
sample has exactly `max_tokens` tokens). Output tokens/s of raw vLLM is measured around `LLM.chat`;
tracekit's around its sampling (managed server start excluded; end-to-end wall time printed too).

    .venv/bin/python bench/sampling_overhead.py                 # tiny random model on the CPU build
    .venv/bin/python bench/sampling_overhead.py --model PATH --prompts 512 --max-tokens 1024 \
        --engine '{"max_model_len": 4096}'                      # a realistic model on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def prompts(n: int) -> list[str]:
    return [f"What is {i} + {3 * i + 1}?" for i in range(n)]


def raw_vllm(model: str, engine: dict, texts: list[str], n: int, max_tokens: int) -> tuple[int, float]:
    from vllm import LLM, SamplingParams

    from tracekit.teachers.config import R1_PROMPT_TEMPLATE

    llm = LLM(model=model, **engine)
    convs = [
        [{"role": "user", "content": R1_PROMPT_TEMPLATE.replace("{prompt}", t)}]
        for t in texts
        for _ in range(n)
    ]
    params = [
        SamplingParams(n=1, temperature=0.6, top_p=0.95, max_tokens=max_tokens, seed=i, ignore_eos=True)
        for i in range(len(convs))
    ]
    llm.chat(convs[:4], params[:4], use_tqdm=False)  # warm-up, as a server's first requests would be
    t0 = time.perf_counter()
    outs = llm.chat(convs, params, use_tqdm=False)
    dt = time.perf_counter() - t0
    tokens = sum(len(o.outputs[0].token_ids) for o in outs)
    del llm
    return tokens, dt


def tracekit_build(
    model: str, engine: dict, env: dict, texts: list[str], n: int, max_tokens: int, work: Path
) -> tuple[int, float, float]:
    data = work / "prompts.jsonl"
    data.write_text("".join(json.dumps({"problem": t}) + "\n" for t in texts))
    recipe = {
        "name": "bench",
        "output": "out",
        "sources": [{"name": "bench", "path": str(data), "columns": {"prompt": "problem"}}],
        "teacher": {
            "kind": "vllm",
            "model": model,
            "engine": engine,
            "env": env,
            "max_concurrency": 256,
            "sampling": {"n": n, "max_tokens": max_tokens, "ignore_eos": True},
        },
        "executor": {"kind": "local", "tasks": 1, "workers": 1},
    }
    (work / "r.yaml").write_text(yaml.safe_dump(recipe))
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "tracekit.cli", "build", str(work / "r.yaml"), "--overwrite"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    usage = json.loads((work / "out" / "logs" / "teacher" / "usage-00000.json").read_text())
    return usage["completion_tokens"], usage["sampling_s"], wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="model folder (default: a tiny random Qwen2 made here)")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    # max_num_batched_tokens covers every prompt at once: vLLM's CPU build dies on seeded requests whose
    # prefill is chunked ("CPU Generator does not use offset"), so no prefill may be split here
    ap.add_argument(
        "--engine",
        default='{"dtype": "float32", "max_model_len": 512, "enforce_eager": true, "max_num_batched_tokens": 16384}',
    )
    args = ap.parse_args()
    engine = json.loads(args.engine)
    env = {"VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")}
    os.environ.update(env)
    work = Path(tempfile.mkdtemp(prefix="tk-bench-"))
    model = args.model
    if model is None:
        from tests.teachers.tiny_model import save_tiny_model

        model = str(save_tiny_model(work / "tiny"))
    texts = prompts(args.prompts)
    raw_tokens, raw_s = raw_vllm(model, engine, texts, args.n, args.max_tokens)
    tk_tokens, tk_s, tk_wall = tracekit_build(model, engine, env, texts, args.n, args.max_tokens, work)
    raw_tps, tk_tps = raw_tokens / raw_s, tk_tokens / tk_s
    print(
        f"\nmodel={Path(model).name} prompts={args.prompts} n={args.n} max_tokens={args.max_tokens} engine={engine}"
    )
    print("| path | output tokens | seconds | output tokens/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    print(f"| raw vLLM `LLM.chat` | {raw_tokens} | {raw_s:.2f} | {raw_tps:.1f} | 1.00 |")
    print(f"| tracekit build (sampling) | {tk_tokens} | {tk_s:.2f} | {tk_tps:.1f} | {tk_tps / raw_tps:.2f} |")
    print(
        f"| tracekit build (end to end, server start + ledger) | {tk_tokens} | {tk_wall:.2f} | {tk_tokens / tk_wall:.1f} | {tk_tokens / tk_wall / raw_tps:.2f} |"
    )


if __name__ == "__main__":
    main()
