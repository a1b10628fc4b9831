"""The `filters:` recipe section: a list of filter names, or single-key dicts with options.

    filters: [format, truncated, language_mix, repetition, {length: {max_completion_tokens: 32768}}, answer_present]

Filters run in the order given. An unknown name fails validation with the list of known names. Each
filter's options are its constructor's keyword-only parameters (`TraceFilter.options_model()`): nothing
about them is written here.

Example:
    >>> from pydantic import TypeAdapter
    >>> specs = TypeAdapter(FilterList).validate_python(["format", {"length": {"max_completion_tokens": 8}}])
    >>> [filter_name(s) for s in specs]
    ['format', 'length']
    >>> filter_options(specs[1]).max_completion_tokens
    8
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model

from tracekit.filters.answer_present import AnswerPresentFilter
from tracekit.filters.base import TraceFilter
from tracekit.filters.format import FormatFilter
from tracekit.filters.language_mix import LanguageMixFilter
from tracekit.filters.length import LengthFilter
from tracekit.filters.repetition import RepetitionFilter
from tracekit.filters.truncated import TruncatedFilter

# every filter a recipe may name, by its `name`, in the default order
FILTERS: dict[str, type[TraceFilter]] = {
    f.name: f
    for f in (FormatFilter, TruncatedFilter, LanguageMixFilter, RepetitionFilter, LengthFilter, AnswerPresentFilter)
}
DEFAULT_FILTERS: list[str] = list(FILTERS)
FILTER_OPTIONS: dict[str, type[BaseModel]] = {name: f.options_model() for name, f in FILTERS.items()}


def _spec_model(name: str) -> type[BaseModel]:
    """`{name: {options}}`: the mapping form of one filter in a recipe."""
    options = FILTER_OPTIONS[name]
    title = options.__name__.removesuffix("Options") + "Spec"
    field = (options, Field(default_factory=options))
    model: type[BaseModel] = create_model(title, __config__=ConfigDict(extra="forbid"), **{name: field})  # type: ignore[call-overload]
    return model


def filter_name(spec: Any) -> str | None:
    """The filter a spec names: the string itself, or the single key of a dict / spec model."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, dict):
        return next(iter(spec)) if len(spec) == 1 else None
    if isinstance(spec, BaseModel):
        return next(iter(type(spec).model_fields))
    return None


def filter_options(spec: Any) -> BaseModel:
    """The validated options model of one (validated) spec."""
    name = filter_name(spec)
    if isinstance(spec, BaseModel):
        options: BaseModel = getattr(spec, name or "")
        return options
    return FILTER_OPTIONS[name or ""]()


def _form(v: Any) -> str:
    return "name" if isinstance(v, str) else "mapping"


def _tagged(name: str) -> Any:
    """A bare name or a {name: options} mapping; only the matching form's errors are reported."""
    bare = Annotated[Literal[name], Tag("name")]  # type: ignore[valid-type]
    return Annotated[bare | Annotated[_spec_model(name), Tag("mapping")], Discriminator(_form), Tag(name)]


if TYPE_CHECKING:  # built at runtime from the filters' constructors
    FilterSpec = Any
else:
    FilterSpec = Annotated[
        Union[tuple(_tagged(name) for name in FILTERS)],  # noqa: UP007 (a union built from a tuple)
        Discriminator(
            filter_name,
            custom_error_type="unknown_filter",
            custom_error_message=(
                f"unknown filter; expected one of {', '.join(FILTERS)}, as a name or a single-key mapping "
                "{name: {options}}"
            ),
            custom_error_context={"known": ", ".join(FILTERS)},
        ),
    ]
FilterList = list[FilterSpec]
