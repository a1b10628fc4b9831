"""Ledger shards: written by tasks, rolled and published atomically, read back by the next stage's tasks
so that every trace arrives exactly once and a prompt's samples stay together, and re-run tasks replace
only what they wrote."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from tracekit.ledger.reader import TraceShardReader
from tracekit.ledger.shards import (
    TMP_PREFIX,
    LedgerShardError,
    count_by,
    iter_ledger_batches,
    ledger_footers,
    list_shards,
    remove_rank_files,
    shard_name,
    writer_rank,
    writer_shards,
)
from tracekit.ledger.writer import TraceShardWriter
from tracekit.record import LEDGER_SCHEMA, empty_record


def traces(rng: random.Random, writer: int, n: int) -> list[Document]:
    """n traces of one writing task: prompts with 1-4 samples each, texts of random length."""
    docs: list[Document] = []
    prompt = 0
    while len(docs) < n:
        for sample in range(min(rng.randint(1, 4), n - len(docs))):
            md = empty_record()
            md.update(
                prompt_id=f"w{writer}-p{prompt}",
                sample_index=sample,
                prompt=f"question {prompt} of task {writer}",
                kept=rng.random() < 0.7,
                verdict=rng.choice(["correct", "incorrect", "unverified"]),
            )
            text = "".join(rng.choice("ab \n") for _ in range(rng.randrange(0, 300)))
            docs.append(Document(text=text, id=f"w{writer}-t{len(docs)}", metadata=md))
        prompt += 1
    return docs


def write(folder: Path, rank: int, docs: list[Document], *, rows_per_file: int, prefix: str = "") -> None:
    step = TraceShardWriter(folder=str(folder), rows_per_file=rows_per_file, prefix=prefix)
    assert list(step.run(iter(docs), rank=rank, world_size=1)) == []  # the last step: it yields nothing


@pytest.mark.parametrize("seed", range(5))
def test_the_next_stage_reads_every_trace_once_with_a_prompts_samples_in_one_task(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    writers = rng.randint(1, 5)
    written = {w: traces(rng, w, rng.randrange(0, 40)) for w in range(writers)}
    for w, docs in written.items():
        write(tmp_path, w, docs, rows_per_file=rng.randint(1, 15))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)]  # every file published
    for world_size in (1, 2, 3, 7):
        seen: dict[str, int] = {}
        for rank in range(world_size):
            got = list(TraceShardReader(folder=str(tmp_path)).run(None, rank=rank, world_size=world_size))
            for d in got:
                seen[d.id] = rank
            # task `rank` reads whole the output of the writers rank, rank + world_size, ... in order
            expected = [d for w, docs in written.items() if w % world_size == rank for d in docs]
            assert [d.id for d in got] == [d.id for d in expected]
            assert [d.text for d in got] == [d.text for d in expected]
            assert [d.metadata["kept"] for d in got] == [d.metadata["kept"] for d in expected]
        assert len(seen) == sum(len(d) for d in written.values())
        by_prompt: dict[str, set[int]] = {}
        for docs in written.values():
            for d in docs:
                by_prompt.setdefault(d.metadata["prompt_id"], set()).add(seen[d.id])
        assert all(len(ranks) == 1 for ranks in by_prompt.values())


def test_a_rerun_task_replaces_only_its_own_files(tmp_path: Path) -> None:
    rng = random.Random(7)
    first = {w: traces(rng, w, 12) for w in range(3)}
    for w, docs in first.items():
        write(tmp_path, w, docs, rows_per_file=5)
    round_docs = traces(rng, 1, 6)
    write(tmp_path, 1, round_docs, rows_per_file=5, prefix="r01-")
    # task 1 of the first pass is re-run (after a crash) and this time writes fewer traces
    (tmp_path / f"{TMP_PREFIX}{shard_name(1, 9)}").write_bytes(b"half a file")
    rerun = traces(rng, 1, 4)
    write(tmp_path, 1, rerun, rows_per_file=5)
    ids = {r["trace_id"] for b in iter_ledger_batches(tmp_path, columns=["trace_id"]) for r in b.to_pylist()}
    expected = [*first[0], *first[2], *rerun, *round_docs]
    assert ids == {d.id for d in expected}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)]
    assert ledger_footers(tmp_path)[1] == len(expected)
    assert count_by(tmp_path, "prompt_id", prefix="r01-") == {
        p: sum(d.metadata["prompt_id"] == p for d in round_docs) for p in {d.metadata["prompt_id"] for d in round_docs}
    }
    remove_rank_files(tmp_path, 1, prefix="r01-")
    assert {writer_rank(p) for p in list_shards(tmp_path)} == {0, 1, 2}
    assert not any(p.name.startswith("r01-") for p in list_shards(tmp_path))


def test_shard_names_give_back_their_writer() -> None:
    for rank in (0, 1, 99999):
        for part in (0, 3, 9999):
            for prefix in ("", "r01-", "r12-sel-"):
                assert writer_rank(Path(shard_name(rank, part, prefix=prefix))) == rank
    assert writer_rank(Path("notes.parquet")) is None


def test_missing_columns_read_as_typed_nulls_and_a_corrupt_shard_is_named(tmp_path: Path) -> None:
    pq.write_table(pa.table({"trace_id": ["a", "b"], "kept": [True, False]}), tmp_path / shard_name(0, 0))
    batches = list(iter_ledger_batches(tmp_path, columns=["trace_id", "completion_tokens", "kept"]))
    rows = [r for b in batches for r in b.to_pylist()]
    assert rows == [
        {"trace_id": "a", "completion_tokens": None, "kept": True},
        {"trace_id": "b", "completion_tokens": None, "kept": False},
    ]
    assert batches[0].schema.field("completion_tokens").type == LEDGER_SCHEMA.field("completion_tokens").type
    bad = tmp_path / shard_name(1, 0)
    bad.write_bytes(b"PAR1 not parquet")
    with pytest.raises(LedgerShardError, match=str(bad)):
        list(iter_ledger_batches(tmp_path, columns=["trace_id"]))
    assert writer_shards(tmp_path, 1, 2) == [bad]


def test_a_shard_without_a_newer_column_reads_it_as_null(tmp_path: Path) -> None:
    """A trace shard written before a ledger column existed (a build resumed by a newer tracekit) is read
    with that column null, every other value as written."""
    docs = traces(random.Random(0), 0, 6)
    write(tmp_path, 0, docs, rows_per_file=100)
    (f,) = list_shards(tmp_path)
    table = pq.read_table(f)
    old = table.drop_columns(["student_pass_rates", "gold_source"])
    pq.write_table(old, f)
    got = list(TraceShardReader(folder=str(tmp_path)).run(None, rank=0, world_size=1))
    assert [d.id for d in got] == [d.id for d in docs] and [d.text for d in got] == [d.text for d in docs]
    for d, want in zip(got, table.to_pylist(), strict=True):
        assert d.metadata == {**want, "student_pass_rates": None, "gold_source": None}
