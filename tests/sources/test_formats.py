"""Reading source files: every row read exactly once across tasks, bad rows named, empty and unreadable
files told apart from a missing column."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tracekit.sources import formats
from tracekit.sources.base import iter_source, peek_columns, source_files, why_no_rows
from tracekit.sources.config import SourceConfig
from tracekit.sources.rows import BadRow, Row, shard_range


def random_rows(rng: random.Random, n: int) -> list[dict]:
    """Rows with awkward text: newlines escaped inside strings, unicode, long and empty values."""
    alphabet = "ab \n\t{}\"\\é中🙂"
    return [
        {"q": "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40))), "i": i, "a": rng.random()}
        for i in range(n)
    ]


def read_all(path: Path, fmt: str, world_size: int) -> list:
    """Every item the tasks 0..world_size-1 yield for one file, in task order."""
    it = {"jsonl": formats.iter_jsonl, "json": formats.iter_json_array, "parquet": formats.iter_parquet}[fmt]
    return [item for rank in range(world_size) for item in it(path, rank, world_size)]


@pytest.mark.parametrize("seed", range(6))
def test_tasks_split_a_jsonl_file_into_its_lines_exactly_once(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    rows = random_rows(rng, rng.randrange(0, 60))
    lines = [json.dumps(r, ensure_ascii=rng.random() < 0.5) for r in rows]
    # blank lines anywhere (also first and last), and a CRLF file
    for _ in range(rng.randrange(0, 5)):
        lines.insert(rng.randrange(0, len(lines) + 1), "")
    eol = "\r\n" if seed % 2 else "\n"
    path = tmp_path / "s.jsonl"
    path.write_text(eol.join(lines) + (eol if rng.random() < 0.5 else ""), newline="")
    oracle = [(i, json.loads(line)) for i, line in enumerate(lines) if line.strip()]
    for world_size in (1, 2, 3, 7):
        got = read_all(path, "jsonl", world_size)
        assert all(isinstance(x, Row) for x in got)
        assert [(x.index, x.data) for x in got] == oracle, world_size


def test_a_gzipped_jsonl_file_reads_like_the_plain_one(tmp_path: Path) -> None:
    rows = random_rows(random.Random(1), 25)
    plain, packed = tmp_path / "a.jsonl", tmp_path / "a.jsonl.gz"
    text = "".join(json.dumps(r) + "\n" for r in rows)
    plain.write_text(text)
    with gzip.open(packed, "wt") as f:
        f.write(text)
    assert [x.data for x in read_all(packed, "jsonl", 3)] == [x.data for x in read_all(plain, "jsonl", 1)] == rows


def test_bad_jsonl_lines_are_named_by_file_and_line_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"q": 1}\n{not json\n[1, 2]\n"text"\n{"q": 2}\n')
    got = read_all(path, "jsonl", 2)
    assert [x.data for x in got if isinstance(x, Row)] == [{"q": 1}, {"q": 2}]
    bad = [x.format() for x in got if isinstance(x, BadRow)]
    assert [b.split(": ")[0] for b in bad] == [f"{path}:2", f"{path}:3", f"{path}:4"]
    assert "invalid JSON" in bad[0] and "expected a JSON object, got list" in bad[1]


@pytest.mark.parametrize("seed", range(4))
def test_tasks_split_a_parquet_file_across_row_groups_exactly_once(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    rows = random_rows(rng, rng.randrange(1, 80))
    path = tmp_path / "s.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=rng.randrange(1, 20))
    for world_size in (1, 2, 5):
        got = read_all(path, "parquet", world_size)
        assert [(x.index, x.data) for x in got] == list(enumerate(rows)), world_size


def test_a_corrupt_parquet_file_is_one_bad_row_reported_by_one_task(tmp_path: Path) -> None:
    path = tmp_path / "b.parquet"
    path.write_bytes(b"PAR1 this is not a parquet file")
    got = read_all(path, "parquet", 4)
    assert len(got) == 1 and isinstance(got[0], BadRow)
    assert got[0].format().startswith(f"{path}: corrupt parquet file (")


def test_json_arrays_name_the_row_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps([{"q": 1}, 5, {"q": 3}]))
    got = read_all(path, "json", 2)
    assert [x.data for x in got if isinstance(x, Row)] == [{"q": 1}, {"q": 3}]
    assert [x.format() for x in got if isinstance(x, BadRow)] == [f"{path}:2: expected a JSON object, got int"]


def test_shard_ranges_cover_every_item_once() -> None:
    for n in range(0, 40):
        for world_size in range(1, 9):
            spans = [shard_range(n, r, world_size) for r in range(world_size)]
            covered = [i for lo, hi in spans for i in range(lo, hi)]
            assert covered == list(range(n))


# -- empty and unreadable files ---------------------------------------------------------------------
def _parquet_bytes(rows: list[dict], schema: pa.Schema | None = None) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), sink)
    return sink.getvalue().to_pybytes()


EMPTY_SCHEMA = pa.schema([("q", pa.string())])
CASES: list[tuple[str, bytes, str | None]] = [
    ("e.jsonl", b"", "is empty (0 bytes)"),
    ("e.jsonl", b"\n  \n\n", "is empty (only blank lines)"),
    ("e.json", b"", "is empty (0 bytes)"),
    ("e.json", b"[]", "is empty (no rows)"),
    ("e.json", b'{"train": []}', "is empty (no rows)"),
    ("e.parquet", b"", "is empty (0 bytes)"),
    ("e.parquet", _parquet_bytes([], EMPTY_SCHEMA), "is empty (0 rows)"),
    ("b.parquet", b"PAR1 this is not a parquet file", "is not a readable parquet file (ArrowInvalid"),
    ("b.json", b"[{]", "is not valid JSON ("),
    ("ok.jsonl", b'\n{"q": "x"}\n', None),
    ("ok.jsonl", b"{not json\n", None),  # has rows: the bad line is reported while reading
    ("ok.json", b'[{"q": "x"}]', None),
    ("ok.parquet", _parquet_bytes([{"q": "x"}]), None),
]


@pytest.mark.parametrize(("name", "content", "why"), CASES)
def test_why_no_rows_tells_empty_from_unreadable_from_fine(tmp_path: Path, name: str, content: bytes, why) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    got = why_no_rows(SourceConfig(name="s", path=str(path)), path)
    assert (got is None) if why is None else (got is not None and got.startswith(why)), got


def test_columns_are_peeked_from_the_first_file_that_has_rows(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "a.jsonl").write_text("")
    (folder / "b.parquet").write_bytes(b"PAR1 junk")
    (folder / "c.jsonl").write_text('{"q": 1, "a": 2}\n')
    cfg = SourceConfig(name="s", path="src")
    assert [f.name for f in source_files(cfg, tmp_path)] == ["a.jsonl", "b.parquet", "c.jsonl"]
    assert peek_columns(cfg, tmp_path) == ["q", "a"]
    items = list(iter_source(cfg, tmp_path))
    assert [x.data for x in items if isinstance(x, Row)] == [{"q": 1, "a": 2}]
    assert [Path(x.file).name for x in items if isinstance(x, BadRow)] == ["b.parquet"]
