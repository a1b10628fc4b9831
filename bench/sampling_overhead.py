"""Sampling overhead: raw vLLM (its offline `LLM.chat` API) vs `tracekit build` with the same engine.

All sample the same prompts (R1 template, n samples each, per-request seeds, `ignore_eos` so every
sample has exactly `max_tokens` tokens): raw vLLM, then `tracekit build` with `teacher: {kind: vllm,
mode: offline}` (engine in the task, add_request/step loop) and with `mode: server` (managed OpenAI
server, HTTP). Sampling-only output tokens/s: raw vLLM around `LLM.chat`, tracekit around its
sampling (engine/server start and stop excluded, from the usage file). End to end: raw vLLM's
`LLM(...)` load + `chat`, tracekit's whole `build` command (start, sampling, parse, ledger, report).

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


def raw_vllm(model: str, engine: dict, texts: list[str], n: int, max_tokens: int) -> tuple[int, float, float]:
    from vllm import LLM, SamplingParams

    from tracekit.teachers.config import R1_PROMPT_TEMPLATE

    t_load = time.perf_counter()
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
    wall = time.perf_counter() - t_load
    tokens = sum(len(o.outputs[0].token_ids) for o in outs)
    llm.llm_engine.engine_core.shutdown()
    del llm
    return tokens, dt, wall


def tracekit_build(
    model: str, engine: dict, env: dict, texts: list[str], n: int, max_tokens: int, work: Path, mode: str
) -> tuple[int, float, float]:
    work = work / mode
    work.mkdir(parents=True, exist_ok=True)
    data = work / "prompts.jsonl"
    data.write_text("".join(json.dumps({"problem": t}) + "\n" for t in texts))
    recipe = {
        "name": "bench",
        "output": "out",
        "sources": [{"name": "bench", "path": str(data), "columns": {"prompt": "problem"}}],
        "teacher": {
            "kind": "vllm",
            "mode": mode,
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
    ap.add_argument("--modes", default="offline,server", help="tracekit teacher modes to run, in order")
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
    rows = [("raw vLLM `LLM.chat`", *raw_vllm(model, engine, texts, args.n, args.max_tokens))]
    for mode in args.modes.split(","):
        rows.append(
            (
                f"tracekit build, mode: {mode}",
                *tracekit_build(model, engine, env, texts, args.n, args.max_tokens, work, mode),
            )
        )
    print(
        f"\nmodel={Path(model).name} prompts={args.prompts} n={args.n} max_tokens={args.max_tokens} engine={engine}"
    )
    print("| path | output tokens | sampling s | tokens/s | ratio | end-to-end s | tokens/s | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    raw_tps, raw_e2e = rows[0][1] / rows[0][2], rows[0][1] / rows[0][3]
    for name, tokens, secs, wall in rows:
        tps, e2e = tokens / secs, tokens / wall
        print(
            f"| {name} | {tokens} | {secs:.2f} | {tps:.1f} | {tps / raw_tps:.2f} "
            f"| {wall:.2f} | {e2e:.1f} | {e2e / raw_e2e:.2f} |"
        )


if __name__ == "__main__":
    main()
