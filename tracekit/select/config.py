"""Recipe model of prompt selection (`select:` in a recipe): a student's pass rate and an LLM's labels,
decided once per prompt before the teacher samples anything.

    select:
      pass_rate: {kind: vllm, model: Qwen/Qwen2.5-7B-Instruct, n: 8, keep: [0.0, 0.5]}   # a student samples
      # or {column: pass_rate, keep: [0.1, 0.9]}              (a pass rate the source already has)
      # or {kind: dataset, generations: student_answers, keep: [0, 0.75]}   (student answers it already has)
      # or a list of student blocks, one after another; `keep` (the same on each) applies to the
      # highest of their pass rates:
      #   - {kind: vllm, model: Qwen/Qwen2.5-7B-Instruct, n: 1, keep: [0.0, 0.0]}
      #   - {kind: vllm, model: Qwen/Qwen2.5-32B-Instruct, n: 1, keep: [0.0, 0.0]}
      labels:
        judge: {kind: openai, base_urls: [http://localhost:8000/v1], model: judge}
        ask: [difficulty, domain]
        domains: [algebra, geometry, number theory, combinatorics]
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from tracekit.teachers.config import (
    DatasetTeacherConfig,
    OpenAITeacherConfig,
    SamplingConfig,
    TeacherConfig,
    VllmTeacherConfig,
)

DIFFICULTY_QUESTION = (
    "Rate how difficult the following problem is for a strong student, on a scale from 1 (routine) "
    "to 10 (olympiad level or beyond). Answer with the number only.\n\nProblem:\n{prompt}"
)
DOMAIN_QUESTION = (
    "Which one of these domains does the following problem belong to?\n{domains}\n\n"
    "Answer with the domain's name exactly as written above, and nothing else.\n\nProblem:\n{prompt}"
)


def _window(v: list[float], *, lo: float, hi: float) -> list[float]:
    a, b = v
    if not (lo <= a <= hi and lo <= b <= hi):
        raise ValueError(f"`keep` bounds lie in [{lo:g}, {hi:g}]; got [{a:g}, {b:g}]")
    if a > b:
        raise ValueError(f"`keep` is [low, high]; got [{a:g}, {b:g}] (reversed)")
    return v


class WindowFields(BaseModel):
    """What every kind of pass rate has: the window of prompts kept, and the sources it applies to."""

    model_config = ConfigDict(extra="forbid")

    keep: list[float] = Field(
        ...,
        min_length=2,
        max_length=2,
        description="[low, high]: prompts whose pass rate lies in it (both included) are kept; below "
        "low they are dropped as too_hard, above high as too_easy. Prompts with no pass rate are kept",
    )
    sources: list[str] | None = Field(
        None, description="sources whose prompts are selected (None: every source); the others pass untouched"
    )

    @field_validator("keep")
    @classmethod
    def _keep(cls, v: list[float]) -> list[float]:
        return _window(v, lo=0.0, hi=1.0)


class ColumnPassRate(WindowFields):
    """A pass rate the source already has (a number in [0, 1] per row)."""

    column: str = Field(..., description="source column holding the pass rate")


class ReplayStudent(WindowFields):
    """Student answers the source already has: verified here like a student's samples."""

    kind: Literal["dataset"]
    generations: str = Field(..., description="source column with the student's answers (a string or a list)")
    model: str | None = Field(None, description="name of the student that wrote them (for the card)")
    n: int | None = Field(None, ge=1, description="use at most this many answers per prompt")


class _StudentFields(WindowFields):
    n: int = Field(8, ge=1, description="answers sampled per prompt")

    @field_validator("n")
    @classmethod
    def _n_not_in_sampling(cls, v: int, info: ValidationInfo) -> int:
        sampling = info.data.get("sampling")  # validated before `n` (a field of the teacher base)
        if isinstance(sampling, SamplingConfig) and "n" in sampling.model_fields_set and sampling.n != v:
            raise ValueError("give the number of answers as `pass_rate.n`, not inside `sampling`")
        return v

    @model_validator(mode="after")
    def _n_into_sampling(self) -> Any:
        sampling: SamplingConfig = getattr(self, "sampling")  # noqa: B009 (a field of the teacher base)
        object.__setattr__(self, "sampling", sampling.model_copy(update={"n": self.n}))
        return self


class VllmStudent(_StudentFields, VllmTeacherConfig):
    """A student model run by vLLM for the select stage (the teacher's machinery: offline engine or
    managed server, request cache for resume)."""

    @field_validator("engine", mode="before")
    @classmethod
    def _engine_is_arguments(cls, v: Any) -> Any:
        if isinstance(v, str):
            raise ValueError(
                f"`engine` holds vLLM's engine arguments (a mapping such as {{max_model_len: 8192}}); "
                f"to pick the student's engine write `kind: {v if v in ('vllm', 'openai') else 'vllm | openai'}`"
            )
        return v


class OpenAIStudent(_StudentFields, OpenAITeacherConfig):
    """A student behind OpenAI-compatible endpoints."""


def _pass_rate_kind(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "students"
    if isinstance(value, dict):
        return "from_column" if "column" in value and "kind" not in value else str(value.get("kind", "vllm"))
    return "from_column" if isinstance(value, ColumnPassRate) else str(getattr(value, "kind", "vllm"))


StudentConfig = ReplayStudent | VllmStudent | OpenAIStudent

# one block of a list: a student (a column is parsed too, so that mixing one in is named as such)
_Block = Annotated[
    Annotated[ColumnPassRate, Tag("from_column")]
    | Annotated[ReplayStudent, Tag("dataset")]
    | Annotated[VllmStudent, Tag("vllm")]
    | Annotated[OpenAIStudent, Tag("openai")],
    Discriminator(_pass_rate_kind),
]


def _at(index: int, key: str, message: str, value: Any) -> ValidationError:
    """An error at `[index].key` of the list (pydantic prefixes the list's own location)."""
    err = InitErrorDetails(type=PydanticCustomError("students", message), loc=(index, key), input=value)
    return ValidationError.from_exception_data("students", [err])


def _students(blocks: list[Any]) -> list[StudentConfig]:
    """Several students: each a model (named once), one window and one set of sources for all."""
    if not blocks:
        raise ValueError("`pass_rate` lists no student: give one student block, or a list of several")
    first = blocks[0]
    models: dict[str, int] = {}
    for i, b in enumerate(blocks):
        if isinstance(b, ColumnPassRate):
            raise _at(
                i, "column", "a source's pass-rate `column` is no student: it cannot be listed with students "
                "(use `pass_rate: {column: ..., keep: [...]}` alone, or students alone)", b.column,
            )
        if b.model is None:
            raise _at(i, "model", "each student of a list needs `model`: the ledger records its pass rate by that name", None)
        if b.model in models:
            raise _at(
                i, "model", f"student {i} is the same model as student {models[b.model]} ({b.model!r}): "
                "list each model once", b.model,
            )
        models[b.model] = i
        for key in ("keep", "sources"):
            if getattr(b, key) != getattr(first, key):
                raise _at(
                    i, key, f"`{key}` applies to the students' combined pass rate: give every student the same "
                    f"(student 0 has {getattr(first, key)}, student {i} {getattr(b, key)})", getattr(b, key),
                )
    return blocks


# (tags are no keys of the recipe: the loader leaves them out of error locations)
PassRateConfig = Annotated[
    Annotated[ColumnPassRate, Tag("from_column")]
    | Annotated[ReplayStudent, Tag("dataset")]
    | Annotated[VllmStudent, Tag("vllm")]
    | Annotated[OpenAIStudent, Tag("openai")]
    | Annotated[list[_Block], AfterValidator(_students), Tag("students")],
    Discriminator(_pass_rate_kind),
]


def students_of(cfg: Any) -> list[tuple[str, StudentConfig]]:
    """The students of a `pass_rate` config with the name of each one's request cache, usage logs and
    estimate block: `student` for a single block, `student-1`, `student-2`, ... for a list (in its
    order); none for a source's column.

        >>> blocks = [{"kind": "vllm", "model": m, "keep": [0, 0]} for m in ("small", "large")]
        >>> [(name, s.model) for name, s in students_of(SelectConfig.model_validate({"pass_rate": blocks}).pass_rate)]
        [('student-1', 'small'), ('student-2', 'large')]
    """
    if isinstance(cfg, list):
        return [(f"student-{i}", s) for i, s in enumerate(cfg, start=1)]
    if cfg is None or isinstance(cfg, ColumnPassRate):
        return []
    return [("student", cfg)]


def window_of(cfg: Any) -> WindowFields:
    """The `keep` window and `sources` of a `pass_rate` config (a list's students share them)."""
    return cfg[0] if isinstance(cfg, list) else cfg

_JUDGE_SAMPLING = {"temperature": 0.0, "max_tokens": 4096}


class VllmJudge(VllmTeacherConfig):
    """A labelling judge run by vLLM (greedy by default; the question is the whole user message)."""

    sampling: SamplingConfig = Field(default_factory=lambda: SamplingConfig(**_JUDGE_SAMPLING))
    prompt_template: str = Field("{prompt}", description="user message template around the question")


class OpenAIJudge(OpenAITeacherConfig):
    """A labelling judge behind OpenAI-compatible endpoints."""

    sampling: SamplingConfig = Field(default_factory=lambda: SamplingConfig(**_JUDGE_SAMPLING))
    prompt_template: str = Field("{prompt}", description="user message template around the question")


JudgeConfig = Annotated[VllmJudge | OpenAIJudge, Field(discriminator="kind")]


class LabelsConfig(BaseModel):
    """Ask an LLM to rate each prompt's difficulty (1-10) and to name its domain from `domains`.

    The question and the judge's raw answer are recorded in the ledger (`selection`); an answer that
    is not one integer 1-10 (difficulty) or one of `domains` (domain), or a request that failed, drops
    the prompt as `label_failed`.
    """

    model_config = ConfigDict(extra="forbid")

    judge: JudgeConfig
    ask: list[Literal["difficulty", "domain"]] = Field(..., min_length=1, description="labels asked, in order")
    domains: list[str] | None = Field(
        None, min_length=2, description="the domains the judge chooses from (e.g. the MSC top-level classes)"
    )
    keep_difficulty: list[int] | None = Field(
        None,
        min_length=2,
        max_length=2,
        description="[low, high]: keep prompts rated in it; below is too_easy, above too_hard",
    )
    difficulty_question: str = Field(DIFFICULTY_QUESTION, description="question asked, with {prompt}")
    domain_question: str = Field(DOMAIN_QUESTION, description="question asked, with {prompt} and {domains}")
    sources: list[str] | None = Field(None, description="sources whose prompts are labelled (None: every source)")

    @field_validator("keep_difficulty")
    @classmethod
    def _keep(cls, v: list[int] | None) -> list[int] | None:
        return None if v is None else [int(x) for x in _window([float(x) for x in v], lo=1, hi=10)]

    @model_validator(mode="after")
    def _consistent(self) -> LabelsConfig:
        if len(set(self.ask)) != len(self.ask):
            raise ValueError("`ask` names a label twice")
        if "domain" in self.ask and not self.domains:
            raise ValueError("asking for `domain` needs `domains`: the list the judge chooses from")
        if self.keep_difficulty is not None and "difficulty" not in self.ask:
            raise ValueError("`keep_difficulty` needs `difficulty` in `ask`")
        for name, q, keys in (
            ("difficulty_question", self.difficulty_question, ("{prompt}",)),
            ("domain_question", self.domain_question, ("{prompt}", "{domains}")),
        ):
            missing = [k for k in keys if k not in q]
            if missing:
                raise ValueError(f"`{name}` must contain {' and '.join(missing)}")
        return self


class SelectConfig(BaseModel):
    """`select:` — which prompts the teacher samples: a student's pass rate window and LLM labels.

    Runs once per prompt in the `select` stage, before sampling; dropped prompts stay in the ledger
    (one row each, no completion) with `drop_reason` too_easy, too_hard or label_failed.

    Example:
        >>> SelectConfig.model_validate({"pass_rate": {"column": "rate", "keep": [0.1, 0.9]}}).pass_rate.keep
        [0.1, 0.9]
    """

    model_config = ConfigDict(extra="forbid")

    pass_rate: PassRateConfig | None = Field(
        None,
        description="keep prompts whose student pass rate is in a window; a list of students: the highest of "
        "their pass rates",
    )
    labels: LabelsConfig | None = Field(None, description="difficulty and domain labels from an LLM judge")

    @model_validator(mode="after")
    def _something(self) -> SelectConfig:
        if self.pass_rate is None and self.labels is None:
            raise ValueError("`select` needs `pass_rate`, `labels` or both")
        return self


def student_teacher(cfg: StudentConfig) -> TeacherConfig:
    """The teacher config that samples the student's answers (n per prompt)."""
    if isinstance(cfg, ReplayStudent):
        return DatasetTeacherConfig(model=cfg.model, max_generations=cfg.n)
    base = VllmTeacherConfig if isinstance(cfg, VllmStudent) else OpenAITeacherConfig
    return base.model_validate(cfg.model_dump(exclude={"n", "keep", "sources"}))


def judge_teacher(cfg: VllmJudge | OpenAIJudge) -> VllmTeacherConfig | OpenAITeacherConfig:
    """The teacher config that asks the judge (one answer per question)."""
    base = VllmTeacherConfig if isinstance(cfg, VllmJudge) else OpenAITeacherConfig
    data = cfg.model_dump()
    data["sampling"] = {**data["sampling"], "n": 1}
    return base.model_validate(data)


def uses_vllm(cfg: SelectConfig) -> bool:
    """Whether the select stage runs a vLLM engine (and so wants a GPU)."""
    return any(isinstance(s, VllmStudent) for _, s in students_of(cfg.pass_rate)) or (
        cfg.labels is not None and cfg.labels.judge.kind == "vllm"
    )
