"""`verify: {llm}`: a judge model behind a local chat server decides; the test knows the right verdicts."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from datatrove.data import Document

from tests.chat_server import ChatServer, user_text
from tracekit.record import empty_record
from tracekit.verify.llm.config import LLMVerifyConfig
from tracekit.verify.llm.judge import read_reply
from tracekit.verify.llm_step import LLMVerifyStep

ANSWERS = ["7", "seven", "x = 2", "{a, b}", "C", "1/2", "no", "yes"]
FILLER = ["No doubt", "yes, well", "Hmm.", "Looking at it:"]


def reply(body: dict[str, Any]) -> Any:
    """Same answer iff the student's and the reference texts are equal after lowercasing; the reply
    starts with words that contain yes/no, so only its last line may decide."""
    text = user_text(body)
    student = re.search(r"## Student's answer\n(.*)\n\n## Reference answer", text, re.S)
    gold = re.search(r"## Reference answer\n(.*)$", text, re.S)
    assert student and gold
    s, g = student.group(1), gold.group(1)
    if "UNCLEAR" in s:
        return "I cannot decide."
    if "BROKEN" in s:
        return {"status": 400}
    verdict = "YES" if s.strip().lower() == g.strip().lower() else "NO"
    return f"{random.Random(s).choice(FILLER)} comparing.\n{verdict}"


def make_docs(n: int, seed: int) -> list[Document]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        md = empty_record()
        gold = rng.choice(ANSWERS + [None, ""])
        answer = rng.choice([gold or "7", rng.choice(ANSWERS), "", "UNCLEAR", "BROKEN", (gold or "x").upper()])
        md.update(
            trace_id=f"{i:016x}", domain=rng.choice(["science", "puzzle", "math"]), gold_answer=gold,
            prompt=f"question {i}", answer_text=answer, kept=rng.random() > 0.1,
        )
        docs.append(Document(text=f"<think>..</think>{answer}", id=md["trace_id"], metadata=md))
    return docs


def expected(md: dict[str, Any]) -> str | None:
    """The verdict the step must give (None: not judged)."""
    if md["domain"] not in ("science", "puzzle") or not (md["gold_answer"] or "").strip() or not md["kept"]:
        return None
    a = md["answer_text"]
    if not a.strip():
        return "incorrect"
    if a in ("UNCLEAR", "BROKEN"):
        return "error"
    return "correct" if a.strip().lower() == md["gold_answer"].strip().lower() else "incorrect"


def test_verdicts_match_the_judge(tmp_path: Path) -> None:
    docs = make_docs(200, seed=0)
    truth = [expected(dict(d.metadata)) for d in docs]
    server = ChatServer(reply)
    with server as url:
        cfg = LLMVerifyConfig.model_validate(
            {"judge": {"base_urls": [url], "model": "judge", "retries": {"attempts": 1}}, "domains": ["science", "puzzle"], "keep_errors": True}
        )
        out = list(LLMVerifyStep(config=cfg, cache_dir=str(tmp_path)).run(iter(docs)))
    judged = 0
    for d, want in zip(out, truth, strict=True):
        md = d.metadata
        if want is None:
            assert md["verdict"] == "unverified" and md["verify_method"] is None
            continue
        judged += 1
        assert (md["verdict"], md["verify_method"]) == (want, "judge"), md
        detail = json.loads(md["verify_detail"])
        assert detail["judge"] == "judge"
        if md["answer_text"].strip() and md["answer_text"] != "BROKEN":
            assert detail["reply"].splitlines()[0].endswith("comparing.") or "cannot" in detail["reply"]
        if want == "incorrect" and md["kept"] is not None:
            assert md["drop_reason"] == "incorrect"
    sent = [d for d, w in zip(docs, truth, strict=True) if w is not None and d.metadata["answer_text"].strip()]
    assert len(server.requests) == len(sent) and judged > 60
    assert all(b["temperature"] == 0.0 and b["model"] == "judge" for b in server.requests)


def test_errors_are_dropped_unless_kept(tmp_path: Path) -> None:
    docs = [d for d in make_docs(120, seed=1) if expected(dict(d.metadata)) == "error"]
    assert docs
    with ChatServer(reply) as url:
        cfg = LLMVerifyConfig.model_validate(
            {"judge": {"base_urls": [url], "model": "j", "retries": {"attempts": 1}}, "domains": ["science", "puzzle"]}
        )
        out = list(LLMVerifyStep(config=cfg).run(iter(docs)))
    assert {d.metadata["drop_reason"] for d in out} == {"verify_error"}
    reasons = {json.loads(d.metadata["verify_detail"])["reason"] for d in out}
    assert reasons <= {"unclear_reply", "request_failed"} and reasons


@pytest.mark.parametrize(
    ("reply_text", "verdict"),
    [("YES", "correct"), ("no", "incorrect"), ("Yes, no doubt... final: NO", "incorrect"),
     ("No wait, it matches.\n**Yes**", "correct"), ("", None), ("yesterday nothing", None)],
)
def test_last_yes_or_no_word_decides(reply_text: str, verdict: str | None) -> None:
    assert read_reply(reply_text) == verdict


def test_template_must_name_answer_and_gold() -> None:
    with pytest.raises(ValueError, match=r"\{gold\}"):
        LLMVerifyConfig.model_validate(
            {"judge": {"base_urls": ["http://h/v1"], "model": "j"}, "domains": ["x"], "template": "{answer}"}
        )


def test_reject_false_records_verdicts_and_keeps_the_traces(tmp_path: Path) -> None:
    docs = make_docs(120, seed=3)
    for d in docs:
        d.metadata["kept"] = True
    truth = [expected(dict(d.metadata)) for d in docs]
    with ChatServer(reply) as url:
        cfg = LLMVerifyConfig.model_validate(
            {"judge": {"base_urls": [url], "model": "j", "retries": {"attempts": 1}}, "domains": ["science", "puzzle"],
             "reject": False, "keep_errors": True}
        )
        out = list(LLMVerifyStep(config=cfg).run(iter(docs)))
    assert "incorrect" in truth
    for d, want in zip(out, truth, strict=True):
        assert d.metadata["kept"] is True and d.metadata["drop_reason"] is None
        assert d.metadata["verdict"] == (want or "unverified")
