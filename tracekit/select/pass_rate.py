"""PassRateStep: each prompt's pass rate under a student (or the source's own), and the keep window."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from tracekit.select.base import add_selection, drop, in_window, is_dropped, through_model
from tracekit.select.config import ColumnPassRate, PassRateConfig, ReplayStudent

# prompt-document keys the source reader fills for this step (raw source values)
PASS_RATE_KEY = "_pass_rate"
STUDENT_KEY = "_student"
_REPLAY_KEYS = ("_generations", "_messages", "_reasoning", "_finish_reason")


def pass_rate_of(verdicts: Iterable[str | None]) -> tuple[float | None, dict[str, int]]:
    """correct / (correct + incorrect): the share of the decided answers that were right (None when
    no answer was decided: no verifier applies, or every request or verification failed).

        >>> pass_rate_of(["correct", "incorrect", "error", "unverified", "correct"])
        (0.6666666666666666, {'correct': 2, 'incorrect': 1, 'error': 1, 'unverified': 1})
    """
    counts = {"correct": 0, "incorrect": 0, "error": 0, "unverified": 0}
    for v in verdicts:
        counts[v if v in counts else "unverified"] += 1
    decided = counts["correct"] + counts["incorrect"]
    return (counts["correct"] / decided if decided else None), counts


def source_pass_rate(value: Any) -> float | None:
    """A pass rate from a source column: a number in [0, 1] (a string of one too); else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        rate = float(value)
    except (TypeError, ValueError):
        return None
    return rate if math.isfinite(rate) and 0.0 <= rate <= 1.0 else None


class PassRateStep(PipelineStep):
    """Write `pass_rate` on each prompt document and drop those outside `config.keep`.

    With a student (`student`: a teacher step, e.g. `VllmTeacher`, `OpenAITeacher` or `ReplayTeacher`
    over the student's answers), every prompt's answers go through `checks` (the build's parse and
    verify steps) and its pass rate is correct / decided (see `pass_rate_of`). With
    `ColumnPassRate` the source's value is taken (a value that is not a number in [0, 1] counts as
    none). Prompts with no pass rate, and prompts of sources outside `config.sources`, are kept.
    The student's counts go into the prompt's `selection` record.
    """

    type = "🎯 - SELECT"
    name = "pass rate"

    def __init__(
        self,
        *,
        config: PassRateConfig,
        student: PipelineStep | None = None,
        checks: list[PipelineStep] | None = None,
        student_name: str | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.student = student
        self.checks = checks or []
        self.student_name = student_name
        self.sources = None if config.sources is None else frozenset(config.sources)

    def wants(self, doc: Document) -> bool:
        return not is_dropped(doc) and (self.sources is None or doc.metadata["source"] in self.sources)

    def _student_input(self, doc: Document) -> list[Document]:
        md = dict(doc.metadata)
        if isinstance(self.config, ReplayStudent):  # the student's answers replayed, not the teacher's
            for k in _REPLAY_KEYS:
                md.pop(k, None)
            md["_generations"] = md.get(STUDENT_KEY)
        return [Document(text=doc.text, id=doc.id, metadata=md)]

    def _decide(self, doc: Document, rate: float | None) -> None:
        doc.metadata["pass_rate"] = rate
        if rate is None:
            self.stat_update("no_pass_rate")
            return
        reason = in_window(rate, self.config.keep)
        if reason is not None:
            drop(doc, reason)
        self.stat_update(reason or "in_window")

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        cfg = self.config
        if isinstance(cfg, ColumnPassRate):
            for doc in data or []:
                raw = doc.metadata.pop(PASS_RATE_KEY, None)
                if self.wants(doc):
                    self._decide(doc, source_pass_rate(raw))
                yield doc
            return
        assert self.student is not None, "a student pass rate needs the student's teacher step"
        student = self.student

        def answers(stream: Iterator[Document]) -> Iterator[Document]:
            out: Iterable[Document] = student.run(stream, rank, world_size)
            for step in self.checks:
                out = step.run(out, rank, world_size)
            return iter(out)

        for doc, traces in through_model(data or [], wants=self.wants, inputs=self._student_input, run=answers):
            doc.metadata.pop(STUDENT_KEY, None)
            if traces is not None:
                # a failed request is no evidence either way, whatever a verifier made of its empty text
                verdicts = ("error" if t.metadata.get("error") else t.metadata.get("verdict") for t in traces)
                rate, counts = pass_rate_of(verdicts)
                self._decide(doc, rate)
                add_selection(doc, "student", {"model": self.student_name, "samples": len(traces), **counts})
                self.stat_update("student_answers", value=len(traces))
            yield doc
