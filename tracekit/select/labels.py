"""LabelStep: an LLM judge rates each prompt's difficulty (1-10) and names its domain from a list.

The judge is a teacher step (vLLM or OpenAI-compatible, with the request cache that makes a re-run
task send only unanswered questions). Its answer is read after any reasoning block, and must be one
integer 1-10 (difficulty) or name exactly one of the recipe's domains (domain); anything else, or a
request that failed, drops the prompt as `label_failed`. Every question and raw answer is recorded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from tracekit.parse.split import split_reasoning
from tracekit.record import stable_hash
from tracekit.select.base import (
    DROP_LABEL_FAILED,
    DROP_TOO_EASY,
    DROP_TOO_HARD,
    add_selection,
    drop,
    is_dropped,
    through_model,
)
from tracekit.select.config import LabelsConfig

_SCALE = re.compile(r"\b1\s*(?:-|–|to)\s*10\b|(?:/|\bout\s+of)\s*10\b", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\d.])-?\d+(?:\.\d+)?(?!\d)")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def parse_difficulty(answer: str) -> int | None:
    """The one integer 1-10 an answer states (`7`, `Difficulty: 7/10`, `7 out of 10`), else None.

        >>> [parse_difficulty(a) for a in ("7", "**8/10**", "On a 1-10 scale, 3.", "6 or 7", "11", "6.5", "hard")]
        [7, 8, 3, None, None, None, None]
    """
    values = {float(x) for x in _NUMBER.findall(_SCALE.sub(" ", answer))}
    if len(values) != 1:
        return None
    (v,) = values
    return int(v) if v.is_integer() and 1 <= v <= 10 else None


def _norm(text: str) -> str:
    return _NOT_WORD.sub(" ", text.lower()).strip()


def parse_domain(answer: str, domains: list[str]) -> str | None:
    """The one domain of `domains` an answer names (case and punctuation ignored), else None. An
    answer naming several is refused unless one of them contains the others ("algebraic number
    theory" over "number theory").

        >>> doms = ["Algebra", "Number theory", "Algebraic number theory", "Geometry"]
        >>> answers = ("geometry.", "**Number Theory**", "algebraic number theory", "algebra or geometry",
        ...            "number theory, more precisely algebraic number theory", "algebra or algebraic number theory")
        >>> [parse_domain(a, doms) for a in answers]
        ['Geometry', 'Number theory', 'Algebraic number theory', None, 'Algebraic number theory', None]
    """
    said = _norm(answer)
    names = {_norm(d): d for d in domains}
    if said in names:
        return names[said]
    found = [n for n in names if n and re.search(rf"(?<![0-9a-z]){re.escape(n)}(?![0-9a-z])", said)]
    if not found:
        return None
    longest = max(found, key=len)
    inside = all(re.search(rf"(?<![0-9a-z]){re.escape(n)}(?![0-9a-z])", longest) for n in found)
    return names[longest] if inside else None


class LabelStep(PipelineStep):
    """Ask `judge` (a teacher step) the questions of `config.ask` about every prompt still kept.

    Writes `difficulty_rating` and `domain_label`, drops the prompt as `label_failed` when an answer
    cannot be read (and as too_easy / too_hard outside `keep_difficulty`), and records each question
    with the judge's raw answer under `labels` in the prompt's `selection` record.

    With `after_upstream`, the task's prompts are all read (and so the steps before have ended) before
    the judge gets its first question: a student's vLLM engine stops before the judge's starts, so
    each has the task's GPUs to itself instead of both asking vLLM for most of their memory at once.
    """

    type = "🏷️ - SELECT"
    name = "labels"

    def __init__(
        self,
        *,
        config: LabelsConfig,
        judge: PipelineStep,
        judge_name: str | None = None,
        after_upstream: bool = False,
    ) -> None:
        super().__init__()
        self.config = config
        self.judge = judge
        self.judge_name = judge_name
        self.after_upstream = after_upstream
        self.sources = None if config.sources is None else frozenset(config.sources)

    def question(self, ask: str, prompt: str) -> str:
        cfg = self.config
        if ask == "difficulty":
            return cfg.difficulty_question.replace("{prompt}", prompt)
        listed = "\n".join(f"- {d}" for d in cfg.domains or [])
        return cfg.domain_question.replace("{domains}", listed).replace("{prompt}", prompt)

    def wants(self, doc: Document) -> bool:
        return not is_dropped(doc) and (self.sources is None or doc.metadata["source"] in self.sources)

    def _questions(self, doc: Document) -> list[Document]:
        md = doc.metadata
        out = []
        for ask in self.config.ask:
            template = self.config.difficulty_question if ask == "difficulty" else self.config.domain_question
            q = self.question(ask, md["prompt"])
            qmd = {
                "source": md["source"],
                "source_file": md["source_file"],
                "row_index": md["row_index"],
                "prompt": q,
                # the question's own id: a changed question or domain list is a new request, not a cached one
                "prompt_id": stable_hash("label", ask, template, self.config.domains, md["prompt_id"]),
                "_ask": ask,
            }
            out.append(Document(text=q, id=f"{doc.id}#{ask}", metadata=qmd))
        return out

    def _read(self, ask: str, answer: Document) -> tuple[Any, dict[str, Any]]:
        md = answer.metadata
        raw = md.get("completion") or ""
        entry: dict[str, Any] = {"ask": ask, "question": md["prompt"], "answer": raw}
        if md.get("reasoning"):
            entry["reasoning"] = md["reasoning"]
        if md.get("error"):
            entry["error"] = md["error"]
            return None, entry
        text = split_reasoning(raw, md.get("reasoning")).answer_text
        label: Any = parse_difficulty(text) if ask == "difficulty" else parse_domain(text, self.config.domains or [])
        entry["label"] = label
        return label, entry

    def _label(self, doc: Document, answers: list[Document]) -> None:
        md = doc.metadata
        by_ask = {a.metadata["_ask"]: a for a in answers}
        entries = []
        failed = False
        for ask in self.config.ask:
            got = by_ask.get(ask)
            label, entry = (None, {"ask": ask, "error": "no answer"}) if got is None else self._read(ask, got)
            entries.append(entry)
            failed |= label is None
            md["difficulty_rating" if ask == "difficulty" else "domain_label"] = label
        add_selection(doc, "labels", {"judge": self.judge_name, "asked": entries})
        if failed:
            drop(doc, DROP_LABEL_FAILED)
            self.stat_update(DROP_LABEL_FAILED)
            return
        window = self.config.keep_difficulty
        rating = md.get("difficulty_rating")
        if window is not None and rating is not None and not window[0] <= rating <= window[1]:
            reason = DROP_TOO_EASY if rating < window[0] else DROP_TOO_HARD
            drop(doc, reason)
            self.stat_update(reason)
            return
        self.stat_update("labelled")

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        judge = self.judge

        def ask(stream: Iterator[Document]) -> Iterator[Document]:
            return iter(judge.run(stream, rank, world_size))

        prompts = list(data or []) if self.after_upstream else (data or [])
        for doc, answers in through_model(prompts, wants=self.wants, inputs=self._questions, run=ask):
            if answers is not None:
                self._label(doc, answers)
            yield doc
