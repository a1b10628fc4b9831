"""RewriteStep: the `rewrite` stage's step. Each trace goes through the rewriting model with the recipe's
template; the answer becomes the trace's completion, the teacher's text moves to `original_completion`.

    >>> step = RewriteStep(config=RewriteConfig.model_validate(
    ...     {"teacher": {"base_urls": ["http://localhost:8000/v1"], "model": "gpt-4o-mini"}}))
    >>> step.render({"prompt": "1+1?", "reasoning": "one plus one", "completion": "2"}, "2")
    ... # doctest: +ELLIPSIS
    "Below is a problem ...Problem:\\n1+1?\\n\\nRaw working:\\n<think>\\none plus one\\n</think>\\n2"
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from tracekit.parse.split import THINK_CLOSE, THINK_OPEN, split_reasoning
from tracekit.record import stable_hash
from tracekit.rewrite.config import RewriteConfig
from tracekit.teachers.endpoint_calls import EndpointCalls

DROP_REWRITE_FAILED = "rewrite_failed"


class RewriteStep(PipelineStep):
    """Rewrite the traces the config selects (see `RewriteConfig`), in order, many requests at once.

    Answers are cached per task under `cache_dir` (a re-run task sends only what had no answer) and
    token totals go to `usage_dir/rewrite-usage-RANK.json`.
    """

    type = "✍️ - REWRITE"
    name = "rewrite"

    def __init__(self, *, config: RewriteConfig, cache_dir: str | None = None, usage_dir: str | None = None) -> None:
        super().__init__()
        self.config = config
        self.cache_dir = cache_dir
        self.usage_dir = usage_dir
        self.template_hash = stable_hash("rewrite", config.teacher.system_prompt or "", config.template)

    def wanted(self, md: dict[str, Any], text: str) -> bool:
        """Whether a trace is sent: selected by domain/source, answered by the teacher, not cut off."""
        c = self.config
        if c.domains is not None and md.get("domain") not in c.domains:
            return False
        if c.sources is not None and md.get("source") not in c.sources:
            return False
        return not md.get("error") and bool(text.strip()) and md.get("finish_reason") != "length"

    def render(self, md: dict[str, Any], text: str) -> str:
        """The user message for one trace: the template with its placeholders filled."""
        reasoning = md.get("reasoning")
        whole = f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n{text}" if reasoning else text
        split = split_reasoning(text, reasoning)
        parts = {
            "{prompt}": md.get("prompt") or "",
            "{completion}": whole,
            "{reasoning}": split.reasoning or "",
            "{answer}": split.answer_text,
        }
        out = self.config.template
        for key, value in parts.items():  # plain replacement: traces are full of braces
            out = out.replace(key, value)
        return out

    def _apply(self, doc: Document, answer: dict[str, Any]) -> None:
        md = doc.metadata
        detail: dict[str, Any] = {"template_hash": self.template_hash, "finish_reason": answer.get("finish_reason")}
        new = answer.get("completion") or ""
        if answer.get("error") or answer.get("finish_reason") == "length" or not new.strip():
            detail["error"] = answer.get("error") or ("cut at max_tokens" if new.strip() else "empty answer")
            md["rewrite_detail"] = json.dumps(detail, sort_keys=True)
            md["kept"], md["drop_reason"] = False, DROP_REWRITE_FAILED
            self.stat_update(DROP_REWRITE_FAILED)
            return
        detail.update(
            prompt_tokens=answer.get("prompt_tokens"),
            completion_tokens=answer.get("completion_tokens"),
            original_completion_tokens=md.get("completion_tokens"),
        )
        original = doc.text
        if md.get("reasoning"):  # the teacher's separate thinking is part of what was rewritten
            original = f"{THINK_OPEN}\n{md['reasoning']}\n{THINK_CLOSE}\n{original}"
        doc.text = md["completion"] = new
        md["original_completion"] = original if self.config.keep_original else None
        md["rewrite_model"] = self.config.teacher.model
        md["rewrite_detail"] = json.dumps(detail, sort_keys=True)
        # the parse step splits the new text and the tokenizer recounts it
        md["reasoning"] = md["completion_tokens"] = md["reasoning_tokens"] = None
        self.stat_update("rewritten")

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        cache = Path(self.cache_dir) / f"{rank:05d}.jsonl" if self.cache_dir else None
        usage = Path(self.usage_dir) / f"rewrite-usage-{rank:05d}.json" if self.usage_dir else None
        calls = EndpointCalls(config=self.config.teacher, cache_path=cache, usage_path=usage, rank=rank)

        def requests() -> Iterator[tuple[Document, str | None, list[dict[str, str]] | None]]:
            for doc in data or []:
                text = doc.text or ""
                if self.wanted(doc.metadata, text):
                    yield doc, doc.id, [{"role": "user", "content": self.render(doc.metadata, text)}]
                else:
                    yield doc, None, None

        with calls:
            for doc, answer in calls.answers(requests()):
                if answer is not None:
                    with self.track_time():
                        self._apply(doc, answer)
                yield doc
