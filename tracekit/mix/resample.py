"""`mix: {fill: resample}`: what a resample round asks for, and the step that keeps only its new work.

After the mix stage, if a bucket is short, each round widens what is sampled for the sources that can
feed a short bucket: first more prompts (a source's `limit` doubles: prompts not yet sampled), and
once no such source has more rows, more samples per prompt (the replay teacher's `max_generations`,
a live teacher's `sampling.n`, doubled). Traces keep the ids they would have had in one big run (the
teacher's config hash leaves the number of samples out), so a sample is never counted twice.

The rounds themselves (plan, run on the recipe's executor, record in `resample.json`, replay on
resume) are the engine's loop: `tracekit/engine/resample.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from tracekit.record import LEDGER_SCHEMA

if TYPE_CHECKING:
    from tracekit.mix.config import MixConfig
    from tracekit.sources.config import SourceConfig

Spec = dict[str, Any]  # {"limits": {source: int | None}, "samples": int | None, "sources": [names]}


def feeding_sources(sources: list[SourceConfig], mix: MixConfig, short: list[str]) -> list[str]:
    """Sources whose traces could satisfy a short bucket's predicate.

    Each predicate is evaluated on a row holding only what is known before sampling (source,
    domain, difficulty, reasoning); a predicate that is not FALSE there (TRUE or NULL) may hold.
    """
    preds = [b.where for b in mix.buckets if b.name in short]
    rows = []
    for s in sources:
        row: dict[str, Any] = dict.fromkeys(LEDGER_SCHEMA.names)
        row.update(source=s.name, domain=s.domain, difficulty=s.difficulty, reasoning_enabled=s.reasoning)
        row.update(filter_flags=[], contamination=[], prompt_messages=[])
        rows.append(row)
    table = pa.Table.from_pylist(rows, schema=LEDGER_SCHEMA)
    con = duckdb.connect()
    con.register("pseudo", table)
    any_pred = " OR ".join(f"(({p}) IS NOT FALSE)" for p in preds) or "false"
    names = [r[0] for r in con.execute(f"SELECT source FROM pseudo WHERE {any_pred}").fetchall()]
    con.close()
    return names


def widen(spec: Spec, *, feeding: list[str], dry: set[str], can_sample_more: bool) -> Spec | None:
    """The next round's spec: double the limits of feeding sources that still have rows; else double
    the samples per prompt; None when there is nothing more to ask for."""
    limits = dict(spec["limits"])
    grow = [s for s in feeding if limits.get(s) is not None and s not in dry]
    if grow:
        for s in grow:
            limits[s] = 2 * limits[s]
        return {"limits": limits, "samples": spec["samples"], "sources": grow}
    if can_sample_more and spec["samples"] is not None and feeding:
        return {"limits": limits, "samples": 2 * spec["samples"], "sources": list(feeding)}
    return None


class ResampleWindow(PipelineStep):
    """Keep only the work a resample round adds: prompts of `sources` that were not sampled before
    (row_index at or past the old limit), or, when samples per prompt grew, every prompt of those
    sources; after the teacher, samples that existed before are dropped."""

    type = "🔁 - RESAMPLE"
    name = "resample_window"

    def __init__(
        self,
        *,
        sources: list[str],
        old_limits: dict[str, int | None],
        old_samples: int | None,
        more_samples: bool,
        after_teacher: bool,
    ) -> None:
        super().__init__()
        self.sources = set(sources)
        self.old_limits = old_limits
        self.old_samples = old_samples
        self.more_samples = more_samples
        self.after_teacher = after_teacher

    def _is_new_row(self, md: dict[str, Any]) -> bool:
        limit = self.old_limits.get(md["source"])
        return limit is not None and int(md["row_index"]) >= limit

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        for doc in data or []:
            md = doc.metadata
            if md.get("source") not in self.sources:
                continue
            new_row = self._is_new_row(md)
            if not self.after_teacher:
                if new_row or self.more_samples:
                    yield doc
                continue
            old_sample = self.old_samples is None or int(md["sample_index"]) < self.old_samples
            if new_row or not old_sample:
                self.stat_update("new_traces")
                yield doc


def new_rows_step(old: Spec, new: Spec) -> ResampleWindow:
    """Only the rows a round reads for the first time (the select stage records a dropped prompt once,
    even when the round asks more samples of the prompts it kept)."""
    return ResampleWindow(
        sources=new["sources"], old_limits=old["limits"], old_samples=None, more_samples=False, after_teacher=False
    )


def window_steps(old: Spec, new: Spec) -> tuple[ResampleWindow, ResampleWindow]:
    """The two `ResampleWindow`s of a round widened from `old` to `new`: before and after the teacher."""
    window = {
        "sources": new["sources"],
        "old_limits": old["limits"],
        "old_samples": old["samples"],
        "more_samples": new["samples"] != old["samples"],
    }
    return ResampleWindow(**window, after_teacher=False), ResampleWindow(**window, after_teacher=True)
