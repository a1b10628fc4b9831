"""Score samples with the verifiers the build trusts: `MathVerifier` (gold answers) and `CodeVerifier`
(tests in the sandbox). Both run in batches over all of an evaluation's samples at once.
"""

from __future__ import annotations

import json
import re

from tracekit.eval.sample import EvalSample
from tracekit.parse.split import split_reasoning
from tracekit.verify.code import CodeItem, CodeVerifier, CodeVerifyConfig, extract_code
from tracekit.verify.math import MathVerifier
from tracekit.verify.math.normalize import clean_answer


def _parse(s: EvalSample) -> None:
    split = split_reasoning(s.completion or "", s.reasoning)
    s.answer_text = split.answer_text
    s.think_format = split.think_format
    s.think_blocks = split.think_blocks
    if split.reasoning is not None and s.reasoning is None:
        s.reasoning = split.reasoning


def score_samples(samples: list[EvalSample], *, sandbox: str = "bwrap", workers: int | None = None) -> None:
    """Fill `verdict`, `verify_method`, `verify_detail`, `extracted_answer` of every sample in place.

    A sample whose request failed is `error` (method `teacher`); it is never counted correct.

    Example:
        >>> score_samples(samples, sandbox="process")  # doctest: +SKIP
    """
    for s in samples:
        _parse(s)
    live = [s for s in samples if not s.error]
    for s in samples:
        if s.error:
            s.verdict, s.verify_method, s.verify_detail = "error", "teacher", s.error[:500]
    math = [s for s in live if s.problem.domain == "math"]
    if math:
        verifier = MathVerifier()
        try:
            pairs = [(s.answer_text or "", s.problem.gold_answer or "") for s in math]
            for s, r in zip(math, verifier.verify_many(pairs, workers=workers), strict=True):
                s.verdict, s.verify_method, s.verify_detail = r.verdict, r.method, r.detail
                s.extracted_answer = r.extracted_answer
        finally:
            verifier.close()
    code = [s for s in live if s.problem.domain == "code"]
    if not code:
        return
    todo: list[tuple[EvalSample, CodeItem]] = []
    with CodeVerifier(CodeVerifyConfig(sandbox=sandbox, workers=workers)) as cv:  # type: ignore[arg-type]
        for s in code:
            found = extract_code(s.answer_text or s.completion)
            if found is None:
                s.verdict, s.verify_method = "incorrect", cv.method
                s.verify_detail = json.dumps({"reason": "no_code"})
                continue
            todo.append((s, CodeItem(code=found[0], language=found[1], tests=s.problem.tests)))
        for (s, item), v in zip(todo, cv.verify_many([it for _, it in todo]), strict=True):
            r = v.to_verify_result(extracted_answer=item.code)
            s.verdict, s.verify_method, s.verify_detail = r.verdict, r.method, r.detail
            s.extracted_answer = r.extracted_answer


def answer_key(s: EvalSample) -> str | None:
    """What makes two final answers "the same" for the diversity count: the normalised math answer
    (whitespace removed), or the program with blank lines and trailing spaces removed. None: no answer.
    """
    a = s.extracted_answer
    if not a:
        return None
    if s.problem.domain == "math":
        return re.sub(r"\s+", "", clean_answer(a).text) or None
    lines = [line.rstrip() for line in a.splitlines() if line.strip()]
    return "\n".join(lines) or None
