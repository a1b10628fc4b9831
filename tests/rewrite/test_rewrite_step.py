"""The rewrite step against a local chat server that rewrites by a known rule (the oracle)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from datatrove.data import Document

from tests.chat_server import ChatServer, user_text
from tracekit.record import empty_record, stable_hash
from tracekit.rewrite.config import RewriteConfig
from tracekit.rewrite.step import DROP_REWRITE_FAILED, RewriteStep

TEMPLATE = "Q: {prompt}\n---\n{completion}\n---\nA: {answer}"


def rewritten(message: str) -> str:
    """What the server answers for a rendered template: a format wrapped around a checksum of it."""
    return f"<|begin_of_thought|>\n{stable_hash(message)}\n<|end_of_thought|>\n<|begin_of_solution|>ok<|end_of_solution|>"


def reply(body: dict[str, Any]) -> Any:
    text = user_text(body)
    if "FAIL" in text:
        return {"status": 400}  # not retried: the request fails at once
    if "CUT" in text:
        return {"content": "<|begin_of_thought|> half", "finish_reason": "length"}
    return rewritten(text)


def random_trace(rng: random.Random, i: int) -> Document:
    md = empty_record()
    words = ["{x}", "\\boxed{3}", "a}b{", "step", "{prompt}", "0.5", "FAIL" if rng.random() < 0.1 else "w"]
    text = " ".join(rng.choice(words) for _ in range(rng.randint(0, 12)))
    if rng.random() < 0.1:
        text += " CUT"
    md.update(
        trace_id=f"{i:016x}",
        prompt=f"problem {i} {{n}}",
        domain=rng.choice(["math", "code", "general"]),
        source=rng.choice(["a", "b"]),
        completion=text,
        reasoning=rng.choice([None, "thinking {about} it"]),
        finish_reason=rng.choice(["stop", "stop", "stop", "length"]),
        error=rng.choice([None, None, None, None, "HTTP 500"]),
        completion_tokens=7,
    )
    return Document(text=text, id=md["trace_id"], metadata=md)


def run_step(docs: list[Document], tmp: Path, url: str, **cfg: Any) -> list[Document]:
    config = RewriteConfig.model_validate(
        {
            "teacher": {"base_urls": [url], "model": "fmt", "retries": {"attempts": 1}},
            "template": TEMPLATE,
            **cfg,
        }
    )
    step = RewriteStep(config=config, cache_dir=str(tmp / "cache"), usage_dir=str(tmp / "usage"))
    return list(step.run(iter(docs), rank=0, world_size=1))


def test_rewrites_the_selected_traces_and_keeps_the_originals(tmp_path: Path) -> None:
    rng = random.Random(0)
    originals = [random_trace(rng, i) for i in range(150)]
    keep = [(d.text, dict(d.metadata)) for d in originals]
    server = ChatServer(reply)
    with server as url:
        out = run_step(originals, tmp_path, url, domains=["math", "code"])
    assert [d.id for d in out] == [f"{i:016x}" for i in range(150)]  # order kept
    step = RewriteStep(config=RewriteConfig.model_validate({"teacher": {"base_urls": [url], "model": "m"}, "template": TEMPLATE}))
    sent = 0
    for doc, (text, md) in zip(out, keep, strict=True):
        selected = md["domain"] in ("math", "code") and not md["error"] and text.strip() and md["finish_reason"] != "length"
        if not selected:  # passed through untouched
            assert doc.text == text and doc.metadata["rewrite_model"] is None and doc.metadata.get("kept", True)
            continue
        sent += 1
        message = step.render(md, text)
        whole = f"<think>\n{md['reasoning']}\n</think>\n{text}" if md["reasoning"] else text
        assert whole in message and md["prompt"] in message  # braces inside traces survive rendering
        if "FAIL" in message or "CUT" in message:
            assert doc.metadata["kept"] is False and doc.metadata["drop_reason"] == DROP_REWRITE_FAILED
            assert doc.text == text and doc.metadata["original_completion"] is None
            continue
        assert doc.text == doc.metadata["completion"] == rewritten(message)
        assert doc.metadata["original_completion"] == whole
        assert doc.metadata["rewrite_model"] == "fmt"
        assert doc.metadata["reasoning"] is None and doc.metadata["completion_tokens"] is None
        assert json.loads(doc.metadata["rewrite_detail"])["original_completion_tokens"] == 7
    assert len(server.requests) == sent and sent > 20
    assert all(b["model"] == "fmt" and b["n"] == 1 for b in server.requests)
    usage = json.loads((tmp_path / "usage" / "rewrite-usage-00000.json").read_text())
    assert usage["model"] == "fmt" and usage["completion_tokens"] > 0


def test_a_rerun_task_sends_only_what_had_no_answer(tmp_path: Path) -> None:
    rng = random.Random(1)
    docs = [random_trace(rng, i) for i in range(60)]
    for d in docs:
        d.metadata.update(error=None, finish_reason="stop", domain="math")
        d.text = d.metadata["completion"] = d.text.replace("FAIL", "").replace("CUT", "") + " x"
    first, second = ChatServer(reply), ChatServer(reply)
    with first as url:
        a = run_step([Document(text=d.text, id=d.id, metadata=dict(d.metadata)) for d in docs], tmp_path, url)
    with second as url:
        b = run_step([Document(text=d.text, id=d.id, metadata=dict(d.metadata)) for d in docs], tmp_path, url)
    assert len(first.requests) == 60 and second.requests == []
    assert [d.text for d in a] == [d.text for d in b]


def test_keep_original_false_and_source_selection(tmp_path: Path) -> None:
    rng = random.Random(2)
    docs = [random_trace(rng, i) for i in range(40)]
    for d in docs:
        d.metadata.update(error=None, finish_reason="stop")
        d.text = d.metadata["completion"] = "plain text"
    with ChatServer(reply) as url:
        out = run_step(docs, tmp_path, url, keep_original=False, sources=["a"])
    for d in out:
        if d.metadata["source"] == "a":
            assert d.metadata["rewrite_model"] == "fmt" and d.metadata["original_completion"] is None
        else:
            assert d.metadata["rewrite_model"] is None and d.text == "plain text"
