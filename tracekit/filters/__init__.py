"""Per-trace filters: each keeps or drops a trace with a reason string; dropped traces stay in the ledger.

Example:
    >>> steps = build_filters(["format", "truncated", {"length": {"max_completion_tokens": 32768}}])
    >>> [s.reason for s in steps]
    ['bad_format', 'truncated', 'length']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter

from tracekit.filters.answer_present import AnswerPresentFilter
from tracekit.filters.base import Keep, TraceFilter
from tracekit.filters.config import (
    DEFAULT_FILTERS,
    FILTERS,
    FilterList,
    FilterSpec,
    filter_name,
    filter_options,
)
from tracekit.filters.format import FormatFilter
from tracekit.filters.language_mix import LanguageMixFilter
from tracekit.filters.length import LengthFilter
from tracekit.filters.repetition import RepetitionFilter
from tracekit.filters.truncated import TruncatedFilter

_SPECS: TypeAdapter[list[Any]] = TypeAdapter(FilterList)


def build_filters(specs: Sequence[Any], *, tokenizer: str | None = None) -> list[TraceFilter]:
    """The filter steps for a recipe's `filters:` list, in the given order.

    `specs` may be raw recipe values (names / single-key dicts) or already validated specs; an
    unknown name raises pydantic's ValidationError. `tokenizer` (HF name or path) is passed to the
    filters that take it from the build (the length filter, for traces without token counts).
    """
    steps: list[TraceFilter] = []
    for spec in _SPECS.validate_python(list(specs)):
        name = filter_name(spec)
        assert name is not None
        cls = FILTERS[name]
        kwargs = filter_options(spec).model_dump()
        if "tokenizer" in cls.set_by_build:
            kwargs["tokenizer"] = tokenizer
        steps.append(cls(**kwargs))
    return steps


__all__ = [
    "DEFAULT_FILTERS",
    "FILTERS",
    "AnswerPresentFilter",
    "FilterList",
    "FilterSpec",
    "FormatFilter",
    "Keep",
    "LanguageMixFilter",
    "LengthFilter",
    "RepetitionFilter",
    "TraceFilter",
    "TruncatedFilter",
    "build_filters",
]
