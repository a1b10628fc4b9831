"""Base class of the per-trace filters: keep or drop a trace with a reason, never lose it."""

from __future__ import annotations

import builtins
import inspect
import typing
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from pydantic import BaseModel, ConfigDict, create_model

# datatrove's polarity: True keeps the trace; False drops it, (False, "signal") drops it naming the check
# that tripped (a filter with several signals, e.g. repetition's, says which one)
Keep = bool | tuple[bool, str]


class TraceFilter(PipelineStep):
    """A keep/drop decision with a reason string.

    Unlike datatrove's `BaseFilter`, a dropped trace is not removed from the stream: it stays in the
    ledger with `kept=False` and `drop_reason=self.reason` (the first filter that drops a trace names
    the reason). Every filter that drops it is listed in `filter_flags`, as `reason` or, when the check
    named the signal that tripped, `reason:signal`. Drops are counted in datatrove's stats the same way.

    Subclasses set `name` and `reason` and implement `check(doc) -> Keep`. The constructor is the
    filter's config: its keyword-only parameters, with their types, defaults and bounds (an
    `Annotated[..., Field(...)]`), are the options a recipe may set (`options_model()`), except those
    listed in `set_by_build` (passed by the build, not written in a recipe).
    """

    type = "🔻 - FILTER"
    name = "filter"
    reason = "filtered"
    set_by_build: ClassVar[tuple[str, ...]] = ()

    def check(self, doc: Document) -> Keep:
        raise NotImplementedError

    @classmethod
    def options_model(cls) -> builtins.type[BaseModel]:  # `type` is datatrove's step label here
        """The recipe options of this filter, read from its constructor (`{Name}Options`, extra keys refused).

        Example:
            >>> from tracekit.filters.length import LengthFilter
            >>> LengthFilter.options_model()(max_completion_tokens=8).model_dump()
            {'min_prompt_tokens': None, 'max_prompt_tokens': None, 'min_completion_tokens': None, 'max_completion_tokens': 8}
        """
        init: Any = cls.__init__
        hints = typing.get_type_hints(init, include_extras=True)
        fields: dict[str, Any] = {
            p.name: (hints[p.name], p.default)
            for p in inspect.signature(init).parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.name not in cls.set_by_build
        }
        title = cls.__name__.removesuffix("Filter") + "Options"
        model: builtins.type[BaseModel] = create_model(
            title, __config__=ConfigDict(extra="forbid"), __doc__=_summary(cls), **fields
        )
        return model

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        for doc in data:
            self.stat_update("seen")
            with self.track_time():
                result = self.check(doc)
            keep, signal = result if isinstance(result, tuple) else (result, None)
            if not keep:
                flag = self.reason if signal is None else f"{self.reason}:{signal}"
                md = doc.metadata
                md.setdefault("filter_flags", []).append(flag)
                if md.get("kept", True):
                    md["kept"], md["drop_reason"] = False, self.reason
                    self.stat_update(self.reason)
                    if signal is not None:
                        self.stat_update(flag)
            yield doc


def _summary(cls: type) -> str:
    return (inspect.getdoc(cls) or cls.__name__).split("\n\n")[0]
