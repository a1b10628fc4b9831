"""tracekit's SFT trainer vs TRL's SFTTrainer: same model, same data, packing on in both, same run.

Prints tokens/s (mean over steps after the first), the ratio, and the padding fraction of each.
Run: .venv/bin/python bench/train_speed.py [--steps 8] [--hidden 256] [--layers 4] [--vocab 32000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "train"))


def make_rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    words = ["we", "add", "the", "two", "numbers", "then", "check", "the", "sum", "carefully", "and", "simplify", "the", "fraction", "step"]
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rows", type=int, default=160)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--max-length", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=2)
    args = ap.parse_args()

    import torch
    from conftest import build_tokenizer, write_dataset
    from datasets import Dataset
    from transformers import Qwen2Config, Qwen2ForCausalLM, TrainerCallback
    from trl import SFTConfig
    from trl import SFTTrainer as TRLSFTTrainer

    from tracekit.train.config import TrainConfig
    from tracekit.train.trainer import SFTTrainer

    torch.set_num_threads(torch.get_num_threads())
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
    rows = make_rows(args.rows)
    data = write_dataset(work / "dataset", rows)
    common = {"lr": 1e-4, "batch": args.batch}

    # --- tracekit
    tk_cfg = TrainConfig(
        model=str(model_dir),
        data=str(data),
        output_dir=work / "tk",
        max_length=args.max_length,
        packing=True,
        max_steps=args.steps,
        learning_rate=common["lr"],
        per_device_batch_size=args.batch,
        warmup_ratio=0.0,
        logging_every=10**6,
    )
    SFTTrainer(config=tk_cfg).train()
    recs = [json.loads(x) for x in (work / "tk" / "metrics.jsonl").read_text().splitlines()][1:]
    tk_tps = sum(r["tokens"] for r in recs) / sum(r["step_time_s"] for r in recs)
    tk_pad = sum(r["padding_fraction"] * r["tokens"] for r in recs) / sum(r["tokens"] for r in recs)

    # --- TRL
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
        learning_rate=common["lr"],
        per_device_train_batch_size=args.batch,
        assistant_only_loss=True,
        use_cpu=True,
        bf16=False,
        logging_steps=10**6,
        save_strategy="no",
        lr_scheduler_type="cosine",
        dataloader_num_workers=0,
        seed=42,
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
    batch = next(iter(trainer.get_train_dataloader()))
    ids = batch["input_ids"]
    trl_pad = float((batch.get("attention_mask", torch.ones_like(ids)) == 0).sum()) / ids.numel()

    n_params = sum(p.numel() for p in Qwen2ForCausalLM(cfg).parameters()) / 1e6
    print(
        f"\nmodel: Qwen2 {n_params:.0f}M params (hidden {args.hidden}, {args.layers} layers, vocab {cfg.vocab_size}); "
        f"{args.rows} traces, max_length {args.max_length}, {args.batch} packed rows/step, {args.steps} steps, "
        f"device {'cuda' if torch.cuda.is_available() else 'cpu'} ({torch.get_num_threads()} threads)"
    )
    print("| trainer | tokens/s | padding | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| TRL SFTTrainer (bfd packing, padding-free) | {trl_tps:,.0f} | {trl_pad:.1%} | 1.00x |")
    print(
        f"| tracekit SFTTrainer (bfd packing, padding-free) | {tk_tps:,.0f} | {tk_pad:.1%} | {tk_tps / trl_tps:.2f}x |"
    )


if __name__ == "__main__":
    main()
