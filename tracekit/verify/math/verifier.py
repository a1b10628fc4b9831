"""MathVerifier: extract the final answer, compare it with the gold, return a three-way verdict.

Example:
    >>> v = MathVerifier(MathVerifyConfig())
    >>> v.verify(answer_text="The answer is \\\\boxed{\\\\frac{1}{2}}.", gold="0.5").verdict
    'correct'
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext

from tracekit.verify.base import METHOD_JUDGE, VerifyResult
from tracekit.verify.math.config import MathVerifyConfig
from tracekit.verify.math.equivalence import EquivalenceSettings, Unparseable, compare
from tracekit.verify.math.extract import extract_answer, extract_gold, mcq_letter
from tracekit.verify.math.judge import MathAnswerJudge
from tracekit.verify.math.normalize import CleanAnswer, clean_answer
from tracekit.verify.math.worker import SympyWorker

METHOD_RULE = "math_rule"

JudgeFn = Callable[..., bool | None]


class MathVerifier:
    """Rule-based math verifier with a hang-proof sympy worker and an optional LLM judge.

    `judge` overrides the configured judge with any callable `judge(gold=..., answer=...) -> bool | None`.
    """

    def __init__(self, config: MathVerifyConfig | None = None, *, judge: JudgeFn | None = None) -> None:
        self.config = config or MathVerifyConfig()
        self.settings = EquivalenceSettings(
            decimal_sig_digits=self.config.decimal_sig_digits,
            percent_as_fraction=self.config.percent_as_fraction,
            allow_set_relation_comp=self.config.allow_set_relation_comp,
            strict=self.config.strict,
        )
        self._worker = SympyWorker()
        jc = self.config.judge
        if judge is not None:
            self._judge: JudgeFn | None = judge
        elif jc.enabled:
            self._judge = MathAnswerJudge(
                base_url=jc.base_url,
                model=jc.model,
                api_key_env=jc.api_key_env,
                timeout_s=jc.timeout_s,
                max_tokens=jc.max_tokens,
            )
        else:
            self._judge = None

    # ------------------------------------------------------------------------------------ one pair
    def verify(self, *, answer_text: str, gold: str) -> VerifyResult:
        """Verdict for one answer text (the text after the reasoning block) against one gold answer."""
        gold_ans = extract_gold(gold) if gold else None
        if not gold_ans:
            return VerifyResult("error", METHOD_RULE, "gold_unparseable")
        gold_letter = mcq_letter(gold_ans, free=True) if len(gold_ans) < 60 else None
        if gold_letter is not None and _is_mcq_gold(gold_ans):
            pred_letter = mcq_letter(answer_text, free=True)
            if pred_letter is None:
                return VerifyResult("incorrect", METHOD_RULE, "no_answer")
            ok = pred_letter == gold_letter
            return VerifyResult("correct" if ok else "incorrect", METHOD_RULE, "mcq", pred_letter)
        pred_ans = extract_answer(answer_text or "", allow_bare_number=self.config.allow_bare_number)
        if pred_ans is None:
            return VerifyResult("incorrect", METHOD_RULE, "no_answer")
        g, p = clean_answer(gold_ans), clean_answer(pred_ans)
        if not p.text:
            return VerifyResult("incorrect", METHOD_RULE, "no_answer", pred_ans)
        try:
            fast = compare(g, p, self.settings)
        except Unparseable as exc:
            if str(exc).startswith("gold"):
                return VerifyResult("error", METHOD_RULE, "gold_unparseable", pred_ans)
            return self._ask_judge(
                gold_ans, pred_ans, VerifyResult("incorrect", METHOD_RULE, "pred_unparseable", pred_ans)
            )
        except Exception:  # the fast stage never decides by crashing: the worker reports what breaks
            fast = None
        if fast is not None and fast.equal is not None:
            res = VerifyResult("correct" if fast.equal else "incorrect", METHOD_RULE, fast.detail, pred_ans)
            # words against maths ("seven" vs 7): the rules say different, a judge may know better
            return self._ask_judge(gold_ans, pred_ans, res) if fast.detail == "not_comparable" else res
        status, value = self._worker.compare(
            gold=g, pred=p, settings=self.settings, timeout_s=self.config.timeout_s
        )
        if status == "ok" and value.equal is not None:
            return VerifyResult(
                "correct" if value.equal else "incorrect", METHOD_RULE, value.detail, pred_ans
            )
        if status == "ok":
            res = VerifyResult("incorrect", METHOD_RULE, "undecided", pred_ans)
        elif status == "unparseable" and str(value).startswith("gold"):
            res = VerifyResult("error", METHOD_RULE, "gold_unparseable", pred_ans)
        elif status == "unparseable":
            res = VerifyResult("incorrect", METHOD_RULE, "pred_unparseable", pred_ans)
        elif status == "timeout":
            res = VerifyResult("error", METHOD_RULE, "timeout", pred_ans)
        else:
            res = VerifyResult("error", METHOD_RULE, f"sympy_error: {value}"[:200], pred_ans)
        return self._ask_judge(gold_ans, pred_ans, res)

    def equivalent(self, *, first: str, second: str) -> bool:
        """Are two final answers the same answer? The public question for callers that group answers
        (majority votes without a gold): both orders must be accepted by the same comparison `verify`
        makes (fast stage, then sympy in the worker), so the relation is symmetric; an answer that
        cannot be read, a timeout or an undecided pair is not equivalent. The judge is not asked.

        Example:
            >>> v = MathVerifier()
            >>> v.equivalent(first="\\\\frac{1}{2}", second="0.5"), v.equivalent(first="x = 5", second="y = 5")
            (True, False)
        """
        a, b = extract_gold(first), extract_gold(second)
        if not a or not b:
            return False
        ca, cb = clean_answer(a), clean_answer(b)
        if not ca.text or not cb.text:
            return False
        return self._accepts(ca, cb) and self._accepts(cb, ca)

    def _accepts(self, gold: CleanAnswer, pred: CleanAnswer) -> bool:
        try:
            fast = compare(gold, pred, self.settings)
        except Unparseable:
            return False
        except Exception:
            fast = None
        if fast is not None and fast.equal is not None:
            return fast.equal
        status, value = self._worker.compare(
            gold=gold, pred=pred, settings=self.settings, timeout_s=self.config.timeout_s
        )
        return status == "ok" and value.equal is True

    def _ask_judge(self, gold: str, pred: str, fallback: VerifyResult) -> VerifyResult:
        if self._judge is None:
            return fallback
        try:
            decided = self._judge(gold=gold, answer=pred)
        except Exception as exc:  # the judge is best effort: keep the rule verdict
            return VerifyResult(
                fallback.verdict,
                fallback.method,
                f"{fallback.detail}; judge_failed: {type(exc).__name__}",
                pred,
            )
        if decided is None:
            return fallback
        return VerifyResult("correct" if decided else "incorrect", METHOD_JUDGE, fallback.detail, pred)

    # --------------------------------------------------------------------------------- many pairs
    def verify_many(
        self, pairs: Sequence[tuple[str, str]], *, workers: int | None = None, chunk_size: int = 64
    ) -> list[VerifyResult]:
        """Verdicts for (answer_text, gold) pairs in input order, spread over `workers` processes (all cores)."""
        n = workers or os.cpu_count() or 1
        if n <= 1 or len(pairs) <= chunk_size:
            return [self.verify(answer_text=a, gold=g) for a, g in pairs]
        chunks = [list(pairs[i : i + chunk_size]) for i in range(0, len(pairs), chunk_size)]
        out: list[VerifyResult] = []
        with ProcessPoolExecutor(
            max_workers=n,
            mp_context=_pool_context(),
            initializer=_init_pool,
            initargs=(self.config.model_dump(),),
        ) as pool:
            for res in pool.map(_verify_chunk, chunks):
                out.extend(res)
        return out

    def warm_up(self) -> None:
        """Start the sympy worker now (it otherwise starts on the first answer the fast stage leaves open)."""
        self._worker.warm_up()

    def close(self) -> None:
        self._worker.close()


def _is_mcq_gold(g: str) -> bool:
    import re

    s = re.sub(r"\\(?:text|mathrm|textbf|mathbf)\s*\{([^{}]*)\}", r"\1", g).replace("$", "").strip()
    if re.match(r"^\(?[A-E]\)?\s*[=<>]", s):
        return False
    return bool(
        re.fullmatch(r"\(?[A-E]\)?(?:[.:]?\s.*)?", s, re.DOTALL)
        and not re.search(r"[=+*/^\\]", s.split(" ", 1)[0])
    ) or bool(re.search(r"answer is\s*\n?\s*\(?[A-E]\)?", s))


_POOL_VERIFIER: MathVerifier | None = None


def _pool_context() -> BaseContext:
    """fork when this process has one thread (fast: no re-import), else forkserver (fork is unsafe then)."""
    if threading.active_count() == 1 and "fork" in get_all_start_methods():
        return get_context("fork")
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(["tracekit.verify.math.verifier"])
    return ctx


def _init_pool(config: dict) -> None:
    global _POOL_VERIFIER
    _POOL_VERIFIER = MathVerifier(MathVerifyConfig.model_validate(config))


def _verify_chunk(chunk: list[tuple[str, str]]) -> list[VerifyResult]:
    assert _POOL_VERIFIER is not None
    return [_POOL_VERIFIER.verify(answer_text=a, gold=g) for a, g in chunk]
