"""SourceReader: the first pipeline step. Turns source rows into prompt documents."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from loguru import logger

from tracekit.record import prompt_id
from tracekit.sources.base import iter_source
from tracekit.sources.config import SourceConfig
from tracekit.sources.rows import SKIPPED_ROW, BadRow


def normalize_messages(value: Any) -> list[dict[str, str]] | None:
    """Chat turns as [{role, content}], from role/content or ShareGPT from/value rows."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    if not isinstance(value, list):
        return None
    roles = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
    out = []
    for turn in value:
        if not isinstance(turn, dict):
            return None
        role = turn.get("role", turn.get("from"))
        content = turn.get("content", turn.get("value"))
        if role is None or content is None:
            return None
        out.append({"role": roles.get(str(role), str(role)), "content": str(content)})
    return out


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):  # e.g. OlympiadBench final_answer: ["2"]
        return ", ".join(str(v) for v in value) if value else None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # AMC answers stored as 27.0
    return str(value)


class BadRowLimit(Exception):
    """Raised under --strict on the first unreadable row."""


class SourceReader(PipelineStep):
    """Read every source of a recipe; yield one Document per prompt row (this task's share).

    A document's metadata holds the prompt fields of the ledger plus the raw replay columns
    (`_generations`, `_messages`, `_reasoning`, `_finish_reason`) for the replay teacher.
    Unreadable rows are logged with file and line, counted as `bad_rows`, and skipped; with
    `strict=True` the first one stops the build. `carry` copies more raw columns into the metadata,
    for a later step: {metadata key: column} per source name (e.g. the select stage's pass rate).
    """

    type = "📖 - READER"
    name = "sources"

    def __init__(
        self,
        *,
        sources: list[SourceConfig],
        base_dir: str,
        strict: bool = False,
        carry: dict[str, dict[str, str]] | None = None,
    ) -> None:
        super().__init__()
        self.sources = sources
        self.base_dir = base_dir
        self.strict = strict
        self.carry = carry or {}

    def _bad(self, bad: BadRow) -> None:
        self.stat_update("bad_rows")
        logger.warning(SKIPPED_ROW + bad.format())
        if self.strict:
            raise BadRowLimit(bad.format())

    def _prompt_doc(self, src: SourceConfig, file: str, index: int, data: dict[str, Any]) -> Document | None:
        cols = src.columns
        messages = normalize_messages(data.get(cols.messages)) if cols.messages else None
        prompt = _text(data.get(cols.prompt)) if cols.prompt and cols.prompt in data else None
        if prompt is None and messages:
            users = [m["content"] for m in messages if m["role"] == "user"]
            prompt = users[-1] if users else None
        if not prompt:
            return None
        md: dict[str, Any] = {
            "source": src.name,
            "domain": src.domain,
            "difficulty": _text(data.get(cols.difficulty)) if cols.difficulty else src.difficulty,
            "source_file": file,
            "row_index": index,
            "prompt": prompt,
            "prompt_id": prompt_id(src.name, prompt),
            "gold_answer": _text(data.get(cols.answer)) if cols.answer else None,
            "reasoning_enabled": src.reasoning,
        }
        if cols.tests and data.get(cols.tests) is not None:
            t = data[cols.tests]
            md["tests"] = t if isinstance(t, str) else json.dumps(t, ensure_ascii=False)
        if cols.generations:
            md["_generations"] = data.get(cols.generations)
        if messages is not None:
            md["_messages"] = messages
        if cols.reasoning:
            md["_reasoning"] = data.get(cols.reasoning)
        if cols.finish_reason:
            md["_finish_reason"] = data.get(cols.finish_reason)
        for key, col in self.carry.get(src.name, {}).items():
            md[key] = data.get(col)
        return Document(text=prompt, id=f"{src.name}:{file}:{index}", metadata=md)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        if data:
            yield from data
        base = Path(self.base_dir)
        rel: dict[str, str] = {}  # file -> path relative to the recipe (once per file, not per row)
        for src in self.sources:
            for item in iter_source(src, base, rank, world_size):
                if src.limit is not None and item.index is not None and item.index >= src.limit:
                    continue  # rows come in file order: the rest of this file is past the limit too
                if isinstance(item, BadRow):
                    self._bad(item)
                    continue
                if src.match and not all(item.data.get(k) in allowed for k, allowed in src.match.items()):
                    self.stat_update("unmatched_rows")
                    continue
                file = rel.get(item.file)
                if file is None:
                    file = rel[item.file] = (
                        item.file if item.file.startswith("hub://") else os.path.relpath(item.file, base)
                    )
                doc = self._prompt_doc(src, file, item.index, item.data)
                if doc is None:
                    col = src.columns.prompt or src.columns.messages
                    self._bad(BadRow(item.file, item.index, f"no prompt (column {col!r} missing or empty)"))
                    continue
                self.stat_update("prompts")
                yield doc
