"""MathVerifyStep: the datatrove step that verifies math traces against their gold answer, or against
the majority answer of their prompt's samples when there is no gold (or the gold is repaired).

Example:
    >>> from datatrove.data import Document
    >>> step = MathVerifyStep()
    >>> doc = Document(id="t1", text="<think>..</think>\\\\boxed{2}", metadata={"domain": "math",
    ...     "gold_answer": "2", "answer_text": "\\\\boxed{2}", "kept": True})
    >>> list(step.run([doc]))[0].metadata["verdict"]
    'correct'
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from datatrove.data import Document

from tracekit.parse.split import split_reasoning
from tracekit.verify.base import VerifyResult, VerifyStep
from tracekit.verify.majority import (
    DETAIL_NO_MAJORITY,
    GOLD_GIVEN,
    GOLD_MAJORITY,
    GOLD_REPAIRED,
    METHOD_MAJORITY,
    Vote,
    casts_a_vote,
    count_votes,
    group_agreeing,
)
from tracekit.verify.math.config import DEFAULT_MIN_AGREEMENT, DEFAULT_REPAIR_AGREEMENT, MathVerifyConfig
from tracekit.verify.math.extract import extract_answer
from tracekit.verify.math.verifier import MathVerifier


def _has_gold(md: dict[str, Any]) -> bool:
    gold = md.get("gold_answer")
    return isinstance(gold, str) and bool(gold.strip())


def _prompt_key(md: dict[str, Any]) -> tuple[Any, ...]:
    return (md.get("source"), md.get("source_file"), md.get("row_index"), md.get("prompt_id"))


def by_prompt(data: Iterable[Document]) -> Iterator[list[Document]]:
    """Consecutive documents of the same prompt row, as lists (a prompt's samples arrive together)."""
    group: list[Document] = []
    for doc in data:
        if group and _prompt_key(doc.metadata) != _prompt_key(group[0].metadata):
            yield group
            group = []
        group.append(doc)
    if group:
        yield group


class MathVerifyStep(VerifyStep):
    """Verify traces whose `domain` is in `config.domains` and that have a non-empty `gold_answer`
    (with `no_gold: majority`, also those without one).

    The answer is metadata `answer_text` (the parser's text after the reasoning block); without it, the
    text after `</think>` of `doc.text`. With `no_gold` or `gold_repair` set, the step takes each
    prompt's samples together (they arrive one after the other) and votes among them (see
    `tracekit/verify/majority.py`); samples whose request failed (`error`) do not vote.
    """

    name = "math verify"

    def __init__(
        self, *, config: MathVerifyConfig | None = None, batch_size: int = 64, keep_errors: bool = False
    ) -> None:
        super().__init__(batch_size=batch_size, keep_errors=keep_errors)
        self.config = config or MathVerifyConfig()
        self.domains = set(self.config.domains)
        self._verifier: MathVerifier | None = None

    @property
    def verifier(self) -> MathVerifier:
        if self._verifier is None:  # created lazily: the step is pickled to executor workers
            self._verifier = MathVerifier(self.config)
        return self._verifier

    def applies(self, doc: Document) -> bool:
        md = doc.metadata
        if md.get("domain") not in self.domains:
            return False
        return _has_gold(md) or self.config.no_gold == "majority"

    @staticmethod
    def _answer_text(doc: Document) -> str:
        text = doc.metadata.get("answer_text")
        return split_reasoning(doc.text or "").answer_text if text is None else text

    def verify_batch(self, docs: list[Document]) -> list[VerifyResult]:
        out = []
        for d in docs:
            out.append(self.verifier.verify(answer_text=self._answer_text(d), gold=d.metadata["gold_answer"]))
            d.metadata["gold_source"] = GOLD_GIVEN
        return out

    # -- votes ---------------------------------------------------------------------------------
    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        if not self.config.votes:
            yield from super().run(data, rank, world_size)
            return
        for group in by_prompt(data):
            todo = [d for d in group if self._for_this_step(d) and self.applies(d)]
            if todo:
                with self.track_time(unit="prompt"):
                    self._verify_prompt(todo)
            yield from group

    def _verify_prompt(self, docs: list[Document]) -> None:
        cfg = self.config
        if _has_gold(docs[0].metadata):
            results = self.verify_batch(docs)
            if cfg.gold_repair == "majority" and not any(r.verdict == "correct" for r in results):
                need = cfg.repair_min_agreement or DEFAULT_REPAIR_AGREEMENT
                vote, answers = self._vote(docs, need)
                self._record_vote(docs, vote, answers)
                if vote.winner is not None:
                    self._decide_by(docs, vote, answers, GOLD_REPAIRED)
                    return
            for d, r in zip(docs, results, strict=True):
                self._apply(d, r)
            return
        vote, answers = self._vote(docs, cfg.min_agreement or DEFAULT_MIN_AGREEMENT)
        self._record_vote(docs, vote, answers)
        if vote.winner is not None:
            self._decide_by(docs, vote, answers, GOLD_MAJORITY)
            return
        self.stat_update("no_majority")
        for d, ans in zip(docs, answers, strict=True):
            self._apply(d, VerifyResult("unverified", METHOD_MAJORITY, DETAIL_NO_MAJORITY, ans))

    def _vote(self, docs: list[Document], min_agreement: float) -> tuple[Vote, list[str | None]]:
        """Group the samples that got an answer from the model (failed requests do not vote)."""
        voting = [not d.metadata.get("error") for d in docs]
        texts = [self._answer_text(d) for d in docs]
        answers = [
            extract_answer(t or "", allow_bare_number=self.config.allow_bare_number) if v else None
            for t, v in zip(texts, voting, strict=True)
        ]

        def agree(i: int, j: int) -> bool:
            return self._matches(texts[i], answers[j])

        # a refusal counts as a voter that joins no group, like a sample without an answer
        groups = group_agreeing([a if casts_a_vote(a) else None for a in answers], agree)
        return count_votes(groups, voters=sum(voting), min_agreement=min_agreement), answers

    def _matches(self, answer_text: str, reference: str | None) -> bool:
        return reference is not None and self._against(answer_text, reference).verdict == "correct"

    def _against(self, answer_text: str, reference: str) -> VerifyResult:
        # boxed, so the reference is taken whole as the gold (it came out of a sample's answer)
        return self.verifier.verify(answer_text=answer_text, gold="\\boxed{" + reference + "}")

    @staticmethod
    def _record_vote(docs: list[Document], vote: Vote, answers: list[str | None]) -> None:
        for d in docs:
            d.metadata["majority_share"] = vote.share
            d.metadata["majority_answer"] = answers[vote.winner[0]] if vote.winner else None

    def _decide_by(self, docs: list[Document], vote: Vote, answers: list[str | None], source: str) -> None:
        """Verdicts against the winning group's answer: its members are correct, every other sample is
        compared with it by the verifier."""
        assert vote.winner is not None
        reference = answers[vote.winner[0]]
        assert reference is not None
        members = set(vote.winner)
        self.stat_update(f"gold_{source}")
        for i, d in enumerate(docs):
            d.metadata["gold_source"] = source
            if i in members:
                res = VerifyResult("correct", METHOD_MAJORITY, f"majority {len(members)}/{vote.voters}", answers[i])
            else:
                r = self._against(self._answer_text(d), reference)
                res = VerifyResult(r.verdict, METHOD_MAJORITY, r.detail, r.extracted_answer)
            self._apply(d, res)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_verifier"] = None
        return state
