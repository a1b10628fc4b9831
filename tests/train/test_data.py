"""The trainer's `data:` reads a build's dataset by the names the build writes (BuildLayout's)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tracekit.engine.layout import BuildLayout
from tracekit.ledger.shards import dataset_file, shard_name
from tracekit.train.data import load_rows


def msgs(i: int) -> dict:
    return {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}


def test_a_build_folder_and_its_dataset_folder_give_the_rows_of_one_split(tmp_path: Path) -> None:
    layout = BuildLayout(tmp_path / "out")
    layout.dataset_data.mkdir(parents=True)
    expected: dict[str, list[str]] = {"train": [], "test": []}
    for rank in range(3):
        for split in ("train", "test"):
            rows = [msgs(10 * rank + j) for j in range(2 if split == "train" else 1)]
            expected[split] += [r["messages"][0]["content"] for r in rows]
            pq.write_table(pa.Table.from_pylist(rows), layout.dataset_data / dataset_file(split, shard_name(rank, 0)))
    for folder in (layout.out, layout.dataset):
        for split, prompts in expected.items():
            got = load_rows(data=str(folder), split=split)
            assert sorted(r["messages"][0]["content"] for r in got) == sorted(prompts)
