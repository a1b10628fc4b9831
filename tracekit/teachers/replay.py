"""ReplayTeacher (`teacher: {kind: dataset}`): re-use traces that already exist in the sources."""

from __future__ import annotations

from collections.abc import Iterator

from datatrove.data import Document, DocumentsPipeline

from tracekit.sources.config import SourceConfig
from tracekit.teachers.base import Teacher, render_messages, template_hash


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


class ReplayTeacher(Teacher):
    """One trace per existing generation of a prompt row.

    `generations` may hold a string or a list of strings per row; `messages` may hold a chat whose
    last assistant turn is the trace (earlier turns become the prompt messages). A separate
    `reasoning` column (string or list aligned with the generations) and a `finish_reason` column are
    carried over when the recipe names them.
    """

    name = "replay"
    backend = "dataset"

    def __init__(
        self,
        *,
        config_hash: str,
        model: str | None,
        sources: list[SourceConfig],
        max_generations: int | None = None,
    ) -> None:
        super().__init__(config_hash=config_hash, model=model)
        self.sources = {s.name: s for s in sources}
        self.max_generations = max_generations

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        for prompt_doc in data or []:
            md = prompt_doc.metadata
            src = self.sources[md["source"]]
            tmpl = src.prompt_template or "{prompt}"
            messages = md.get("_messages")
            if messages and messages[-1]["role"] == "assistant" and "_generations" not in md:
                gens: list[object] = [messages[-1]["content"]]
                prompt_msgs = messages[:-1]
            else:
                gens = _as_list(md.get("_generations"))
                prompt_msgs = render_messages(md["prompt"], system_prompt=src.system_prompt, template=tmpl)
            reasonings = _as_list(md.get("_reasoning"))
            finishes = _as_list(md.get("_finish_reason"))
            if not gens:
                self.stat_update("prompts_without_generations")
            thash = template_hash(src.system_prompt, tmpl)
            for i, g in enumerate(gens[: self.max_generations]):
                trace = self.new_trace(
                    prompt_doc,
                    i,
                    completion="" if g is None else str(g),
                    prompt_messages=prompt_msgs,
                    template_hash=thash,
                )
                if i < len(reasonings) and reasonings[i] is not None:
                    trace.metadata["reasoning"] = str(reasonings[i])
                if i < len(finishes) and finishes[i] is not None:
                    trace.metadata["finish_reason"] = str(finishes[i])
                self.stat_update("traces")
                yield trace
