"""What the select steps share: their drop reasons, the `selection` record, and running a model over
prompt documents while keeping each prompt's answers with it."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from datatrove.data import Document

# Drop reasons (public: they show in the ledger, stats and the card).
DROP_TOO_EASY = "too_easy"
DROP_TOO_HARD = "too_hard"
DROP_LABEL_FAILED = "label_failed"
SELECT_DROP_REASONS = (DROP_TOO_EASY, DROP_TOO_HARD, DROP_LABEL_FAILED)

OWNER = "_select_owner"  # metadata key tying a model's input (and so its answers) to its prompt document


def drop(doc: Document, reason: str) -> None:
    """Mark a prompt document dropped (it becomes one ledger row with this reason, never sampled)."""
    doc.metadata["kept"] = False
    doc.metadata["drop_reason"] = reason


def is_dropped(doc: Document) -> bool:
    return doc.metadata.get("kept") is False


def add_selection(doc: Document, key: str, value: Any) -> None:
    """Add `key: value` to the prompt's `selection` record (JSON text: it travels to every trace)."""
    md = doc.metadata
    record = json.loads(md["selection"]) if md.get("selection") else {}
    record[key] = value
    md["selection"] = json.dumps(record, ensure_ascii=False, sort_keys=True)


def in_window(value: float, window: list[float]) -> str | None:
    """None inside [low, high] (both included); else the drop reason: below is hard, above easy.

        >>> in_window(0.5, [0.0, 0.5]), in_window(0.75, [0.0, 0.5]), in_window(0.0, [0.25, 1.0])
        (None, 'too_easy', 'too_hard')
    """
    lo, hi = window
    if value < lo:
        return DROP_TOO_HARD
    if value > hi:
        return DROP_TOO_EASY
    return None


Runner = Callable[[Iterator[Document]], Iterable[Document]]


def through_model(
    data: Iterable[Document],
    *,
    wants: Callable[[Document], bool],
    inputs: Callable[[Document], list[Document]],
    run: Runner,
) -> Iterator[tuple[Document, list[Document] | None]]:
    """Run a model (a teacher's `run`) over the inputs of the prompt documents it `wants`; yield each
    prompt document, in input order, with its model outputs (None for the ones it did not want).

    The model reads its inputs lazily and yields its outputs in input order (as every tracekit teacher
    does); an output belongs to the prompt whose id its metadata carries under `OWNER`, so a prompt is
    complete when the next prompt's first output (or the end) arrives.
    """
    queue: deque[tuple[Document, bool]] = deque()

    def feed() -> Iterator[Document]:
        for doc in data:
            wanted = wants(doc)
            queue.append((doc, wanted))
            if wanted:
                for x in inputs(doc):
                    x.metadata[OWNER] = doc.id
                    yield x

    outputs: list[Document] = []
    for out in run(feed()):
        owner = out.metadata.get(OWNER)
        while queue and not (queue[0][1] and queue[0][0].id == owner):
            doc, wanted = queue.popleft()
            yield doc, (outputs if wanted else None)
            outputs = []
        if not queue:
            raise RuntimeError(f"select: an answer came back for an unknown prompt {owner!r}")
        outputs.append(out)
    while queue:
        doc, wanted = queue.popleft()
        yield doc, (outputs if wanted else None)
        outputs = []
