"""Base of the teachers: turn prompt documents into trace documents (one per sample)."""

from __future__ import annotations

import functools
import json
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

from tracekit.record import empty_record, seed_from_trace_id, stable_hash, trace_id

# prompt-document keys that are replay inputs, not ledger columns
PRIVATE_KEYS = ("_generations", "_messages", "_reasoning", "_finish_reason")


def render_messages(prompt: str, *, system_prompt: str | None, template: str) -> list[dict[str, str]]:
    """The request messages: optional system turn, then the user turn from the template."""
    msgs = [{"role": "system", "content": system_prompt}] if system_prompt else []
    msgs.append({"role": "user", "content": template.replace("{prompt}", prompt)})
    return msgs


class Teacher(PipelineStep):
    """Takes prompt documents, yields one trace document per sample.

    Subclasses fill `completion` (and, when the backend gives them, `reasoning`, `finish_reason`,
    token counts, latency). Ids: trace_id = hash(prompt_id, row, sample index, teacher config hash).
    """

    type = "🎓 - TEACHER"
    name = "teacher"
    backend = "base"

    def __init__(
        self, *, config_hash: str, model: str | None, sampling: dict[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.config_hash = config_hash
        self.model = model
        self.sampling_json = json.dumps(sampling or {}, sort_keys=True)

    def new_trace(
        self,
        prompt_doc: Document,
        sample_index: int,
        *,
        completion: str,
        prompt_messages: list[dict[str, str]],
        template_hash: str,
        config_hash: str | None = None,
        sampling_json: str | None = None,
    ) -> Document:
        """A trace document for sample `sample_index` of a prompt (ids, seed and teacher columns set).

        `config_hash`/`sampling_json` override the teacher's for this trace (live teachers use per-source
        settings, so a source's own template or sampling gives its traces their own ids and seeds).
        """
        config_hash = config_hash or self.config_hash
        pmd = prompt_doc.metadata
        md = empty_record()
        for k, v in pmd.items():
            if k not in PRIVATE_KEYS:
                md[k] = v
        tid = trace_id(
            pmd["prompt_id"], f"{pmd['source_file']}:{pmd['row_index']}", sample_index, config_hash
        )
        md.update(
            trace_id=tid,
            sample_index=sample_index,
            prompt_messages=prompt_messages,
            teacher_model=self.model,
            teacher_backend=self.backend,
            teacher_config_hash=config_hash,
            sampling=sampling_json or self.sampling_json,
            seed=seed_from_trace_id(tid),
            template_hash=template_hash,
            completion=completion,
        )
        return Document(text=completion, id=tid, metadata=md)


@functools.lru_cache(maxsize=256)
def template_hash(system_prompt: str | None, template: str) -> str:
    return stable_hash("template", system_prompt or "", template)
