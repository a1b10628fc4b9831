"""The sympy worker is killed on timeout and answers within the time budget, from any thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tracekit.verify.base import VerifyResult
from tracekit.verify.math import MathVerifier, MathVerifyConfig

HANGS = [
    r"10^{10^{10^{10}}}",
    r"\dfrac{5^{\left(5^{\left(5^{\left(5^5\right)}\right)} - 4\right)} - 5}{16}",
    r"(10^{8})!",
    "+".join(rf"\frac{{x^{{{k}}}}}{{{k + 1}}}\sin(x)^{{{k}}}" for k in range(1, 240)),
]


@pytest.fixture(scope="module")
def verifier() -> Iterator[MathVerifier]:
    v = MathVerifier(MathVerifyConfig(timeout_s=1.5))
    # a pair only sympy decides: the worker starts outside the measured calls
    assert v.verify(answer_text=r"\boxed{\tan^2 x + 1}", gold=r"\sec^2 x").detail == "sympy"
    yield v
    v.close()


@pytest.mark.slow
@pytest.mark.timeout(120)  # each input hangs sympy for hours: only a verifier that times out returns
@pytest.mark.parametrize("pred", HANGS, ids=["tower", "power-tower-fraction", "factorial", "5000-chars"])
def test_hanging_inputs_are_answered_within_the_timeout(verifier: MathVerifier, pred: str) -> None:
    verifier.warm_up()  # a worker killed by the previous case restarts before the call
    res = verifier.verify(answer_text=f"\\boxed{{{pred}}}", gold="1")
    assert res.verdict in ("incorrect", "error")
    assert res.detail != "pred_unparseable"
    if res.verdict == "error":
        assert res.detail == "timeout"
    after = verifier.verify(answer_text=r"\boxed{\sqrt{9}}", gold="3")
    assert after.verdict == "correct"


def test_long_expression_is_five_thousand_chars() -> None:
    assert len(HANGS[3]) >= 5000


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_timeout_works_from_a_non_main_thread(verifier: MathVerifier) -> None:
    out: list[VerifyResult] = []

    def work() -> None:
        out.append(verifier.verify(answer_text=r"\boxed{10^{10^{10^{10}}}}", gold="1"))
        out.append(verifier.verify(answer_text=r"\boxed{2\sqrt{2}}", gold=r"\sqrt{8}"))

    th = threading.Thread(target=work)
    th.start()
    th.join()  # a timeout that only works on the main thread would hang here
    assert out[0].verdict in ("incorrect", "error")
    assert out[1].verdict == "correct"


def test_timeout_detail_on_a_known_hang() -> None:
    v = MathVerifier(MathVerifyConfig(timeout_s=0.5))
    try:
        res = v.verify(answer_text=r"\boxed{10^{10^{10^{10}}} + 1}", gold=r"10^{10^{10^{10}}}")
        assert res.verdict in ("error", "incorrect")
        assert res.detail in ("timeout", "sympy")
    finally:
        v.close()
