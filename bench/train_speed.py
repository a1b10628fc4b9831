"""tracekit's SFT trainer vs TRL's SFTTrainer: same model, same data, packing on in both, in one run.

CPU mode (default): a 12M Qwen2 model, tokens/s of each trainer and the ratio.
    .venv/bin/python bench/train_speed.py [--steps 8] [--hidden 256] [--layers 4] [--vocab 32000]

GPU mode: the table of issue 17 (docs/performance.md says how to run it on a GPU machine that has torch and
transformers but not TRL, datasets or pydantic, from carried wheels). Random-weight Qwen2.5 shapes built from
config (vocab 151,936), synthetic R1-style traces (the generator below), bf16 autocast over fp32 weights,
gradient checkpointing in both, TRL with SDPA, tracekit with SDPA per document, plus tracekit with its best
available attention (and optional variants). Each measurement runs in its own process (own timeout, own peak
memory); tokens/s counts the steps after the first `--skip`; peak = torch.cuda.max_memory_allocated.
    python3 bench/train_speed.py gpu --out results/ [--deadline 400] [--rows 0.5b:trl,0.5b:sdpa,...]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "train"))

# ---------------------------------------------------------------------------------------------- GPU mode
SIZES = {  # Qwen2.5 shapes
    "tiny": dict(
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
    ),
    "0.5b": dict(
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
    ),
    "1.5b": dict(
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
    ),
    "3b": dict(
        hidden_size=2048,
        intermediate_size=11008,
        num_hidden_layers=36,
        num_attention_heads=16,
        num_key_value_heads=2,
    ),
}
# The table: (max_length, packed rows per micro-batch, steps, words per trace)
SHAPES = {
    "0.5b": (8192, 2, 30, (300, 2500)),
    "1.5b": (16384, 1, 24, (600, 5000)),
    "tiny": (1024, 2, 8, (30, 200)),
}
VOCAB = 151936
N_ROWS = 300
WORDS = [
    "we",
    "add",
    "the",
    "two",
    "numbers",
    "then",
    "check",
    "sum",
    "carefully",
    "and",
    "simplify",
    "fraction",
    "step",
    "so",
    "x",
    "equals",
    "wait",
    "let",
    "me",
    "verify",
    "again",
    "therefore",
]
# tracekit variants: attention kernel, torch.compile, Liger
VARIANTS = {
    "sdpa": {"attn_implementation": "sdpa", "compile": False, "liger_kernels": False},
    "best": {"attn_implementation": "auto", "compile": False, "liger_kernels": False},
    "sdpa+compile": {"attn_implementation": "sdpa", "compile": True, "liger_kernels": False},
    "sdpa+liger": {"attn_implementation": "sdpa", "compile": False, "liger_kernels": True},
    "flex": {"attn_implementation": "flex_attention", "compile": False, "liger_kernels": False},
}
DEFAULT_ROWS = "0.5b:trl,0.5b:sdpa,1.5b:trl,1.5b:sdpa,1.5b:best,1.5b:sdpa+liger,0.5b:best,1.5b:sdpa+compile"


def make_rows(n: int, lo: int, hi: int, seed: int = 0) -> list[dict]:
    """R1-style traces: a 40-word problem, a <think> block of lo..hi words, a boxed answer (the reference's)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        steps = " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))
        rows.append(
            {
                "messages": [
                    {
                        "role": "user",
                        "content": f"Problem {i}: " + " ".join(rng.choice(WORDS) for _ in range(40)),
                    },
                    {
                        "role": "assistant",
                        "content": f"<think>\n{steps}\n</think>\n\nThe answer is \\boxed{{{i}}}.",
                    },
                ],
                "trace_id": f"t{i}",
            }
        )
    return rows


def gpu_prepare(size: str, work: Path, vocab: int = VOCAB) -> None:
    """Model folder (random weights, fp32) and dataset of one shape, made once and shared by its rows."""
    import torch
    from conftest import build_tokenizer, write_dataset
    from transformers import Qwen2Config, Qwen2ForCausalLM

    max_length, _, _, (lo, hi) = SHAPES[size]
    tok = build_tokenizer("qwen2_5")
    torch.manual_seed(0)
    cfg = Qwen2Config(
        vocab_size=vocab,
        max_position_embeddings=max_length,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        **SIZES[size],
    )
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(dev):
        model = Qwen2ForCausalLM(cfg)
    model.save_pretrained(work / "model")
    tok.save_pretrained(work / "model")
    write_dataset(work / "dataset", make_rows(N_ROWS, lo, hi))
    (work / "rows.json").write_text(json.dumps(make_rows(N_ROWS, lo, hi)))
    n = sum(p.numel() for p in model.parameters())
    print(f"prepared {size}: {n / 1e9:.2f}B params in {work}", flush=True)


def _peak_gib() -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0


def gpu_row(size: str, trainer: str, work: Path, steps: int, skip: int) -> dict[str, Any]:
    """One measurement: tokens/s over the steps after `skip`, peak memory, MFU (tracekit's own), wall time."""
    import torch

    max_length, batch, _, _ = SHAPES[size]
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    if trainer != "trl":
        return _tracekit_row(size, VARIANTS[trainer], work, steps, skip, max_length, batch, t0)
    from datasets import Dataset
    from transformers import AutoTokenizer, Qwen2ForCausalLM, TrainerCallback
    from trl import SFTConfig
    from trl import SFTTrainer as TRLSFTTrainer

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.tokens: list[int] = []
            self.t0 = 0.0

        def on_step_begin(self, args, state, control, **kw):  # noqa: ANN001
            if cuda:
                torch.cuda.synchronize()
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
            if cuda:
                torch.cuda.synchronize()
            self.times.append(time.perf_counter() - self.t0)
            self.tokens.append(trl_trainer._total_train_tokens)

    timer = StepTimer()
    rows = json.loads((work / "rows.json").read_text())
    args = SFTConfig(
        output_dir=str(work / "trl-out"),
        report_to=[],
        packing=True,
        packing_strategy="bfd",
        max_length=max_length,
        max_steps=steps,
        learning_rate=1e-5,
        per_device_train_batch_size=batch,
        assistant_only_loss=True,
        bf16=cuda,
        use_cpu=not cuda,
        logging_steps=4,
        save_strategy="no",
        gradient_checkpointing=True,
        lr_scheduler_type="cosine",
        dataloader_num_workers=0,
        seed=42,
    )
    model = Qwen2ForCausalLM.from_pretrained(work / "model", attn_implementation="sdpa", dtype=torch.float32)
    trl_trainer = TRLSFTTrainer(
        model=model,
        args=args,
        processing_class=AutoTokenizer.from_pretrained(work / "model"),
        train_dataset=Dataset.from_list([{"messages": r["messages"]} for r in rows]),
        callbacks=[timer],
    )
    trl_trainer.train()
    per_step = [b - a for a, b in zip([0, *timer.tokens], timer.tokens, strict=False)][skip:]
    losses = [h["loss"] for h in trl_trainer.state.log_history if "loss" in h]
    return {
        "tps": sum(per_step) / sum(timer.times[skip:]),
        "peak_gib": _peak_gib(),
        "mfu": None,
        "wall_s": time.time() - t0,
        "loss_last": losses[-1] if losses else None,
        "attention": "sdpa",
    }


def _tracekit_row(
    size: str, variant: dict, work: Path, steps: int, skip: int, max_length: int, batch: int, t0: float
) -> dict[str, Any]:
    import torch
    from transformers import AutoConfig

    from tracekit.train.attention import resolve_backend
    from tracekit.train.config import TrainConfig
    from tracekit.train.loss import auto_chunk_size
    from tracekit.train.memory import GIB, ModelShape, plan_memory
    from tracekit.train.trainer import SFTTrainer

    cuda = torch.cuda.is_available()
    every = 3
    cfg = TrainConfig(
        model=str(work / "model"),
        data=str(work / "dataset"),
        output_dir=work / f"tk-{os.getpid()}",
        max_length=max_length,
        packing=True,
        max_steps=steps,
        learning_rate=1e-5,
        per_device_batch_size=batch,
        warmup_ratio=0.0,
        bf16=cuda,
        logging_every=every,
        gradient_checkpointing=True,
        **variant,
    )
    SFTTrainer(config=cfg).train()
    recs = [json.loads(x) for x in (cfg.output_dir / "metrics.jsonl").read_text().splitlines()]
    recs = recs[skip:]  # windows of `every` steps: skip is a multiple of it, so whole windows are kept
    dt = sum(r["step_time_s"] for r in recs)
    mfu = sum((r["mfu"] or 0.0) * r["step_time_s"] for r in recs) / dt
    shape = ModelShape.from_config(AutoConfig.from_pretrained(work / "model"))
    plan = plan_memory(
        shape=shape,
        tokens=max_length * batch,
        checkpointing=True,
        bf16=cuda,
        chunk=auto_chunk_size(shape.vocab),
    )
    device = torch.device("cuda" if cuda else "cpu")
    return {
        "tps": sum(r["tokens"] for r in recs) / dt,
        "peak_gib": _peak_gib(),
        "mfu": mfu if cuda else None,
        "wall_s": time.time() - t0,
        "loss_last": recs[-1]["loss"],
        "plan_gib": plan.peak / GIB,
        "attention": resolve_backend(requested=variant["attn_implementation"], device=device),
    }


def gpu_main(args: argparse.Namespace) -> None:
    """Run the rows one process each, inside a deadline; print the table as rows finish and at the end."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work_root = Path(args.work or tempfile.mkdtemp(prefix="train-speed-gpu-"))
    logs = work_root / "rows"  # each row's json and output (results.jsonl in --out has the rows' results)
    logs.mkdir(parents=True, exist_ok=True)
    start = time.time()
    rows = [r.split(":") for r in args.rows.split(",")]
    results: list[dict[str, Any]] = []
    log = (out / "results.jsonl").open("a")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for size in dict.fromkeys(s for s, _ in rows):
        work = work_root / size
        if not (work / "model").exists():
            left = args.deadline - (time.time() - start)
            cmd = [
                sys.executable,
                __file__,
                "gpu-prepare",
                "--size",
                size,
                "--work",
                str(work),
                "--vocab",
                str(args.vocab),
            ]
            subprocess.run(cmd, env=env, timeout=max(10, min(180, left)), check=True)
    for size, trainer in rows:
        left = args.deadline - (time.time() - start)
        if left < args.min_row_s:
            print(f"skipped {size} {trainer}: {left:.0f}s left before the deadline", flush=True)
            continue
        steps = args.steps or SHAPES[size][2]
        cmd = [
            sys.executable,
            __file__,
            "gpu-row",
            "--size",
            size,
            "--trainer",
            trainer,
            "--work",
            str(work_root / size),
            "--steps",
            str(steps),
            "--skip",
            str(args.skip),
            "--json",
            str(logs / f"{size}-{trainer}.json"),
        ]
        t0 = time.time()
        log_path = logs / f"{size}-{trainer}.log"
        with log_path.open("w") as fh:
            try:
                ok = (
                    subprocess.run(
                        cmd, env=env, timeout=min(args.row_timeout, left), stdout=fh, stderr=subprocess.STDOUT
                    ).returncode
                    == 0
                )
                why = "" if ok else (log_path.read_text().strip().splitlines() or ["(no output)"])[-1][:300]
            except subprocess.TimeoutExpired:
                ok, why = False, f"timed out after {time.time() - t0:.0f}s"
        res: dict[str, Any] = {"size": size, "trainer": trainer}
        if ok:
            res.update(json.loads((logs / f"{size}-{trainer}.json").read_text()))
        else:
            res["error"] = why
        print(f"{size} {trainer}: {res}", flush=True)
        log.write(json.dumps(res) + "\n")
        log.flush()
        results.append(res)
    print_table(results)


def print_table(results: list[dict[str, Any]]) -> None:
    print(
        "\n| model, max_length, rows/step | trainer (attention) | tokens/s | ratio vs TRL | peak GiB | plan GiB | MFU |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        max_length, batch, _, _ = SHAPES[r["size"]]
        base = next((x.get("tps") for x in results if x["size"] == r["size"] and x["trainer"] == "trl"), None)
        name = (
            "TRL (sdpa)" if r["trainer"] == "trl" else f"tracekit {r['trainer']} ({r.get('attention', '?')})"
        )
        if "error" in r:
            print(f"| {r['size']}, {max_length}, {batch} | {name} | failed: {r['error']} | | | | |")
            continue
        ratio = f"{r['tps'] / base:.2f}x" if base else "-"
        mfu = "-" if r.get("mfu") is None else f"{r['mfu']:.1%}"
        plan = f"{r['plan_gib']:.1f}" if r.get("plan_gib") else "-"
        print(
            f"| {r['size']}, {max_length}, {batch} | {name} | {r['tps']:,.0f} | {ratio} | {r['peak_gib']:.1f} | {plan} | {mfu} |"
        )


# ---------------------------------------------------------------------------------------------- CPU mode
def cpu_rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    words = [
        "we",
        "add",
        "the",
        "two",
        "numbers",
        "then",
        "check",
        "the",
        "sum",
        "carefully",
        "and",
        "simplify",
        "the",
        "fraction",
        "step",
    ]
    rows = []
    for i in range(n):
        steps = " ".join(rng.choice(words) for _ in range(rng.randint(40, 300)))
        rows.append(
            {
                "messages": [
                    {
                        "role": "user",
                        "content": f"Problem {i}: " + " ".join(rng.choice(words) for _ in range(30)),
                    },
                    {
                        "role": "assistant",
                        "content": f"<think>\n{steps}\n</think>\n\nThe answer is \\boxed{{{i}}}.",
                    },
                ],
                "trace_id": f"t{i}",
            }
        )
    return rows


def cpu_main(args: argparse.Namespace) -> None:
    import torch
    from conftest import build_tokenizer, write_dataset
    from datasets import Dataset
    from transformers import Qwen2Config, Qwen2ForCausalLM, TrainerCallback
    from trl import SFTConfig
    from trl import SFTTrainer as TRLSFTTrainer

    from tracekit.train.config import TrainConfig
    from tracekit.train.trainer import SFTTrainer

    work = Path(tempfile.mkdtemp(prefix="train-speed-"))
    tok = build_tokenizer("qwen2_5")
    torch.manual_seed(0)
    cfg = Qwen2Config(
        vocab_size=max(args.vocab, len(tok)),
        hidden_size=args.hidden,
        intermediate_size=4 * args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=max(2, args.hidden // 64),
        num_key_value_heads=max(2, args.hidden // 64),
        max_position_embeddings=args.max_length,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model_dir = work / "model"
    Qwen2ForCausalLM(cfg).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    rows = cpu_rows(args.rows)
    data = write_dataset(work / "dataset", rows)

    tk_cfg = TrainConfig(
        model=str(model_dir),
        data=str(data),
        output_dir=work / "tk",
        max_length=args.max_length,
        packing=True,
        max_steps=args.steps,
        learning_rate=1e-4,
        per_device_batch_size=args.batch,
        warmup_ratio=0.0,
        logging_every=10**6,
    )
    SFTTrainer(config=tk_cfg).train()
    # one read of the device at the end (logging_every): whole-run tokens/s, minus the first step's share
    recs = [json.loads(x) for x in (work / "tk" / "metrics.jsonl").read_text().splitlines()][1:]
    tk_tps = sum(r["tokens"] for r in recs) / sum(r["step_time_s"] for r in recs)

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.tokens: list[int] = []
            self.t0 = 0.0

        def on_step_begin(self, args, state, control, **kw):  # noqa: ANN001
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
            self.times.append(time.perf_counter() - self.t0)
            self.tokens.append(trainer._total_train_tokens)

    timer = StepTimer()
    trl_args = SFTConfig(
        output_dir=str(work / "trl"),
        report_to=[],
        packing=True,
        packing_strategy="bfd",
        max_length=args.max_length,
        max_steps=args.steps,
        learning_rate=1e-4,
        per_device_train_batch_size=args.batch,
        assistant_only_loss=True,
        use_cpu=True,
        bf16=False,
        logging_steps=10**6,
        save_strategy="no",
        lr_scheduler_type="cosine",
        dataloader_num_workers=0,
        seed=42,
        gradient_checkpointing=False,
    )
    trainer = TRLSFTTrainer(
        model=Qwen2ForCausalLM.from_pretrained(model_dir),
        args=trl_args,
        processing_class=tok,
        train_dataset=Dataset.from_list([{"messages": r["messages"]} for r in rows]),
        callbacks=[timer],
    )
    trainer.train()
    per_step = [b - a for a, b in zip([0, *timer.tokens], timer.tokens, strict=False)][1:]
    trl_tps = sum(per_step) / sum(timer.times[1:])
    n_params = sum(p.numel() for p in Qwen2ForCausalLM(cfg).parameters()) / 1e6
    print(
        f"\nmodel: Qwen2 {n_params:.0f}M params (hidden {args.hidden}, {args.layers} layers, vocab {cfg.vocab_size}); "
        f"{args.rows} traces, max_length {args.max_length}, {args.batch} packed rows/step, {args.steps} steps, "
        f"cpu ({torch.get_num_threads()} threads), no gradient checkpointing in either"
    )
    print("| trainer | tokens/s | ratio |")
    print("|---|---:|---:|")
    print(f"| TRL SFTTrainer (bfd packing, padding-free) | {trl_tps:,.0f} | 1.00x |")
    print(
        f"| tracekit SFTTrainer (bfd packing, per-document sdpa) | {tk_tps:,.0f} | {tk_tps / trl_tps:.2f}x |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode")
    cpu = sub.add_parser("cpu")
    for p in (ap, cpu):
        p.add_argument("--steps", type=int, default=8)
        p.add_argument("--rows", type=int, default=160)
        p.add_argument("--hidden", type=int, default=256)
        p.add_argument("--layers", type=int, default=4)
        p.add_argument("--vocab", type=int, default=32000)
        p.add_argument("--max-length", type=int, default=2048)
        p.add_argument("--batch", type=int, default=2)
    g = sub.add_parser("gpu")
    g.add_argument("--out", required=True, help="folder for results.jsonl, each row's json and log")
    g.add_argument("--work", default=None, help="folder for the models and datasets (default: a temp folder)")
    g.add_argument(
        "--rows", default=DEFAULT_ROWS, help=f"size:trainer,... (trainer: trl or {', '.join(VARIANTS)})"
    )
    g.add_argument("--steps", type=int, default=None, help="steps per row (default: the issue's, 30 / 24)")
    g.add_argument("--skip", type=int, default=6, help="first steps left out of tokens/s (a multiple of 3)")
    g.add_argument(
        "--deadline", type=float, default=1800, help="seconds for everything; later rows are skipped"
    )
    g.add_argument("--row-timeout", type=float, default=180)
    g.add_argument(
        "--vocab", type=int, default=VOCAB, help="vocabulary of the built models (rehearsals: smaller)"
    )
    g.add_argument("--min-row-s", type=float, default=40, help="start no row with less time than this left")
    prep = sub.add_parser("gpu-prepare")
    prep.add_argument("--size", required=True)
    prep.add_argument("--work", required=True)
    prep.add_argument("--vocab", type=int, default=VOCAB)
    row = sub.add_parser("gpu-row")
    row.add_argument("--size", required=True)
    row.add_argument("--trainer", required=True)
    row.add_argument("--work", required=True)
    row.add_argument("--steps", type=int, required=True)
    row.add_argument("--skip", type=int, default=6)
    row.add_argument("--json", required=True)
    args = ap.parse_args()
    if args.mode == "gpu":
        gpu_main(args)
    elif args.mode == "gpu-prepare":
        gpu_prepare(args.size, Path(args.work), args.vocab)
    elif args.mode == "gpu-row":
        res = gpu_row(args.size, args.trainer, Path(args.work), args.steps, args.skip)
        Path(args.json).write_text(json.dumps(res))
        print(json.dumps(res), flush=True)
    else:
        cpu_main(args)


if __name__ == "__main__":
    main()
