"""PassRateStep: each prompt's pass rate under one or several students (or the source's own), and the
keep window."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from tracekit.select.base import add_selection, drop, in_window, is_dropped, through_model
from tracekit.select.config import ColumnPassRate, PassRateConfig, ReplayStudent, StudentConfig, students_of

# prompt-document keys the source reader fills for this step (raw source values)
PASS_RATE_KEY = "_pass_rate"
STUDENT_KEY = "_student"
_REPLAY_KEYS = ("_generations", "_messages", "_reasoning", "_finish_reason")
_SEEN = "_students_seen"  # what each student made of the prompt so far (until the last one has answered)


def student_key(index: int) -> str:
    """Prompt-document key of the `index`-th student's replayed answers (`kind: dataset`).

        >>> student_key(0), student_key(2)
        ('_student', '_student_2')
    """
    return STUDENT_KEY if index == 0 else f"{STUDENT_KEY}_{index}"


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


def combined_pass_rate(rates: Iterable[float | None]) -> float | None:
    """A prompt's pass rate under several students: the highest of theirs (a question is as easy as the
    student that finds it easiest), None when no student has one.

        >>> combined_pass_rate([0.25, None, 0.5]), combined_pass_rate([None, 0.0]), combined_pass_rate([None])
        (0.5, 0.0, None)
    """
    known = [r for r in rates if r is not None]
    return max(known) if known else None


class PassRateStep(PipelineStep):
    """Write `pass_rate` on each prompt document and drop those outside the window `keep`.

    With students (`student`: a teacher step, e.g. `VllmTeacher`, `OpenAITeacher` or `ReplayTeacher`
    over the student's answers; a list of them, in the order of the `config` list, for several),
    every prompt's answers go through `checks` (the build's parse and verify steps) and each student's
    pass rate is correct / decided (see `pass_rate_of`). `student_pass_rates` lists them, and
    `pass_rate` is the highest (`combined_pass_rate`), which the window decides on. With
    `ColumnPassRate` the source's value is taken (a value that is not a number in [0, 1] counts as
    none). Prompts with no pass rate, and prompts of sources outside `sources`, are kept. Each
    student's counts go into the prompt's `selection` record (`student`; `students` for a list).

    Several students answer one after another: the task's prompts all go through one student (whose
    teacher step, a vLLM engine for instance, ends with them) before the next student sees any, so two
    engines never hold the task's GPUs at once; the task holds its prompts in memory meanwhile.
    """

    type = "🎯 - SELECT"
    name = "pass rate"

    def __init__(
        self,
        *,
        config: PassRateConfig,
        student: PipelineStep | list[PipelineStep] | None = None,
        checks: list[PipelineStep] | None = None,
        student_name: str | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.several = isinstance(config, list)
        configs: list[StudentConfig] = [c for _, c in students_of(config)]
        steps = student if isinstance(student, list) else [] if student is None else [student]
        if len(steps) != len(configs):
            raise ValueError(f"pass rate: {len(configs)} student config(s) but {len(steps)} student step(s)")
        names = [c.model for c in configs] if self.several else [student_name] * len(configs)
        self.students = list(zip(names, steps, configs, strict=True))
        self.checks = checks or []
        window = config[0] if isinstance(config, list) else config
        self.keep = window.keep
        self.sources = None if window.sources is None else frozenset(window.sources)

    @property
    def student(self) -> PipelineStep | None:
        """The student's teacher step (the first one's, with several)."""
        return self.students[0][1] if self.students else None

    def wants(self, doc: Document) -> bool:
        return not is_dropped(doc) and (self.sources is None or doc.metadata["source"] in self.sources)

    def _student_input(self, doc: Document, cfg: StudentConfig, key: str) -> list[Document]:
        md = {k: v for k, v in doc.metadata.items() if k != _SEEN}
        if isinstance(cfg, ReplayStudent):  # the student's answers replayed, not the teacher's
            for k in _REPLAY_KEYS:
                md.pop(k, None)
            md["_generations"] = md.get(key)
        return [Document(text=doc.text, id=doc.id, metadata=md)]

    def _decide(self, doc: Document, rate: float | None) -> None:
        doc.metadata["pass_rate"] = rate
        if rate is None:
            self.stat_update("no_pass_rate")
            return
        reason = in_window(rate, self.keep)
        if reason is not None:
            drop(doc, reason)
        self.stat_update(reason or "in_window")

    def _record(self, doc: Document, name: str | None, traces: list[Document] | None) -> None:
        if traces is None:  # not asked (dropped before, or a source outside `sources`)
            return
        # a failed request is no evidence either way, whatever a verifier made of its empty text
        verdicts = ("error" if t.metadata.get("error") else t.metadata.get("verdict") for t in traces)
        rate, counts = pass_rate_of(verdicts)
        doc.metadata.setdefault(_SEEN, []).append({"model": name, "samples": len(traces), **counts, "pass_rate": rate})
        self.stat_update("student_answers", value=len(traces))

    def _finish(self, doc: Document) -> None:
        md = doc.metadata
        for i in range(len(self.students)):
            md.pop(student_key(i), None)
        seen = md.pop(_SEEN, None)
        if not seen:
            return
        md["student_pass_rates"] = [{"model": s["model"], "pass_rate": s["pass_rate"]} for s in seen]
        if self.several:
            add_selection(doc, "students", seen)
        else:
            add_selection(doc, "student", {k: v for k, v in seen[0].items() if k != "pass_rate"})
        self._decide(doc, combined_pass_rate(s["pass_rate"] for s in seen))

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        cfg = self.config
        if isinstance(cfg, ColumnPassRate):
            for doc in data or []:
                raw = doc.metadata.pop(PASS_RATE_KEY, None)
                if self.wants(doc):
                    self._decide(doc, source_pass_rate(raw))
                yield doc
            return
        assert self.students, "a student pass rate needs the student's teacher step"
        docs: Iterable[Document] = data or []
        last = len(self.students) - 1
        for i, (name, student, student_cfg) in enumerate(self.students):
            key = student_key(i)
            answered = through_model(
                docs,
                wants=self.wants,
                inputs=lambda doc, c=student_cfg, k=key: self._student_input(doc, c, k),  # type: ignore[misc]
                run=self._answers(student, rank, world_size),
            )
            if i < last:  # every prompt through this student (its engine stops) before the next one starts
                held = []
                for doc, traces in answered:
                    self._record(doc, name, traces)
                    held.append(doc)
                docs = held
                continue
            for doc, traces in answered:
                self._record(doc, name, traces)
                self._finish(doc)
                yield doc

    def _answers(self, student: PipelineStep, rank: int, world_size: int) -> Any:
        def run(stream: Iterator[Document]) -> Iterator[Document]:
            out: Iterable[Document] = student.run(stream, rank, world_size)
            for step in self.checks:
                out = step.run(out, rank, world_size)
            return iter(out)

        return run
