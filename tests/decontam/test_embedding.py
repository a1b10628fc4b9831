"""The embedding path of the rephrase check with a tiny BERT encoder built here (random weights)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.decontam.test_decontam import ledger
from tracekit.decontam import DecontamConfig, DecontamStage

ITEMS = [
    "A train leaves at 3 pm and travels 120 miles at 40 miles per hour. When does it arrive?",
    "Mia has 24 apples, gives 7 to Leo and 5 to Ana. How many apples does she keep?",
    "A rectangle is 12 cm long and 9 cm wide. What is its perimeter in cm, plus 4?",
    "Compute 17 times 23, then subtract 91.",
]
PROMPTS = [
    "Leaving at 3 pm, a train covers 120 miles going 40 miles per hour; at what time does it get there?",
    "Mia owns 24 apples; Leo receives 7 of them and Ana receives 5. How many remain with Mia?",
    "Find the perimeter in cm of a 12 cm by 9 cm rectangle, then add 4.",
    "Multiply 17 by 23 and take away 91.",
]

pytestmark = pytest.mark.slow  # real builds (or a transformers model): seconds each


def tiny_encoder(folder: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        ITEMS + PROMPTS, trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    )
    fast.save_pretrained(folder)
    cfg = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    BertModel(cfg).save_pretrained(folder)
    return folder


def cosine_oracle(model_dir: Path, a: str, b: str) -> float:
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    vecs = []
    with torch.no_grad():
        for t in (a, b):
            enc = tok([t], return_tensors="pt")
            h = model(**enc).last_hidden_state[0]
            vecs.append(h.mean(0).numpy())
    return float(vecs[0] @ vecs[1] / np.linalg.norm(vecs[0]) / np.linalg.norm(vecs[1]))


def test_embedding_similarity_finds_candidates_and_records_cosine(tmp_path: Path) -> None:
    model = tiny_encoder(tmp_path / "enc")
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps({"id": f"q{i}", "problem": t}) + "\n" for i, t in enumerate(ITEMS)))
    folder = ledger(tmp_path, [(f"t{i}", p, True) for i, p in enumerate(PROMPTS)])
    cfg = DecontamConfig.model_validate(
        {
            "benchmarks": [{"name": "mine", "path": str(bench), "id_column": "id"}],
            "rephrase": {
                "embedding": {"model": str(model), "batch_size": 2},
                "candidates": len(ITEMS),
                "min_score_many_numbers": 0.0,  # any cosine: the numbers decide which item it is
                "min_formula_share": 0.0,
            },
        }
    )
    out = tmp_path / "d.parquet"
    list(DecontamStage(config=cfg, input_dir=str(folder), output_path=str(out)).run())
    rows = {r["trace_id"]: r for r in pq.read_table(out).to_pylist()}
    for i, prompt in enumerate(PROMPTS):
        hits = rows[f"t{i}"]["contamination"]
        assert [(h["item"], h["method"]) for h in hits] == [(f"q{i}", "rephrase")], (prompt, hits)
        assert hits[0]["score"] == pytest.approx(cosine_oracle(model, ITEMS[i], prompt), abs=1e-4)
