"""A recipe with no global stage writes its final shards in the per-trace tasks (`work/final`).

The result must equal the two-pass path (temporary shards, then finalize) row for row, honour the
recipe's codec, survive `kill -9` in the middle of either pass, and leave nothing staged behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import read_dataset, read_ledger, run_cli, write_recipe
from tracekit.engine.layout import BuildLayout

# a dedup stage that drops nothing: forces the two-pass path without changing any row
NOOP_DEDUP = {"prompts": "none", "completions": "none"}


def _make(tmp: Path, **extra: object) -> Path:
    rows = [
        {
            "q": f"Problem {i}: what is {i} * 7?",
            "a": str(7 * i),
            "gens": [f"<think>\n{i}*7={7 * i}\n</think>\n\n\\boxed{{{7 * i}}}", f"<think>\ncut {i}"],
        }
        for i in range(1200)
    ]
    (tmp / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return write_recipe(
        tmp,
        sources=[
            {"name": "m", "path": "m.jsonl", "columns": {"prompt": "q", "answer": "a", "generations": "gens"}}
        ],
        executor={"kind": "local", "tasks": 3, "workers": 2},
        rows_per_shard=300,
        **extra,
    )


def _codecs(folder: Path) -> set[str]:
    return {
        pq.ParquetFile(f).metadata.row_group(0).column(0).compression
        for f in folder.glob("*.parquet")
        if pq.ParquetFile(f).metadata.num_row_groups
    }


@pytest.mark.slow
def test_single_pass_equals_two_pass_and_uses_the_recipes_codec(tmp_path: Path) -> None:
    outs = {}
    for name, extra in (
        ("one", {"compression": "zstd"}),
        ("two", {"compression": "zstd", "dedup": NOOP_DEDUP}),
    ):
        d = tmp_path / name
        d.mkdir()
        r = run_cli("build", str(_make(d, **extra)))
        assert r.returncode == 0, r.stderr
        out = d / "out"
        layout = BuildLayout(out)
        assert not layout.staged.exists() and not layout.traces.exists()
        assert _codecs(layout.ledger) == {"ZSTD"} and _codecs(layout.dataset_data) == {"ZSTD"}
        outs[name] = (read_ledger(out), read_dataset(out))
    assert len(outs["one"][0]) == 2400 and len(outs["one"][1]) == 1200
    assert outs["one"] == outs["two"]


@pytest.mark.slow
def test_default_codec_is_snappy(tmp_path: Path) -> None:
    r = run_cli("build", str(_make(tmp_path)))
    assert r.returncode == 0, r.stderr
    layout = BuildLayout(tmp_path / "out")
    assert _codecs(layout.ledger) == {"SNAPPY"}
    assert _codecs(layout.dataset_data) == {"SNAPPY"}


@pytest.mark.slow
@pytest.mark.parametrize("point", ["write:450", "finalize:1"])
def test_kill_9_in_the_two_pass_path_then_resume(tmp_path: Path, point: str) -> None:
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    ref_dir.mkdir()
    run_dir.mkdir()
    assert run_cli("build", str(_make(ref_dir, dedup=NOOP_DEDUP))).returncode == 0
    recipe = _make(run_dir, dedup=NOOP_DEDUP)
    killed = run_cli("build", str(recipe), env={"TRACEKIT_FAULT": point})
    assert killed.returncode == -9, f"the fault point {point} was not reached: {killed.stderr[-2000:]}"
    resumed = run_cli("build", str(recipe))
    assert resumed.returncode == 0, resumed.stderr
    assert read_ledger(run_dir / "out") == read_ledger(ref_dir / "out")
    assert read_dataset(run_dir / "out") == read_dataset(ref_dir / "out")
