"""Live progress: tasks write small JSON counters; the CLI reads them and draws one line per stage.

The counters are written by `CountRows`, a pass-through step the engine puts into a stage's pipeline
(after the source reader, before the trace writer, after finalize), so the stages themselves know
nothing of progress files; the same step carries the fault points tests kill a build at.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from tracekit.engine.lifeline import fault, fault_spec


class ProgressFile:
    """Throttled per-task counters at `{folder}/{name}-{rank:05d}.json` (written atomically)."""

    def __init__(self, folder: str | Path, name: str, rank: int, every_s: float = 0.5) -> None:
        self.path = Path(folder) / f"{name}-{rank:05d}.json"
        self.every_s = every_s
        self.counts: dict[str, float] = {}
        self._last = 0.0
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def add(self, key: str, n: float = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        self._last = now or time.monotonic()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(self.counts))
        os.replace(tmp, self.path)


def read_counts(folder: Path, name: str, *, with_rounds: bool = False) -> dict[str, float]:
    """The counters of stage `name` summed over its tasks (and over its resample rounds if asked)."""
    total: dict[str, float] = {}
    if not folder.exists():
        return total
    files = list(folder.glob(f"{name}-[0-9]*.json"))
    if with_rounds:
        files += folder.glob(f"{name}-r[0-9]*-[0-9]*.json")
    for f in files:
        try:
            for k, v in json.loads(f.read_text()).items():
                total[k] = total.get(k, 0) + v
        except (OSError, json.JSONDecodeError):
            continue
    return total


class CountRows(PipelineStep):
    """Pass documents through, counting them into `{folder}/{counter}-RANK.json` under `key`.

    `weight`: a metadata field holding how many rows a document stands for (finalize yields one
    document per shard); without it each document counts one. `fault_point`: on rank 0, the test
    hook `TRACEKIT_FAULT=point:n` fires once the n-th document has gone through to the next step.
    """

    type = "📈 - PROGRESS"
    name = "progress"

    def __init__(
        self, *, folder: str, counter: str, key: str, fault_point: str | None = None, weight: str | None = None
    ) -> None:
        super().__init__()
        self.folder = folder
        self.counter = counter
        self.key = key
        self.fault_point = fault_point
        self.weight = weight

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        progress = ProgressFile(self.folder, self.counter, rank)
        spec = fault_spec() if self.fault_point and rank == 0 else None
        for n, doc in enumerate(data or [], start=1):
            progress.add(self.key, doc.metadata[self.weight] if self.weight else 1)
            yield doc
            if spec is not None:
                fault(self.fault_point or "", n, spec)
        progress.flush()


class LiveDisplay:
    """A rich live line per stage: rows, rows/s, ETA (when the total is known)."""

    def __init__(self, progress_dir: Path, stages: list[str], expected_prompts: int | None) -> None:
        self.dir = progress_dir
        self.stages = stages
        self.expected = expected_prompts
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()

    def _render(self) -> Any:
        from rich.table import Table

        elapsed = time.monotonic() - self._t0
        t = Table(box=None, show_header=True, header_style="bold")
        for col in ("stage", "rows", "rows/s", "ETA"):
            t.add_column(col, justify="right" if col != "stage" else "left")
        for st in self.stages:
            c = read_counts(self.dir, st, with_rounds=True)
            rows = int(c.get("rows", 0))
            rate = rows / elapsed if elapsed > 0 else 0.0
            eta = "-"
            prompts = read_counts(self.dir, "read").get("prompts", 0)
            if st == "sample" and self.expected and prompts and elapsed > 0:
                frac = min(prompts / self.expected, 1.0)
                eta = f"{elapsed * (1 - frac) / frac:,.0f}s" if frac < 1 else "0s"
            t.add_row(st, f"{rows:,}", f"{rate:,.0f}", eta)
        return t

    def __enter__(self) -> LiveDisplay:
        from rich.console import Console
        from rich.live import Live

        console = Console(stderr=True)
        if not console.is_terminal:
            return self
        self._live = Live(self._render(), console=console, refresh_per_second=2, transient=True)
        self._live.__enter__()

        def loop() -> None:
            while not self._stop.wait(0.5):
                self._live.update(self._render())

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._live.__exit__(*exc)
