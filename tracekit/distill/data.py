"""Prompts for on-policy distillation: read from a tracekit dataset or a prompts file, rendered to token ids.

Only prompts are used: a dataset row's `messages` up to (not including) its last assistant turn, or a file row's
`prompt`/`problem` as the user turn. The reward (optional) needs a reference: `gold_answer`/`answer` (math) or
`tests` (code). Rows with the same prompt count once.

Example:
    >>> p = prompt_from_row({"problem": "1+1?", "answer": "2"}, index=0)
    >>> p.messages, p.gold_answer, p.domain
    ([{'role': 'user', 'content': '1+1?'}], '2', 'math')
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Prompt:
    """One prompt: its messages, token ids once rendered, and the reference a verifier checks answers against."""

    messages: list[dict[str, str]]
    index: int
    domain: str = "math"
    gold_answer: str | None = None
    tests: str | None = None
    ids: list[int] = field(default_factory=list)

    @property
    def text(self) -> str:
        return str(self.messages[-1]["content"]) if self.messages else ""


def prompt_from_row(row: dict[str, Any], *, index: int) -> Prompt | None:
    """The prompt of one row (None when it has none)."""
    msgs = row.get("messages")
    if msgs:
        msgs = [{"role": str(m["role"]), "content": str(m["content"])} for m in msgs]
        last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=len(msgs))
        msgs = msgs[:last]
    else:
        text = row.get("prompt") or row.get("problem") or row.get("question")
        msgs = [{"role": "user", "content": str(text)}] if text else []
    if not msgs or msgs[-1]["role"] != "user":
        return None
    gold = row.get("gold_answer") or row.get("answer")
    tests = row.get("tests")
    domain = str(row.get("domain") or ("code" if tests else "math"))
    return Prompt(
        messages=msgs,
        index=index,
        domain=domain,
        gold_answer=None if gold is None else str(gold),
        tests=None if tests is None else (tests if isinstance(tests, str) else json.dumps(tests)),
    )


def _read_rows(data: str, split: str) -> list[dict[str, Any]]:
    path = Path(data)
    if path.is_file():
        if path.suffix in {".jsonl", ".json"}:
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        import pyarrow.parquet as pq

        return list(pq.read_table(path).to_pylist())
    from tracekit.train.data import load_rows

    return load_rows(data=data, split=split)


def load_prompts(*, data: str, split: str = "train") -> list[Prompt]:
    """Distinct prompts of `data` in file order; ValueError (naming `data`) when there are none."""
    path = Path(data)
    hub_id = data.count("/") == 1 and not data.startswith((".", "/", "~"))
    if not path.exists() and not hub_id:
        raise FileNotFoundError(
            f"data: {data} not found (a dataset or build folder, a prompts file, or a Hub id)"
        )
    seen: set[str] = set()
    prompts: list[Prompt] = []
    for i, row in enumerate(_read_rows(data, split)):
        p = prompt_from_row(row, index=i)
        if p is None:
            continue
        key = json.dumps(p.messages, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        prompts.append(p)
    if not prompts:
        raise ValueError(
            f"data: no prompts in {data!r} (rows need `messages` with a user turn, or `prompt`/`problem`)"
        )
    return prompts


def render_prompt_ids(
    *, messages: list[dict[str, str]], tokenizer: Any, chat_template: str | None
) -> list[int]:
    """Token ids the model sees before its answer: the chat template with the generation prompt."""
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, chat_template=chat_template
    )
    return list(tokenizer(str(text), add_special_tokens=False)["input_ids"])


def split_held_out(prompts: list[Prompt], *, count: int, seed: int) -> tuple[list[Prompt], list[Prompt]]:
    """(train, held out): `count` prompts drawn with `seed` are kept out of training."""
    if count == 0:
        return prompts, []
    if count >= len(prompts):
        raise ValueError(f"held_out: {count} prompts held out leaves none of the {len(prompts)} to train on")
    order = list(range(len(prompts)))
    random.Random(seed).shuffle(order)
    held = set(order[:count])
    return [p for i, p in enumerate(prompts) if i not in held], [
        p for i, p in enumerate(prompts) if i in held
    ]
