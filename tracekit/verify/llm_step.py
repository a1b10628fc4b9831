"""LLMVerifyStep: the datatrove step of `verify: {llm: ...}`: a judge model decides whether each trace's
answer matches its reference (method `judge`, the judge's reply in `verify_detail`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from datatrove.data import Document

from tracekit.record import stable_hash
from tracekit.teachers.endpoint_calls import EndpointCalls
from tracekit.verify.base import METHOD_JUDGE, VerifyResult, VerifyStep
from tracekit.verify.llm.config import LLMVerifyConfig
from tracekit.verify.llm.judge import judge_messages, read_reply

REPLY_CHARS = 2000  # of the judge's reply kept in verify_detail


def _has_gold(md: dict[str, Any]) -> bool:
    gold = md.get("gold_answer")
    return isinstance(gold, str) and bool(gold.strip())


class LLMVerifyStep(VerifyStep):
    """Judge the traces of `config.domains` that have a reference and are still kept (see
    `LLMVerifyConfig`). The judge's answers are cached per task under `cache_dir`, so a task re-run
    after a crash does not ask again.

    Example:
        step = LLMVerifyStep(config=LLMVerifyConfig.model_validate(
            {"judge": {"base_urls": ["http://localhost:8000/v1"], "model": "judge"}, "domains": ["science"]}))
        list(step.run(docs))  # verdict / verify_method "judge" / verify_detail {"judge", "reply"}
    """

    name = "verify llm"

    def __init__(self, *, config: LLMVerifyConfig, cache_dir: str | None = None) -> None:
        super().__init__(batch_size=config.batch_size, keep_errors=config.keep_errors, reject=config.reject)
        self.config = config
        self.domains = frozenset(config.domains)
        self.cache_dir = cache_dir
        # one cache file per judge setting: a source with its own `verify.llm` gets its own step
        self.tag = stable_hash("judge", config.model_dump_json())[:8]
        self._calls: EndpointCalls | None = None

    def applies(self, doc: Document) -> bool:
        md = doc.metadata
        return md.get("domain") in self.domains and _has_gold(md) and md.get("kept", True)

    def _answer(self, doc: Document) -> str:
        if self.config.answer == "completion":
            return doc.text or ""
        text = doc.metadata.get("answer_text")
        return (doc.text or "") if text is None else text

    def verify_batch(self, docs: list[Document]) -> list[VerifyResult]:
        assert self._calls is not None
        model = self.config.judge.model
        todo = []
        for d in docs:
            answer = self._answer(d)
            msgs = None
            if answer.strip():
                msgs = judge_messages(
                    self.config.template,
                    prompt=d.metadata.get("prompt") or "",
                    answer=answer,
                    gold=d.metadata["gold_answer"],
                )
            todo.append((d, d.id if msgs else None, msgs))
        out: list[VerifyResult] = []
        for _doc, reply in self._calls.answers(todo):
            if reply is None:
                out.append(VerifyResult("incorrect", METHOD_JUDGE, json.dumps({"judge": model, "reason": "no_answer"})))
                continue
            if reply.get("error"):
                detail = {"judge": model, "reason": "request_failed", "error": reply["error"][:500]}
                out.append(VerifyResult("error", METHOD_JUDGE, json.dumps(detail)))
                continue
            text = reply.get("completion") or ""
            verdict = read_reply(text)
            detail = {"judge": model, "reply": text[-REPLY_CHARS:]}
            if verdict is None:
                detail["reason"] = "unclear_reply"
            out.append(VerifyResult(verdict or "error", METHOD_JUDGE, json.dumps(detail, ensure_ascii=False)))
        return out

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        cache = Path(self.cache_dir) / f"{self.tag}-{rank:05d}.jsonl" if self.cache_dir else None
        with EndpointCalls(config=self.config.judge, cache_path=cache, rank=rank) as calls:
            self._calls = calls
            try:
                yield from super().run(data, rank, world_size)
            finally:
                self._calls = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_calls"] = None
        return state
