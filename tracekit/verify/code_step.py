"""Verify step for code traces: run the answer's last code block against the prompt's tests."""

from __future__ import annotations

import json

from datatrove.data import Document

from tracekit.verify.base import VerifyResult, VerifyStep
from tracekit.verify.code.config import CodeVerifyConfig
from tracekit.verify.code.extract import extract_code
from tracekit.verify.code.item import CodeItem
from tracekit.verify.code.verifier import CodeVerifier


class CodeVerifyStep(VerifyStep):
    """Applies to traces whose `domain` is in `config.domains` (default {"code"}) and whose `tests`
    (JSON text, any published shape) is non-empty. The code is the last ```python / ```cpp block of
    `answer_text` (the completion when there is none); an answer without a code block is `incorrect`.
    The sandbox is checked when the step is built, so a machine where bubblewrap cannot run stops the
    build with the reason before any sampling.

    Example:
        >>> step = CodeVerifyStep(config=CodeVerifyConfig(sandbox="process"))  # doctest: +SKIP
        >>> list(step.run(docs))  # writes verdict / verify_method / verify_detail  # doctest: +SKIP
    """

    name = "verify code"

    def __init__(self, *, config: CodeVerifyConfig | None = None) -> None:
        self.config = config or CodeVerifyConfig()
        super().__init__(batch_size=self.config.batch_size, keep_errors=self.config.keep_errors)
        self.verifier = CodeVerifier(self.config)
        self.domains = frozenset(self.config.domains)

    def applies(self, doc: Document) -> bool:
        md = doc.metadata
        tests = md.get("tests")
        return md.get("domain") in self.domains and isinstance(tests, str) and bool(tests.strip())

    def verify_batch(self, docs: list[Document]) -> list[VerifyResult]:
        results: list[VerifyResult | None] = [None] * len(docs)
        todo: list[tuple[int, CodeItem]] = []
        for i, doc in enumerate(docs):
            found = extract_code(doc.metadata.get("answer_text") or doc.text)
            if found is None:
                detail = json.dumps({"reason": "no_code"})
                results[i] = VerifyResult(verdict="incorrect", method=self.verifier.method, detail=detail)
                continue
            code, language = found
            todo.append((i, CodeItem(code=code, language=language, tests=doc.metadata["tests"])))
        verdicts = self.verifier.verify_many([item for _, item in todo])
        for (i, item), verdict in zip(todo, verdicts, strict=True):
            results[i] = verdict.to_verify_result(extracted_answer=item.code)
        return [r for r in results if r is not None]
