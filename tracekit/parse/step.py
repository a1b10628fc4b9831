"""ParseStep: reasoning / answer split, last \\boxed{} answer, truncation, token counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from tracekit.parse.split import last_boxed, split_reasoning

DROP_TRUNCATED = "truncated"
DROP_TEACHER_ERROR = "teacher_error"
DROP_EMPTY = "empty_completion"


class ParseStep(PipelineStep):
    """Fill `reasoning`, `answer_text`, `extracted_answer`, `think_format` and token counts.

    Truncated traces (finish reason `length`, or an unclosed reasoning block) are dropped with reason
    `truncated`; they stay in the ledger. Token counts use the recipe's tokenizer when one is given
    (batched; the fast tokenizers run in Rust).
    """

    type = "🔎 - PARSE"
    name = "parse"

    def __init__(self, *, tokenizer: str | None = None, batch_size: int = 256) -> None:
        super().__init__()
        self.tokenizer_name = tokenizer
        self.batch_size = batch_size
        self._tok: Any = None

    def _tokenizer(self) -> Any:
        if self._tok is None and self.tokenizer_name:
            from transformers import AutoTokenizer

            self._tok = AutoTokenizer.from_pretrained(self.tokenizer_name)
        return self._tok

    def parse_one(self, doc: Document) -> None:
        md = doc.metadata
        completion = doc.text or ""
        field = md.get("reasoning")  # set by a teacher that returns reasoning separately
        sp = split_reasoning(completion, field)
        md["reasoning"] = sp.reasoning
        md["answer_text"] = sp.answer_text
        md["think_format"] = sp.think_format
        md["think_blocks"] = sp.think_blocks
        if md.get("extracted_answer") is None:
            md["extracted_answer"] = last_boxed(sp.answer_text)
        if md.get("finish_reason") is None and sp.think_format == "unclosed":
            md["finish_reason"] = "length"  # the reasoning never closed: cut off
        if md.get("kept", True):
            if md.get("error"):
                md["kept"], md["drop_reason"], md["verdict"] = False, DROP_TEACHER_ERROR, "error"
            elif md.get("finish_reason") == "length" or sp.think_format == "unclosed":
                md["kept"], md["drop_reason"] = False, DROP_TRUNCATED
            elif not completion.strip():
                md["kept"], md["drop_reason"] = False, DROP_EMPTY
        if not md.get("kept", True):
            self.stat_update(f"dropped_{md['drop_reason']}")

    def count_tokens(self, docs: list[Document]) -> None:
        tok = self._tokenizer()
        if tok is None:
            return
        need_c = [d for d in docs if d.metadata.get("completion_tokens") is None]
        if need_c:
            enc = tok([d.text or "" for d in need_c], add_special_tokens=False)["input_ids"]
            for d, ids in zip(need_c, enc, strict=True):
                d.metadata["completion_tokens"] = len(ids)
        need_r = [d for d in docs if d.metadata.get("reasoning_tokens") is None and d.metadata.get("reasoning")]
        if need_r:
            enc = tok([d.metadata["reasoning"] for d in need_r], add_special_tokens=False)["input_ids"]
            for d, ids in zip(need_r, enc, strict=True):
                d.metadata["reasoning_tokens"] = len(ids)
        need_p = [d for d in docs if d.metadata.get("prompt_tokens") is None]
        if need_p:
            texts = ["\n".join(m["content"] for m in d.metadata.get("prompt_messages") or []) for d in need_p]
            enc = tok(texts, add_special_tokens=False)["input_ids"]
            for d, ids in zip(need_p, enc, strict=True):
                d.metadata["prompt_tokens"] = len(ids)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        batch: list[Document] = []
        for doc in data or []:
            with self.track_time():
                self.parse_one(doc)
            batch.append(doc)
            if len(batch) >= self.batch_size:
                self.count_tokens(batch)
                yield from batch
                batch = []
        if batch:
            self.count_tokens(batch)
            yield from batch
