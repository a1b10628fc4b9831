"""Tiny tokenizers (three chat-template styles), tiny models and tiny datasets, all built locally."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

STYLES = {
    # style: (template file shipped with TRL = the model's stock template, special tokens, bos, eos, pad)
    "qwen2_5": (
        "qwen2_5",
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        None,
        "<|im_end|>",
        "<|endoftext|>",
    ),
    "llama3": (
        "llama3",
        ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        "<|begin_of_text|>",
        "<|eot_id|>",
        "<|end_of_text|>",
    ),
    "r1_distill": (
        "deepseek_r1_distill",
        ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"],
        "<｜begin▁of▁sentence｜>",
        "<｜end▁of▁sentence｜>",
        "<｜end▁of▁sentence｜>",
    ),
}


def stock_template(name: str) -> str:
    import trl

    return (Path(trl.__file__).parent / "chat_templates" / f"{name}.jinja").read_text()


def make_traces(n: int = 20) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        a, b = 3 + i, 11 + 2 * i
        content = (
            f"<think>\nAdd {a} and {b}: {a} + {b} = {a + b}.\n</think>\n\nThe answer is \\boxed{{{a + b}}}."
        )
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"What is {a} + {b}?"},
                    {"role": "assistant", "content": content},
                ],
                "trace_id": f"t{i:03d}",
                "prompt_id": f"p{i:03d}",
                "source": "tiny",
                "domain": "math",
                "bucket": "math",
                "num_tokens": 0,
                "verified": True,
            }
        )
    return rows


def build_tokenizer(style: str, *, vocab_size: int = 320) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    template, specials, bos, eos, pad = STYLES[style]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [m["content"] for r in make_traces(40) for m in r["messages"]] + [
        "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
        "system user assistant Hello there, how are you? think answer boxed",
    ]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad, clean_up_tokenization_spaces=False
    )
    fast.add_tokens(["<think>", "</think>"])
    fast.chat_template = stock_template(template)
    return fast


def build_model(
    tokenizer: Any, *, hidden: int = 64, heads: int = 2, layers: int = 2, seed: int = 0, init: float = 0.02
) -> Any:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        initializer_range=init,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return Qwen2ForCausalLM(cfg)


def write_dataset(
    root: Path, rows: list[dict[str, Any]], *, test_rows: list[dict[str, Any]] | None = None
) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (root / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), root / "data" / "train-00000-of-00001.parquet")
    if test_rows:
        pq.write_table(pa.Table.from_pylist(test_rows), root / "data" / "test-00000-of-00001.parquet")
    return root


def save_model_folder(path: Path, style: str = "qwen2_5", **kw: Any) -> Path:
    tok = build_tokenizer(style)
    build_model(tok, **kw).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model_folder(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("run") / "dataset"
    return write_dataset(root, make_traces(20), test_rows=make_traces(24)[20:])
