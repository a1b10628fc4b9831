"""The `filters:` recipe section: a list of filter names, or single-key dicts with options.

    filters: [format, truncated, language_mix, repetition, {length: {max_completion_tokens: 32768}}, answer_present]

Filters run in the order given. An unknown name fails validation with the list of known names.

Example:
    >>> from pydantic import TypeAdapter
    >>> specs = TypeAdapter(FilterList).validate_python(["format", {"length": {"max_completion_tokens": 8}}])
    >>> [filter_name(s) for s in specs]
    ['format', 'length']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FormatOptions(_Options):
    """No options: exactly one closed reasoning block and a non-empty answer after it."""


class TruncatedOptions(_Options):
    """No options: finish reason `length` or an unclosed reasoning block."""


class LanguageMixOptions(_Options):
    max_foreign_ratio: float = Field(
        default=0.01, ge=0, le=1, description="largest share of words in another script"
    )
    min_foreign_units: int = Field(default=3, ge=1, description="foreign words needed before dropping")
    allow_latin_in_non_latin: bool = Field(
        default=True, description="Latin words in e.g. Chinese reasoning are not a mix"
    )


class RepetitionOptions(_Options):
    tail_chars: int = Field(default=2000, ge=100, description="tail length checked for compressibility")
    min_tail_compression: float = Field(
        default=0.15, ge=0, le=1, description="zlib size ratio below which the tail loops"
    )
    tail_words: int = Field(default=400, ge=10, description="tail words checked for repeated n-grams")
    ngram: int = Field(default=8, ge=2, description="words per n-gram in the tail check")
    max_tail_ngram_repeat: float = Field(
        default=0.5, ge=0, le=1, description="largest share of repeated tail n-grams"
    )
    min_line_chars: int = Field(default=20, ge=1, description="shorter lines are not compared")
    max_repeated_lines: float = Field(default=0.6, ge=0, le=1, description="largest share of repeated lines")
    min_repeated_lines: int = Field(default=10, ge=1, description="repeated lines needed before dropping")


class LengthOptions(_Options):
    min_prompt_tokens: int | None = Field(default=None, ge=0, description="drop shorter prompts")
    max_prompt_tokens: int | None = Field(default=None, ge=1, description="drop longer prompts")
    min_completion_tokens: int | None = Field(default=None, ge=0, description="drop shorter completions")
    max_completion_tokens: int | None = Field(default=32768, ge=1, description="drop longer completions")


class AnswerPresentOptions(_Options):
    domains: list[str] = Field(default_factory=lambda: ["math"], description="domains that need an answer")


FILTER_OPTIONS: dict[str, type[_Options]] = {
    "format": FormatOptions,
    "truncated": TruncatedOptions,
    "language_mix": LanguageMixOptions,
    "repetition": RepetitionOptions,
    "length": LengthOptions,
    "answer_present": AnswerPresentOptions,
}
FilterName = Literal["format", "truncated", "language_mix", "repetition", "length", "answer_present"]
DEFAULT_FILTERS: list[str] = ["format", "truncated", "language_mix", "repetition", "length", "answer_present"]


class FormatSpec(_Options):
    format: FormatOptions = Field(default_factory=FormatOptions)


class TruncatedSpec(_Options):
    truncated: TruncatedOptions = Field(default_factory=TruncatedOptions)


class LanguageMixSpec(_Options):
    language_mix: LanguageMixOptions = Field(default_factory=LanguageMixOptions)


class RepetitionSpec(_Options):
    repetition: RepetitionOptions = Field(default_factory=RepetitionOptions)


class LengthSpec(_Options):
    length: LengthOptions = Field(default_factory=LengthOptions)


class AnswerPresentSpec(_Options):
    answer_present: AnswerPresentOptions = Field(default_factory=AnswerPresentOptions)


def filter_name(spec: Any) -> str | None:
    """The filter a spec names: the string itself, or the single key of a dict / spec model."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, dict):
        return next(iter(spec)) if len(spec) == 1 else None
    if isinstance(spec, BaseModel):
        return next(iter(type(spec).model_fields))
    return None


def filter_options(spec: Any) -> _Options:
    """The validated options model of one (validated) spec."""
    name = filter_name(spec)
    if isinstance(spec, BaseModel):
        return getattr(spec, name or "")
    return FILTER_OPTIONS[name or ""]()


def _form(v: Any) -> str:
    return "name" if isinstance(v, str) else "mapping"


def _tagged(name: str, spec: type[BaseModel]) -> Any:
    """A bare name or a {name: options} mapping; only the matching form's errors are reported."""
    bare = Annotated[Literal[name], Tag("name")]  # type: ignore[valid-type]
    return Annotated[bare | Annotated[spec, Tag("mapping")], Discriminator(_form), Tag(name)]


if TYPE_CHECKING:  # built at runtime from the options models
    FilterSpec = Any
else:
    FilterSpec = Annotated[
        _tagged("format", FormatSpec)
        | _tagged("truncated", TruncatedSpec)
        | _tagged("language_mix", LanguageMixSpec)
        | _tagged("repetition", RepetitionSpec)
        | _tagged("length", LengthSpec)
        | _tagged("answer_present", AnswerPresentSpec),
        Discriminator(
            filter_name,
            custom_error_type="unknown_filter",
            custom_error_message=(
                "unknown filter; expected one of format, truncated, language_mix, repetition, length, "
                "answer_present, as a name or a single-key mapping {name: {options}}"
            ),
            custom_error_context={"known": ", ".join(FILTER_OPTIONS)},
        ),
    ]
FilterList = list[FilterSpec]
