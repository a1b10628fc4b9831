"""RequestCache: answered requests of one task, so a resumed task does not send them again."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tracekit.record import jsonl_line


class RequestCache:
    """Append-only JSONL of answered requests keyed by trace id, one file per task.

    Each answer is written (and handed to the OS) as soon as it arrives, so `kill -9` loses none;
    `fsync` runs every `fsync_every` answers and on close, which bounds what a power cut can lose. A
    line cut short by a crash is dropped when the file is opened again. Each answer is one line for any
    reader, even one that also breaks lines at U+2028 or U+0085 (see `jsonl_line`).

    Example:
        cache = RequestCache(Path("out/work/requests/00000.jsonl"))
        if "abc" not in cache:
            cache.put("abc", {"completion": "..."})
        cache.close()
    """

    def __init__(self, path: Path, *, fsync_every: int = 64) -> None:
        self.path = path
        self.fsync_every = fsync_every
        self.answers: dict[str, dict[str, Any]] = {}
        self._unsynced = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._load()
        self._f = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a line cut short by a crash: drop it
            with open(self.path, "r+b") as f:
                f.truncate(end)
        for line in data[:end].splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            self.answers[row["trace_id"]] = row["answer"]

    def __contains__(self, trace_id: str) -> bool:
        return trace_id in self.answers

    def __len__(self) -> int:
        return len(self.answers)

    def get(self, trace_id: str) -> dict[str, Any] | None:
        return self.answers.get(trace_id)

    def put(self, trace_id: str, answer: dict[str, Any]) -> None:
        self.answers[trace_id] = answer
        self._f.write(jsonl_line({"trace_id": trace_id, "answer": answer}))
        self._f.flush()
        self._unsynced += 1
        if self._unsynced >= self.fsync_every:
            self.sync()

    def sync(self) -> None:
        if self._unsynced:
            os.fsync(self._f.fileno())
            self._unsynced = 0

    def close(self) -> None:
        if not self._f.closed:
            self.sync()
            self._f.close()
