"""What every verifier returns, and the base class of the verify pipeline steps."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

from tracekit.record import Verdict


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """One verdict. `method` names what decided it, `detail` says why (no_answer, timeout, ...)."""

    verdict: Verdict
    method: str
    detail: str = ""
    extracted_answer: str | None = None


METHOD_JUDGE = "judge"  # verify_method of every verdict an LLM judge decided

# Drop reasons written by every verify step (public names: they show in stats and the card).
DROP_INCORRECT = "incorrect"
DROP_VERIFY_ERROR = "verify_error"


class VerifyStep(PipelineStep):
    """Base of the verify steps: decide a verdict for each applicable trace, in batches.

    Subclasses implement `applies(doc)` and `verify_batch(docs)`. The base writes `verdict`,
    `verify_method`, `verify_detail` (and `extracted_answer` when the verifier found one) into the
    trace's metadata, and drops incorrect traces (reason `incorrect`) and, unless
    `keep_errors=True`, traces whose verification broke (reason `verify_error`). A trace that is
    already dropped (e.g. truncated by the teacher) is still verified, so the ledger shows its verdict.
    """

    type = "✅ - VERIFY"
    name = "verify"
    # set by the engine for per-source settings: this step sees only / never these sources
    only_sources: frozenset[str] | None = None
    skip_sources: frozenset[str] = frozenset()

    def __init__(self, *, batch_size: int = 64, keep_errors: bool = False, reject: bool = True) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.keep_errors = keep_errors
        self.reject = reject  # False: verdicts are recorded, incorrect traces stay (s1K kept them)

    def applies(self, doc: Document) -> bool:
        raise NotImplementedError

    def verify_batch(self, docs: list[Document]) -> list[VerifyResult]:
        raise NotImplementedError

    def _apply(self, doc: Document, res: VerifyResult) -> None:
        md = doc.metadata
        md["verdict"] = res.verdict
        md["verify_method"] = res.method
        md["verify_detail"] = res.detail
        if res.extracted_answer is not None:
            md["extracted_answer"] = res.extracted_answer
        self.stat_update(f"verdict_{res.verdict}")
        if not md.get("kept", True):
            return
        if res.verdict == "incorrect" and self.reject:
            md["kept"], md["drop_reason"] = False, DROP_INCORRECT
        elif res.verdict == "error" and not self.keep_errors:
            md["kept"], md["drop_reason"] = False, DROP_VERIFY_ERROR

    def _for_this_step(self, doc: Document) -> bool:
        src = doc.metadata.get("source")
        if self.only_sources is not None and src not in self.only_sources:
            return False
        return src not in self.skip_sources

    def _flush(self, batch: list[Document]) -> Iterator[Document]:
        todo = [d for d in batch if self._for_this_step(d) and self.applies(d)]
        if todo:
            with self.track_time(unit="batch"):
                results = self.verify_batch(todo)
            for d, r in zip(todo, results, strict=True):
                self._apply(d, r)
        yield from batch

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        batch: list[Document] = []
        for doc in data:
            batch.append(doc)
            if len(batch) >= self.batch_size:
                yield from self._flush(batch)
                batch = []
        if batch:
            yield from self._flush(batch)
