"""Base class of the per-trace filters: flag a trace, drop it with a reason, never lose it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep


class TraceFilter(PipelineStep):
    """A keep/drop decision with a reason string.

    Unlike datatrove's `BaseFilter`, a flagged trace is not removed from the stream: it stays in the
    ledger with `kept=False` and `drop_reason=self.reason` (the first filter that flags a trace names
    the reason; every filter that flags it is listed in `filter_flags`). Drops are still counted in
    datatrove's stats under the reason name.

    Subclasses set `reason` and implement `check(doc) -> bool` (True = flag/drop).
    """

    type = "🔻 - FILTER"
    name = "filter"
    reason = "filtered"

    def check(self, doc: Document) -> bool:
        raise NotImplementedError

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        for doc in data:
            self.stat_update("seen")
            with self.track_time():
                flagged = self.check(doc)
            if flagged:
                md = doc.metadata
                md.setdefault("filter_flags", []).append(self.reason)
                if md.get("kept", True):
                    md["kept"], md["drop_reason"] = False, self.reason
                    self.stat_update(self.reason)
            yield doc
