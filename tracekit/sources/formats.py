"""File formats a source can be read from: JSONL, JSON arrays, Parquet, saved datasets, the Hub.

Every reader takes (rank, world_size) and yields only its contiguous share of each file, with the
row's number in the file, so a row keeps the same identity whatever the number of tasks.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from tracekit.sources.config import SourceConfig
from tracekit.sources.rows import BadRow, Item, Row, shard_range

_CHUNK = 1 << 24


def _count_newlines(f: Any, end: int) -> int:
    f.seek(0)
    n, left = 0, end
    while left > 0:
        buf = f.read(min(_CHUNK, left))
        if not buf:
            break
        n += buf.count(b"\n")
        left -= len(buf)
    return n


def _line_start_at_or_after(f: Any, pos: int) -> int:
    """First byte offset >= pos that begins a line."""
    if pos == 0:
        return 0
    f.seek(pos - 1)
    f.readline()
    return f.tell()


def iter_jsonl(path: Path, rank: int, world_size: int) -> Iterator[Item]:
    if path.name.endswith(".gz"):
        # compressed files cannot be split by bytes: rank 0 reads it all
        if rank != 0:
            return
        with gzip.open(path, "rb") as g:
            for i, line in enumerate(g):
                item = _parse_line(path, i, line)
                if item is not None:
                    yield item
        return
    size = path.stat().st_size
    with open(path, "rb", buffering=1 << 20) as f:  # R1 traces are long lines: read in big blocks
        lo, hi = shard_range(size, rank, world_size)
        start = _line_start_at_or_after(f, lo)
        stop = _line_start_at_or_after(f, hi) if hi < size else size
        if start >= stop:
            return
        index = _count_newlines(f, start) if start else 0
        f.seek(start)
        pos = start
        while pos < stop:
            line = f.readline()
            if not line:
                break
            pos += len(line)
            item = _parse_line(path, index, line)
            if item is not None:
                yield item
            index += 1


def _parse_line(path: Path, index: int, line: bytes) -> Item | None:
    if not line or line.isspace():  # (not `strip()`: that copies every 20 KB line for its newline)
        return None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        return BadRow(str(path), index, f"invalid JSON ({e})")
    if not isinstance(obj, dict):
        return BadRow(str(path), index, f"expected a JSON object, got {type(obj).__name__}")
    return Row(str(path), index, obj)


def iter_json_array(path: Path, rank: int, world_size: int) -> Iterator[Item]:
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        if rank == 0:
            yield BadRow(str(path), None, f"invalid JSON file ({e})")
        return
    if isinstance(data, dict):  # {"data": [...]} or a column-oriented dict
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else [data]
    lo, hi = shard_range(len(data), rank, world_size)
    for i in range(lo, hi):
        obj = data[i]
        if isinstance(obj, dict):
            yield Row(str(path), i, obj)
        else:
            yield BadRow(str(path), i, f"expected a JSON object, got {type(obj).__name__}")


def iter_parquet(path: Path, rank: int, world_size: int) -> Iterator[Item]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        n = pf.metadata.num_rows
    except Exception as e:  # corrupt footer, not parquet, ...
        if rank == 0:  # reported once, not by every task
            yield BadRow(str(path), None, f"corrupt parquet file ({type(e).__name__}: {e})")
        return
    lo, hi = shard_range(n, rank, world_size)
    offset = 0
    for g in range(pf.num_row_groups):
        g_rows = pf.metadata.row_group(g).num_rows
        g_lo, g_hi = offset, offset + g_rows
        offset = g_hi
        if g_hi <= lo or g_lo >= hi:
            continue
        try:
            table = pf.read_row_group(g)
        except Exception as e:
            yield BadRow(str(path), g_lo, f"corrupt row group {g} ({type(e).__name__}: {e})")
            continue
        a, b = max(lo, g_lo) - g_lo, min(hi, g_hi) - g_lo
        for i, obj in enumerate(table.slice(a, b - a).to_pylist()):
            yield Row(str(path), g_lo + a + i, obj)


def _iter_hf(ds: Any, file: str, rank: int, world_size: int) -> Iterator[Item]:
    lo, hi = shard_range(len(ds), rank, world_size)
    step = 1000
    for start in range(lo, hi, step):
        batch = ds[start : min(hi, start + step)]
        keys = list(batch)
        for j in range(len(batch[keys[0]]) if keys else 0):
            yield Row(file, start + j, {k: batch[k][j] for k in keys})


def iter_saved_dataset(path: Path, split: str, rank: int, world_size: int) -> Iterator[Item]:
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        ds = ds[split]
    yield from _iter_hf(ds, str(path), rank, world_size)


def iter_hub(cfg: SourceConfig, rank: int, world_size: int) -> Iterator[Item]:
    import datasets

    assert cfg.hub is not None
    ds = datasets.load_dataset(cfg.hub, cfg.config, split=cfg.split)
    yield from _iter_hf(ds, f"hub://{cfg.hub}/{cfg.config or 'default'}/{cfg.split}", rank, world_size)


def why_no_rows(path: Path, fmt: str) -> str | None:
    """Why a local source file yields no row at all (empty, or not readable as its format), else None.

    Reads at most the first non-blank line of a JSONL file and a Parquet file's footer.

    Example:
        >>> import tempfile
        >>> empty = Path(tempfile.mkdtemp()) / "e.jsonl"
        >>> _ = empty.write_text("")
        >>> why_no_rows(empty, "jsonl")
        'is empty (0 bytes)'
    """
    if fmt not in ("jsonl", "json", "parquet") or not path.is_file():
        return None
    if path.stat().st_size == 0:
        return "is empty (0 bytes)"
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            n = pq.ParquetFile(path).metadata.num_rows
            return "is empty (0 rows)" if n == 0 else None
        opener = gzip.open if path.name.endswith(".gz") else open
        if fmt == "jsonl":
            with opener(path, "rb") as f:
                return None if any(line.strip() for line in f) else "is empty (only blank lines)"
        with opener(path, "rb") as f:
            data = json.loads(f.read())
        rows = next(iter(data.values()), None) if isinstance(data, dict) else data
        return "is empty (no rows)" if isinstance(rows, list) and not rows else None
    except Exception as e:  # not parquet, bad gzip, invalid JSON, ...
        kind = {"parquet": "a readable parquet file", "json": "valid JSON"}.get(fmt, "readable")
        return f"is not {kind} ({type(e).__name__}: {e})"


def columns_of(path: Path, fmt: str, split: str) -> list[str] | None:
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        if fmt == "jsonl":
            opener = gzip.open if path.name.endswith(".gz") else open
            with opener(path, "rb") as f:
                for line in f:
                    if line.strip():
                        obj = orjson.loads(line)
                        return list(obj) if isinstance(obj, dict) else None
            return []
        if fmt == "json":
            data = json.loads(path.read_bytes())
            if isinstance(data, list) and data and isinstance(data[0], dict):
                return list(data[0])
            return None
        if fmt == "arrow":
            import datasets

            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                ds = ds[split]
            return list(ds.column_names)
    except Exception:
        return None
    return None


class RowsFileError(ValueError):
    """A JSONL file of rows that cannot be read; the message starts with `FILE:LINE:` (or `FILE:`)."""


def read_numbered_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) of every non-blank line of a JSONL file; raises RowsFileError on the first
    line that is not a JSON object (the `tracekit verify` commands: bad input names its file and line).

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "rows.jsonl"
        >>> _ = p.write_text('{"gold": "1"}\\n\\n{"gold": "2"\\n')
        >>> try:
        ...     read_numbered_jsonl(p)
        ... except RowsFileError as e:
        ...     print(str(e).replace(str(p), "FILE"))
        FILE:3: not JSON (Expecting ',' delimiter, column 13)
        >>> _ = p.write_text('{"gold": "1"}\\n\\n{"gold": "2"}\\n')
        >>> read_numbered_jsonl(p)
        [(1, {'gold': '1'}), (3, {'gold': '2'})]
    """
    path = Path(path)
    rows: list[tuple[int, dict[str, Any]]] = []
    try:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line.rstrip("\r\n"))
                except json.JSONDecodeError as e:
                    raise RowsFileError(f"{path}:{n}: not JSON ({e.msg}, column {e.colno})") from None
                if not isinstance(row, dict):
                    raise RowsFileError(
                        f"{path}:{n}: each line must be a JSON object, got {type(row).__name__}"
                    )
                rows.append((n, row))
    except FileNotFoundError:
        raise RowsFileError(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        raise RowsFileError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except IsADirectoryError:
        raise RowsFileError(f"{path}: is a directory, not a JSONL file") from None
    return rows


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every row of a small local file (JSONL, JSON list or {split: [rows]}, Parquet; `.gz` too), as dicts."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        if name.endswith((".jsonl", ".jsonl.gz")):
            return [json.loads(line) for line in f if line.strip()]
        data = json.load(f)
    if isinstance(data, dict):  # {"split": [rows]} or {"data": [rows]}
        data = next(v for v in data.values() if isinstance(v, list))
    return list(data)
