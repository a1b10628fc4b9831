"""Assistant-only masks for three stock template styles (no generation markers in any of them)."""

from __future__ import annotations

import pytest
from conftest import build_tokenizer, make_traces

from tracekit.train.chat_masks import tokenize_conversation
from tracekit.train.data import tokenize_rows

EOT = {"qwen2_5": "<|im_end|>", "llama3": "<|eot_id|>", "r1_distill": "<｜end▁of▁sentence｜>"}


def _trained_text(tok, ids, mask):
    spans, cur = [], []
    for i, m in zip(ids, mask, strict=True):
        if m:
            cur.append(i)
        elif cur:
            spans.append(tok.decode(cur)), cur.clear()
    if cur:
        spans.append(tok.decode(cur))
    return spans


@pytest.mark.parametrize("style", ["qwen2_5", "llama3", "r1_distill"])
def test_trained_span_is_assistant_content_plus_end_of_turn(style):
    tok = build_tokenizer(style)
    msgs = make_traces(1)[0]["messages"]
    ids, mask = tokenize_conversation(messages=msgs, tokenizer=tok)
    content = msgs[1]["content"]
    spans = _trained_text(tok, ids, mask)
    assert len(spans) == 1
    if style == "r1_distill":
        # The stock template strips the reasoning and prefills "<think>\n": the reasoning is kept and trained,
        # the prefill is prompt (the model sees it at inference).
        assert spans[0] == content.removeprefix("<think>\n") + EOT[style]
        prompt = tok.decode([i for i, m in zip(ids, mask, strict=True) if not m])
        assert prompt.endswith("<｜Assistant｜><think>\n")
        assert "Add 3 and 11" in spans[0]
    else:
        assert spans[0] == content + EOT[style]
    # The user turn never carries loss.
    assert "What is" not in "".join(spans)


@pytest.mark.parametrize("style", ["qwen2_5", "llama3", "r1_distill"])
def test_multi_turn_trains_every_assistant_turn(style):
    tok = build_tokenizer(style)
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "<think>\nhi\n</think>\n\nHello"},
        {"role": "user", "content": "how are you?"},
        {"role": "assistant", "content": "<think>\nok\n</think>\n\nFine"},
    ]
    ids, mask = tokenize_conversation(messages=msgs, tokenizer=tok)
    spans = _trained_text(tok, ids, mask)
    assert len(spans) == 2
    assert spans[0].endswith("Hello" + EOT[style]) and "hi" in spans[0]
    assert spans[1].endswith("Fine" + EOT[style]) and "ok" in spans[1]
    untrained = tok.decode([i for i, m in zip(ids, mask, strict=True) if not m])
    assert "Be brief." in untrained and "how are you?" in untrained


def test_row_without_trainable_token_is_refused():
    tok = build_tokenizer("qwen2_5")
    rows = make_traces(2)
    rows[1]["messages"] = [{"role": "user", "content": "only a question"}]
    with pytest.raises(ValueError, match="no assistant turn"):
        tokenize_rows(rows=rows, tokenizer=tok, max_length=512)


def test_template_that_drops_assistant_is_refused():
    tok = build_tokenizer("qwen2_5")
    user_only = (
        "{% for m in messages %}{% if m.role == 'user' %}{{ m.content }}<|im_end|>{% endif %}{% endfor %}"
    )
    with pytest.raises(ValueError, match="dropped assistant turn"):
        tokenize_rows(rows=make_traces(1), tokenizer=tok, max_length=512, chat_template=user_only)


def test_template_whose_assistant_turn_has_no_trainable_token_is_refused():
    tok = build_tokenizer("qwen2_5")
    rows = make_traces(1)
    rows[0]["messages"][1]["content"] = ""
    rows[0]["messages"].append({"role": "user", "content": "and?"})
    no_eot = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
    with pytest.raises(ValueError, match="no trainable"):
        tokenize_rows(rows=rows, tokenizer=tok, max_length=512, chat_template=no_eot)
