"""Export of the trained model as a folder that transformers and vLLM load as it is.

`OUTPUT_DIR/final/`: safetensors weights, config, tokenizer with the chat template used in training, and a
generation_config whose eos ids include the template's end-of-turn token (`<|im_end|>`, `<|eot_id|>`, ...),
so generation stops where the model learned to stop.

Example:
    >>> end_of_turn_token(tokenizer=tok)  # doctest: +SKIP
    '<|im_end|>'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from tracekit.train.chat_masks import render_segments, special_token_strings


def end_of_turn_token(*, tokenizer: Any, chat_template: str | None = None) -> str | None:
    """The special token that closes an assistant turn under this template (None if the template has none)."""
    segs = render_segments(
        messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}],
        tokenizer=tokenizer,
        chat_template=chat_template,
    )
    trained = segs[-1].text
    for tok in special_token_strings(tokenizer):
        if trained.endswith(tok):
            return tok
    return None


def tied_duplicate_names(model: Any) -> set[str]:
    """Names that refer to a parameter already registered under another name (e.g. a tied `lm_head.weight`)."""
    kept = {name for name, _ in model.named_parameters()}
    return {name for name, _ in model.named_parameters(remove_duplicate=False)} - kept


def export_model(
    *,
    model: Any,
    state_dict: dict[str, torch.Tensor] | None,
    tokenizer: Any,
    chat_template: str | None,
    out_dir: Path,
    dtype: torch.dtype,
    source: str,
) -> Path:
    """Save weights (`state_dict` if given, else the model's), tokenizer and generation config to `out_dir`."""
    from transformers import GenerationConfig

    out_dir.mkdir(parents=True, exist_ok=True)
    sd = state_dict if state_dict is not None else model.state_dict()
    # A gathered (FSDP2) state dict holds tied weights (lm_head = embeddings) as separate copies, which
    # save_pretrained cannot recognise as tied: keep only the name the model itself keeps for each parameter.
    sd = {k: v for k, v in sd.items() if k not in tied_duplicate_names(model)}
    sd = {
        k: v.detach().to("cpu", dtype=dtype) if v.is_floating_point() else v.detach().cpu()
        for k, v in sd.items()
    }
    model.config.dtype = dtype
    model.save_pretrained(out_dir, state_dict=sd, safe_serialization=True)

    if chat_template is not None:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(out_dir)

    try:
        gen = GenerationConfig.from_pretrained(source)
    except Exception:
        gen = GenerationConfig.from_model_config(model.config)
    eos_ids: list[int] = []
    eot = end_of_turn_token(tokenizer=tokenizer, chat_template=chat_template)
    for tok_id in (tokenizer.convert_tokens_to_ids(eot) if eot else None, tokenizer.eos_token_id):
        if isinstance(tok_id, int) and tok_id not in eos_ids:
            eos_ids.append(tok_id)
    if eos_ids:
        gen.eos_token_id = eos_ids if len(eos_ids) > 1 else eos_ids[0]
    if gen.pad_token_id is None:
        gen.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    if tokenizer.bos_token_id is not None:
        gen.bos_token_id = tokenizer.bos_token_id
    gen.save_pretrained(out_dir)
    return out_dir


def push_folder(*, folder: Path, repo_id: str, private: bool) -> str:
    """Upload `folder` to a Hub model repo (token from HF_TOKEN); returns the repo URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=os.environ.get("HF_TOKEN"))
    url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model")
    return str(url)
