"""The stages of a build, in order: the one list the plan, the executors and `tracekit status` share.

  select    `select:` only: sources -> pass rate, labels -> work/selected; dropped prompts -> work/traces
            (tasks: N)
  sample    sources (or work/selected) -> teacher -> parse -> verify -> filters -> work/traces   (tasks: N)
            (live teacher or `rewrite:`: sources -> teacher -> work/sampled)
  rewrite   `rewrite:` only: work/sampled -> rewriting model -> work/rewritten   (tasks: N)
  verify    live teachers or `rewrite:`: work/sampled (or rewritten) -> parse -> verify -> filters
            -> work/traces   (tasks: N)
  dedup     work/traces -> work/decisions/dedup.parquet       (tasks: 1)
  decontam  work/traces -> work/decisions/decontam.parquet    (tasks: 1)
  mix       work/traces + decisions -> work/decisions/mix.parquet   (tasks: 1)
  finalize  work/traces + decisions -> ledger/ + dataset/data/   (tasks: N)

A resample round (`mix: {fill: resample}`) runs the stages before finalize again under the names
`sample-r1`, `rewrite-r1`, `verify-r1`, ..., `mix-r1`, each with its own logs (so its tasks are its own to resume).

    >>> round_name("sample", 2), kind_of("sample-r2"), kind_of("mix")
    ('sample-r2', 'sample', 'mix')
    >>> sorted(["finalize", "mix-r1", "sample", "sample-r1", "mix"], key=order_key)
    ['sample', 'mix', 'sample-r1', 'mix-r1', 'finalize']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datatrove.pipeline.base import PipelineStep

STAGE_ORDER = ("select", "sample", "rewrite", "verify", "dedup", "decontam", "mix", "finalize")
PER_TRACE = ("select", "sample", "rewrite", "verify")
GLOBAL = ("dedup", "decontam", "mix")


@dataclass
class Stage:
    """One datatrove executor's worth of work: a pipeline run as `tasks` tasks."""

    name: str
    pipeline: list[PipelineStep]
    tasks: int
    workers: int

    @property
    def kind(self) -> str:
        """The stage's name without its round (`sample-r2` -> `sample`)."""
        return kind_of(self.name)


def round_name(name: str, rnd: int) -> str:
    return f"{name}-r{rnd}"


def kind_of(name: str) -> str:
    return name.partition("-r")[0]


def round_of(name: str) -> int:
    """0 for the first pass, n for `NAME-rn`."""
    _, sep, rnd = name.partition("-r")
    return int(rnd) if sep and rnd.isdigit() else 0


def order_key(name: str) -> tuple[int, int, str]:
    """Build order of stage names: finalize last, each round after the pass before it."""
    kind = kind_of(name)
    idx = STAGE_ORDER.index(kind) if kind in STAGE_ORDER else len(STAGE_ORDER)
    rnd = round_of(name)
    if kind == "finalize":
        return (1 << 30, idx, name)
    return (rnd, idx, name)


def stage_kinds(
    *,
    live_teacher: bool,
    rewrite: Any = None,
    dedup: Any = None,
    decontaminate: Any = None,
    mix: Any = None,
    select: Any = None,
) -> list[str]:
    """The stages a recipe runs (without resample rounds): the `STAGE_ORDER` entries it needs."""
    wanted = {
        "select": select is not None,
        "sample": True,
        "rewrite": rewrite is not None,
        "verify": live_teacher or rewrite is not None,
        "dedup": dedup is not None,
        "decontam": decontaminate is not None,
        "mix": mix is not None,
        "finalize": True,
    }
    return [name for name in STAGE_ORDER if wanted[name]]
