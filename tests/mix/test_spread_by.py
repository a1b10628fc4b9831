"""`spread_by` in a mix bucket: the quota shared equally among a column's values (s1's uniform draw over
domains). Checked against a round-robin oracle (one trace per value in turn, skipping used-up values)
on generated ledgers, and within each value the bucket's `order_by` prefix is taken."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.mix.ledger import trace, write_ledger
from tests.mix.test_order_by import decide
from tracekit.mix.config import MixBucket
from tracekit.mix.stage import spread_quota


def round_robin(sizes: dict[str, int], quota: int) -> dict[str, int]:
    out = dict.fromkeys(sizes, 0)
    while quota and any(out[v] < sizes[v] for v in sizes):
        for v in sorted(sizes):
            if quota and out[v] < sizes[v]:
                out[v] += 1
                quota -= 1
    return out


@pytest.mark.parametrize("seed", range(200))
def test_shares_are_a_round_robin_up_to_the_last_round(seed: int) -> None:
    rng = random.Random(seed)
    sizes = {f"d{i}": rng.randint(1, 30) for i in range(rng.randint(1, 12))}
    quota = rng.randint(0, sum(sizes.values()) + 10)
    got, rr = spread_quota(sizes, quota, seed=seed), round_robin(sizes, quota)
    assert sum(got.values()) == min(quota, sum(sizes.values()))
    assert all(0 <= got[v] <= sizes[v] for v in sizes)
    # the same as a round robin, except which values get the one extra trace of the last round
    assert all(abs(got[v] - rr[v]) <= 1 for v in sizes)
    level = max(rr.values(), default=0)
    assert all(got[v] == sizes[v] or got[v] >= level - 1 for v in sizes)


def gen_rows(rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for p in range(rng.randint(10, 60)):
        label = rng.choice(["algebra", "geometry", "number theory", "logic", None])
        r = trace(f"t{p}", f"question {p}?", tokens=rng.randint(1, 500))
        r.update(domain_label=label)
        rows.append(r)
    return rows


@pytest.mark.parametrize("seed", range(8))
def test_bucket_takes_each_values_longest_share(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    rows = gen_rows(rng)
    write_ledger(tmp_path / "traces", rows, shards=rng.randint(1, 3))
    quota = rng.randint(1, len(rows))
    got = decide(
        tmp_path,
        {"seed": seed, "buckets": [{"name": "s1", "count": quota, "spread_by": "domain_label", "order_by": "completion_tokens DESC"}]},
    )
    chosen = [r for r in rows if got[r["trace_id"]] is None]
    by_value: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        by_value.setdefault(r["domain_label"] or "", []).append(r)
    sizes = {v: len(rs) for v, rs in by_value.items()}
    shares = spread_quota(sizes, quota, seed=seed)
    assert len(chosen) == min(quota, len(rows))
    for v, rs in by_value.items():
        mine = sorted(r["completion_tokens"] for r in chosen if (r["domain_label"] or "") == v)
        longest = sorted(sorted((r["completion_tokens"] for r in rs), reverse=True)[: shares[v]])
        assert len(mine) == shares[v]
        assert mine == longest  # ties may swap traces, not token counts


def test_spread_by_names_a_ledger_column() -> None:
    with pytest.raises(ValidationError, match="not a ledger column"):
        MixBucket(name="b", count=1, spread_by="domain_label; DROP")
