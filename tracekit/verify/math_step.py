"""MathVerifyStep: the datatrove step that verifies math traces against their gold answer.

Example:
    >>> from datatrove.data import Document
    >>> step = MathVerifyStep()
    >>> doc = Document(id="t1", text="<think>..</think>\\\\boxed{2}", metadata={"domain": "math",
    ...     "gold_answer": "2", "answer_text": "\\\\boxed{2}", "kept": True})
    >>> list(step.run([doc]))[0].metadata["verdict"]
    'correct'
"""

from __future__ import annotations

from datatrove.data import Document

from tracekit.verify.base import VerifyResult, VerifyStep
from tracekit.verify.math.config import MathVerifyConfig
from tracekit.verify.math.extract import split_reasoning
from tracekit.verify.math.verifier import MathVerifier


class MathVerifyStep(VerifyStep):
    """Verify traces whose `domain` is in `config.domains` and that have a non-empty `gold_answer`.

    The answer is metadata `answer_text` (the parser's text after the reasoning block); without it, the
    text after `</think>` of `doc.text`.
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
        gold = md.get("gold_answer")
        return md.get("domain") in self.domains and isinstance(gold, str) and bool(gold.strip())

    def verify_batch(self, docs: list[Document]) -> list[VerifyResult]:
        out = []
        for d in docs:
            answer_text = d.metadata.get("answer_text")
            if answer_text is None:
                answer_text = split_reasoning(d.text or "")
            out.append(self.verifier.verify(answer_text=answer_text, gold=d.metadata["gold_answer"]))
        return out

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_verifier"] = None
        return state
