"""Finalize's decisions: applied in order against a plain-Python oracle over generated ledgers and tables."""

from __future__ import annotations

import random

import polars as pl
import pytest

from tracekit.ledger.finalize import apply_decisions

REASONS = ["duplicate_prompt", "contaminated", "mix_over_quota", None]


def oracle(rows: list[dict], tables: list[list[dict]]) -> list[dict]:
    """What the decisions mean, row by row: a kept trace takes the first drop reason a table gives it
    (and is then dropped); any other column a table holds replaces the trace's value when not null."""
    out = []
    for row in rows:
        row = dict(row)
        for table in tables:
            dec = next((d for d in table if d["trace_id"] == row["trace_id"]), None)
            if dec is None:
                continue
            if "drop_reason" in dec and row["kept"] and dec["drop_reason"] is not None:
                row["kept"], row["drop_reason"] = False, dec["drop_reason"]
            for k, v in dec.items():
                if k not in ("trace_id", "drop_reason") and v is not None:
                    row[k] = v
        out.append(row)
    return out


@pytest.mark.parametrize("seed", range(30))
def test_decisions_apply_in_order_like_the_oracle(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randrange(1, 30)
    rows = [
        {
            "trace_id": f"t{i}",
            "kept": (kept := rng.random() < 0.7),
            "drop_reason": None if kept else "truncated",
            "bucket": None,
            "split": None,
            "duplicate_of": None,
        }
        for i in range(n)
    ]
    tables = []
    for _ in range(rng.randrange(0, 4)):
        cols = rng.sample(["drop_reason", "bucket", "split", "duplicate_of"], rng.randint(1, 3))
        picked = rng.sample(rows, rng.randint(0, n))
        table = []
        for r in picked:
            d = {"trace_id": r["trace_id"]}
            for c in cols:
                d[c] = rng.choice(REASONS) if c == "drop_reason" else rng.choice([None, f"{c}-{rng.randrange(3)}"])
            table.append(d)
        tables.append(table)
    frames = [
        pl.DataFrame(t, schema={k: pl.String for k in (t[0] if t else {"trace_id": None})}) for t in tables
    ]
    got = apply_decisions(pl.DataFrame(rows), frames).to_dicts()
    assert got == oracle(rows, tables)
