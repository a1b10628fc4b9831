"""Loading SFT rows and turning them into token ids + shifted labels (pure functions).

Example:
    >>> rows = load_rows(data="out/r1/dataset", split="train")  # doctest: +SKIP
    >>> docs = tokenize_rows(rows=rows, tokenizer=tok, max_length=4096)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracekit.ledger.shards import DATA_DIR, DATASET_DIR, dataset_file
from tracekit.train.chat_masks import tokenize_conversation

log = logging.getLogger(__name__)

IGNORE_INDEX = -100


@dataclass
class TokenizedDoc:
    """One conversation: `input_ids` and `labels` (already shifted: labels[t] is the target after token t)."""

    input_ids: list[int]
    labels: list[int]
    row: int
    row_id: str = ""

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def num_trainable(self) -> int:
        return sum(1 for y in self.labels if y != IGNORE_INDEX)


@dataclass
class TokenizeReport:
    """What tokenization kept and dropped."""

    kept: int = 0
    dropped_too_long: list[str] = field(default_factory=list)


def _dataset_dir(path: Path) -> Path:
    # A tracekit build folder holds its dataset in dataset/.
    return path / DATASET_DIR if (path / DATASET_DIR / DATA_DIR).is_dir() else path


def load_rows(*, data: str, split: str) -> list[dict[str, Any]]:
    """Rows of `split` from a tracekit dataset folder, a parquet/jsonl file, or a Hub dataset id."""
    import datasets

    path = Path(data)
    if path.is_file():
        kind = "json" if path.suffix in {".json", ".jsonl"} else "parquet"
        ds = datasets.load_dataset(kind, data_files={split: str(path)}, split=split)
    elif path.exists():
        root = _dataset_dir(path)
        files = sorted((root / DATA_DIR).glob(dataset_file(split, "*.parquet"))) if (root / DATA_DIR).is_dir() else []
        if files:
            ds = datasets.load_dataset("parquet", data_files={split: [str(f) for f in files]}, split=split)
        else:
            ds = datasets.load_dataset(str(root), split=split)
    else:
        ds = datasets.load_dataset(data, split=split)
    if "messages" not in ds.column_names:
        raise ValueError(
            f"data {data!r} split {split!r}: rows need a `messages` column, got {ds.column_names}"
        )
    return list(ds)


def split_held_out(
    *, rows: list[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Deterministically hold out `fraction` of rows (at least one); returns (train, held_out)."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(len(rows) * fraction))
    held = set(order[:n_eval])
    return [r for i, r in enumerate(rows) if i not in held], [rows[i] for i in sorted(held)]


def tokenize_rows(
    *,
    rows: list[dict[str, Any]],
    tokenizer: Any,
    max_length: int,
    chat_template: str | None = None,
    too_long: str = "drop",
) -> tuple[list[TokenizedDoc], TokenizeReport]:
    """Render and tokenize every row; raise if any row has no trainable token.

    Labels are shifted here, per document, so packing can never create a target across documents.
    """
    docs: list[TokenizedDoc] = []
    report = TokenizeReport()
    no_trainable: list[str] = []
    for i, row in enumerate(rows):
        row_id = str(row.get("trace_id") or i)
        ids, mask = tokenize_conversation(
            messages=row["messages"], tokenizer=tokenizer, chat_template=chat_template
        )
        labels = [ids[t + 1] if mask[t + 1] else IGNORE_INDEX for t in range(len(ids) - 1)] + [IGNORE_INDEX]
        if all(y == IGNORE_INDEX for y in labels):
            no_trainable.append(f"row {i} ({row_id})")
            continue
        if len(ids) > max_length:
            if too_long == "error":
                raise ValueError(f"row {i} ({row_id}) has {len(ids)} tokens > max_length={max_length}")
            report.dropped_too_long.append(row_id)
            continue
        docs.append(TokenizedDoc(input_ids=ids, labels=labels, row=i, row_id=row_id))
    if no_trainable:
        shown = ", ".join(no_trainable[:5]) + (" ..." if len(no_trainable) > 5 else "")
        raise ValueError(
            f"{len(no_trainable)} row(s) have no trainable (assistant) token: {shown}. "
            "Check the messages and the chat template."
        )
    report.kept = len(docs)
    if report.dropped_too_long:
        log.warning("dropped %d row(s) longer than max_length=%d", len(report.dropped_too_long), max_length)
    return docs, report
