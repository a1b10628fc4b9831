"""Reading prompt rows from a source, sharded across tasks, with bad rows reported and skipped."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from pathlib import Path

from tracekit.sources import formats
from tracekit.sources.config import SourceConfig
from tracekit.sources.rows import Item, SourceError


def source_files(cfg: SourceConfig, base_dir: Path) -> list[Path]:
    """The local files of a source, sorted (a file, a folder, or a glob)."""
    assert cfg.path is not None
    p = Path(cfg.path).expanduser()
    p = p if p.is_absolute() else base_dir / p
    if p.is_dir():
        if (p / "dataset_info.json").exists() or (p / "dataset_dict.json").exists():
            return [p]  # a saved `datasets` dataset
        files = sorted(
            f for f in p.rglob("*") if f.is_file() and f.suffix in (".jsonl", ".json", ".parquet", ".gz")
        )
        return files
    if any(c in str(p) for c in "*?["):
        return sorted(Path(f) for f in glob.glob(str(p), recursive=True))
    return [p]


def detect_format(cfg: SourceConfig, file: Path) -> str:
    if cfg.hub is not None:
        return "hub"
    if cfg.format != "auto":
        return cfg.format
    if file.is_dir():
        return "arrow"
    name = file.name.lower().removesuffix(".gz")
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".json"):
        return "json"
    return "jsonl"


def iter_source(cfg: SourceConfig, base_dir: Path, rank: int = 0, world_size: int = 1) -> Iterator[Item]:
    """Yield this rank's rows of a source (every file is split across ranks), and bad rows."""
    if cfg.hub is not None:
        yield from formats.iter_hub(cfg, rank, world_size)
        return
    files = source_files(cfg, base_dir)
    if not files:
        raise SourceError(f"source {cfg.name!r}: no files match {cfg.path}")
    for f in files:
        if not f.exists():
            raise SourceError(f"source {cfg.name!r}: file not found: {f}")
        fmt = detect_format(cfg, f)
        if fmt == "jsonl":
            yield from formats.iter_jsonl(f, rank, world_size)
        elif fmt == "json":
            yield from formats.iter_json_array(f, rank, world_size)
        elif fmt == "parquet":
            yield from formats.iter_parquet(f, rank, world_size)
        else:
            yield from formats.iter_saved_dataset(f, cfg.split, rank, world_size)


def peek_columns(cfg: SourceConfig, base_dir: Path) -> list[str] | None:
    """Column names of a source without reading it all (None if they cannot be known cheaply)."""
    if cfg.hub is not None:
        return None
    readable = [f for f in source_files(cfg, base_dir) if f.exists() and not why_no_rows(cfg, f)]
    if not readable:
        return None
    return formats.columns_of(readable[0], detect_format(cfg, readable[0]), cfg.split)


def why_no_rows(cfg: SourceConfig, file: Path) -> str | None:
    """Why one local file of a source yields no row (empty, or unreadable as its format), else None."""
    return formats.why_no_rows(file, detect_format(cfg, file))


def estimate_rows(cfg: SourceConfig, base_dir: Path) -> int | None:
    """Rows a source will yield, cheaply: exact for Parquet, from the first lines' size for JSONL."""
    if cfg.hub is not None:
        return None
    total = 0
    for f in source_files(cfg, base_dir):
        fmt = detect_format(cfg, f)
        try:
            if fmt == "parquet":
                import pyarrow.parquet as pq

                total += pq.ParquetFile(f).metadata.num_rows
            elif fmt == "jsonl" and not f.name.endswith(".gz"):
                size = f.stat().st_size
                with open(f, "rb") as fh:
                    head = fh.read(1 << 20)
                lines = head.count(b"\n")
                total += size * lines // len(head) if head and lines else 0
            else:
                return None
        except Exception:  # unreadable file: the build reports it; no estimate
            return None
    if cfg.limit is not None:
        total = min(total, cfg.limit * max(1, len(source_files(cfg, base_dir))))
    return total
