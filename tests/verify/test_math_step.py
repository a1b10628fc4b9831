"""MathVerifyStep on datatrove Documents, through the VerifyStep base."""

from __future__ import annotations

from datatrove.data import Document

from tracekit.record import empty_record
from tracekit.verify.math import MathVerifyConfig
from tracekit.verify.math_step import MathVerifyStep


def _doc(i: int, *, domain: str, gold: str | None, text: str, answer_text: str | None = None) -> Document:
    md = empty_record()
    md.update(domain=domain, gold_answer=gold, answer_text=answer_text)
    return Document(id=f"t{i}", text=text, metadata=md)


def test_step_writes_verdicts_and_drops_wrong_traces() -> None:
    docs = [
        _doc(
            0, domain="math", gold="2", text="<think>\\boxed{3}</think>\\boxed{2}", answer_text="\\boxed{2}"
        ),
        _doc(
            1, domain="math", gold="2", text="<think>\\boxed{2}</think>\\boxed{3}"
        ),  # no answer_text: parse doc.text
        _doc(2, domain="code", gold="2", text="\\boxed{2}"),
        _doc(3, domain="math", gold=None, text="\\boxed{2}"),
        _doc(
            4,
            domain="math",
            gold="5",
            text="<think>\\boxed{5}</think>no final answer",
            answer_text="no final answer",
        ),
        _doc(5, domain="math", gold="\\frac{1}{", text="\\boxed{2}", answer_text="\\boxed{2}"),
    ]
    step = MathVerifyStep(batch_size=4)
    out = {d.id: d.metadata for d in step.run(docs)}
    assert len(out) == 6
    assert out["t0"]["verdict"] == "correct" and out["t0"]["kept"] is True
    assert out["t0"]["verify_method"] == "math_rule" and out["t0"]["extracted_answer"] == "2"
    assert out["t1"]["verdict"] == "incorrect" and out["t1"]["drop_reason"] == "incorrect"
    assert out["t2"]["verdict"] == "unverified" and out["t3"]["verdict"] == "unverified"
    assert out["t4"]["verify_detail"] == "no_answer" and out["t4"]["kept"] is False
    assert out["t5"]["verdict"] == "error" and out["t5"]["drop_reason"] == "verify_error"


def test_domains_are_configurable() -> None:
    step = MathVerifyStep(config=MathVerifyConfig(domains=["math", "science"]))
    doc = _doc(0, domain="science", gold="42", text="\\boxed{42}", answer_text="\\boxed{42}")
    assert list(step.run([doc]))[0].metadata["verdict"] == "correct"
