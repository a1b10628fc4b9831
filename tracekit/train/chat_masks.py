"""Chat-template rendering with assistant-only loss masks, for any template (no generation markers needed).

Stock templates cannot be trusted with reasoning traces: DeepSeek-R1-Distill's strips everything up to
`</think>` from every assistant turn and prefills `<think>\\n` in the generation prompt; Llama-3's trims
content. So the conversation is rendered with each assistant content replaced by a sentinel, which gives the
template's own framing (headers, end-of-turn tokens) around untouched content; the real content is spliced in
verbatim, `<think>` and all. Prefix renders (`messages[:i]` with and without the generation prompt) tell
what the model sees at inference before it starts writing (e.g. a `<think>\\n` prefill), which is then prompt,
not trained. The trained part of a turn is its content plus the end-of-turn text up to and including the first
special token after it (`<|im_end|>`, `<|eot_id|>`, `<｜end▁of▁sentence｜>`).

Segments are tokenized one by one, so the boundary between prompt and completion falls on a token boundary,
as it does at inference.

Example:
    >>> ids, mask = tokenize_conversation(messages=[{"role": "user", "content": "1+1?"},
    ...     {"role": "assistant", "content": "<think>\\neasy\\n</think>\\n\\n2"}], tokenizer=tok)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracekit.parse.split import THINK_OPEN

_SENTINEL = "@@TRACEKIT_ASSISTANT_{i}@@"


@dataclass(frozen=True)
class Segment:
    """A piece of rendered text and whether the loss covers it."""

    text: str
    trained: bool


def _render(tokenizer: Any, messages: list[dict[str, Any]], *, chat_template: str | None, gen: bool) -> str:
    if not messages:
        return ""
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=gen, chat_template=chat_template
    )
    return str(text)


def special_token_strings(tokenizer: Any) -> list[str]:
    """Strings of the tokenizer's special tokens (including added special tokens), longest first."""
    specials = set(tokenizer.all_special_tokens)
    for tok in getattr(tokenizer, "added_tokens_decoder", {}).values():
        if getattr(tok, "special", False):
            specials.add(str(tok.content))
    return sorted((s for s in specials if s), key=len, reverse=True)


def end_of_turn_text(suffix: str, specials: list[str]) -> str:
    """The part of `suffix` (text right after an assistant content) up to and including its first special token.

    Returns "" when the suffix holds no special token.
    """
    best = -1
    best_tok = ""
    for tok in specials:
        pos = suffix.find(tok)
        if pos >= 0 and (best < 0 or pos < best):
            best, best_tok = pos, tok
    return "" if best < 0 else suffix[: best + len(best_tok)]


def render_segments(
    *, messages: list[dict[str, Any]], tokenizer: Any, chat_template: str | None = None
) -> list[Segment]:
    """Render `messages` into prompt / trained segments (see the module docstring).

    Raises ValueError when the template drops an assistant turn or the conversation has none.
    """
    msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
    assistant_idx = [i for i, m in enumerate(msgs) if m["role"] == "assistant"]
    if not assistant_idx:
        raise ValueError("conversation has no assistant turn")
    skeleton = [
        {**m, "content": _SENTINEL.format(i=i)} if m["role"] == "assistant" else m for i, m in enumerate(msgs)
    ]
    full = _render(tokenizer, skeleton, chat_template=chat_template, gen=False)
    specials = special_token_strings(tokenizer)
    eos = tokenizer.eos_token or ""

    segments: list[Segment] = []
    cursor = 0
    for n, i in enumerate(assistant_idx):
        sentinel = _SENTINEL.format(i=i)
        pos = full.find(sentinel, cursor)
        if pos < 0:
            raise ValueError(f"the chat template dropped assistant turn {i} (its content never appears)")
        prompt = full[cursor:pos]
        content = str(msgs[i]["content"])

        # What the model sees at inference before writing turn i: the generation prompt of messages[:i].
        before = _render(tokenizer, skeleton[:i], chat_template=chat_template, gen=False)
        gen = _render(tokenizer, skeleton[:i], chat_template=chat_template, gen=True)
        if gen.startswith(before) and full.startswith(before) and len(before) >= cursor:
            gen_prompt = gen[len(before) :]
            header = full[len(before) : pos]
            if gen_prompt != header and gen_prompt.startswith(header):
                prefill = gen_prompt[len(header) :]  # e.g. "<think>\n" (R1-Distill)
                if content.startswith(prefill):
                    prompt += prefill
                    content = content[len(prefill) :]
            elif gen_prompt != header and header.startswith(gen_prompt) and THINK_OPEN in content:
                # The template inserted its own (empty) think block into the turn: use the generation prompt.
                prompt = full[cursor : len(before)] + gen_prompt

        after = pos + len(sentinel)
        next_start = (
            full.find(_SENTINEL.format(i=assistant_idx[n + 1])) if n + 1 < len(assistant_idx) else len(full)
        )
        eot = end_of_turn_text(full[after:next_start], specials)
        if not eot and n + 1 == len(assistant_idx) and eos and not full[after:].strip():
            eot = eos  # the template leaves the last turn open: teach the model to stop anyway
            after_eot = len(full)
        else:
            after_eot = after + len(eot)

        if prompt:
            segments.append(Segment(prompt, False))
        segments.append(Segment(content + eot, True))
        cursor = after_eot
    return segments


def tokenize_conversation(
    *, messages: list[dict[str, Any]], tokenizer: Any, chat_template: str | None = None
) -> tuple[list[int], list[bool]]:
    """Token ids of the rendered conversation and, per token, whether the loss covers it."""
    ids: list[int] = []
    mask: list[bool] = []
    for seg in render_segments(messages=messages, tokenizer=tokenizer, chat_template=chat_template):
        piece = tokenizer(seg.text, add_special_tokens=False)["input_ids"]
        ids.extend(piece)
        mask.extend([seg.trained] * len(piece))
    return ids, mask


def format_masked_example(*, input_ids: list[int], mask: list[bool], tokenizer: Any) -> str:
    """Decode a tokenized row with the trained spans wrapped in `[TRAIN>` ... `<TRAIN]`."""
    out: list[str] = []
    start = 0
    for k in range(1, len(input_ids) + 1):
        if k == len(input_ids) or mask[k] != mask[start]:
            text = tokenizer.decode(input_ids[start:k], skip_special_tokens=False)
            out.append(f"[TRAIN>{text}<TRAIN]" if mask[start] else text)
            start = k
    return "".join(out)
