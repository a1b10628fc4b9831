"""`tracekit validate RECIPE --estimate N`: what sampling a few prompts says about the whole recipe's cost.

The prompts are drawn by the engine (`tracekit/engine/preview.py`); this module measures the teacher.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from datatrove.data import Document

if TYPE_CHECKING:
    from tracekit.sources.config import SourceConfig
    from tracekit.teachers.config import LiveTeacherConfig
    from tracekit.teachers.live import LiveTeacher


@dataclass
class Estimate:
    """Measured on a sample of prompts, projected to every prompt of the recipe."""

    prompts: int  # prompts in the recipe (every source)
    traces: int  # traces the recipe will sample (prompts x n per source)
    sampled_prompts: int
    sampled_traces: int
    mean_prompt_tokens: float
    mean_completion_tokens: float
    truncated_share: float
    error_share: float
    sampling_s: float  # wall time of the sample (server start excluded)
    output_tokens_per_s: float
    gpus_per_server: int | None  # managed vLLM only
    price: dict[str, Any] | None
    per_source: dict[str, int] = field(default_factory=dict)

    @property
    def prompt_tokens(self) -> float:
        return self.traces * self.mean_prompt_tokens

    @property
    def completion_tokens(self) -> float:
        return self.traces * self.mean_completion_tokens

    @property
    def wall_hours_one_server(self) -> float:
        return self.completion_tokens / max(self.output_tokens_per_s, 1e-9) / 3600

    @property
    def gpu_hours(self) -> float | None:
        return None if self.gpus_per_server is None else self.wall_hours_one_server * self.gpus_per_server

    @property
    def cost(self) -> float | None:
        if not self.price:
            return None
        c = (
            self.prompt_tokens * self.price["prompt_per_million"]
            + self.completion_tokens * self.price["completion_per_million"]
        ) / 1e6
        if self.price.get("gpu_hour") is not None and self.gpu_hours is not None:
            c += self.gpu_hours * self.price["gpu_hour"]
        return c


def _gpus(engine: dict[str, Any]) -> int:
    return (
        int(engine.get("tensor_parallel_size", 1))
        * int(engine.get("pipeline_parallel_size", 1))
        * int(engine.get("data_parallel_size", 1))
    )


def live_teacher(config: LiveTeacherConfig, sources: list[SourceConfig]) -> LiveTeacher:
    """The teacher step of a live config, without a request cache or usage files (nothing is written)."""
    from tracekit.teachers.openai_compatible import OpenAITeacher
    from tracekit.teachers.vllm_managed import VllmTeacher

    if config.kind == "vllm":
        return VllmTeacher(config=config, sources=sources)
    return OpenAITeacher(config=config, sources=sources)


def project(
    teacher: LiveTeacher, config: LiveTeacherConfig, *, traces: int, sampled_prompts: int, counts: dict[str, int]
) -> Estimate:
    """Project what `teacher`'s last run measured (`traces` answers for `sampled_prompts` prompts) to
    `counts` prompts per source."""
    u = teacher.last_usage
    k = max(traces, 1)
    per_source = {name: c * teacher.plans[name].n for name, c in counts.items()}
    return Estimate(
        prompts=sum(counts.values()),
        traces=sum(per_source.values()),
        sampled_prompts=sampled_prompts,
        sampled_traces=traces,
        mean_prompt_tokens=u["prompt_tokens"] / k,
        mean_completion_tokens=u["completion_tokens"] / k,
        truncated_share=u["truncated"] / k,
        error_share=u["errors"] / k,
        sampling_s=u["sampling_s"],
        output_tokens_per_s=u["completion_tokens"] / max(u["sampling_s"], 1e-9),
        gpus_per_server=_gpus(config.engine) if config.kind == "vllm" else None,
        price=config.price.model_dump() if config.price else None,
        per_source=per_source,
    )


def measure_teacher(
    config: LiveTeacherConfig, sources: list[SourceConfig], docs: list[Document], counts: dict[str, int]
) -> Estimate:
    """Sample every prompt of `docs` (all its samples) with a live teacher and project the recipe's
    tokens, time and cost to `counts` (prompts per source)."""
    teacher = live_teacher(config, sources)
    traces = list(teacher.run(iter(docs), 0, 1))
    return project(teacher, config, traces=len(traces), sampled_prompts=len(docs), counts=counts)


def _num(x: float) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.2f}{unit}"
    return f"{x:.0f}" if x == math.floor(x) else f"{x:.2f}"


def format_estimate(e: Estimate) -> str:
    """The estimate as a small text table."""
    lines = [
        f"# estimate from {e.sampled_traces} traces of {e.sampled_prompts} sampled prompts",
        f"prompts                 {_num(e.prompts)}",
        f"traces to sample        {_num(e.traces)}   ({', '.join(f'{k}: {_num(v)}' for k, v in e.per_source.items())})",
        f"prompt tokens           {_num(e.prompt_tokens)}   ({e.mean_prompt_tokens:.1f} per trace)",
        f"completion tokens       {_num(e.completion_tokens)}   ({e.mean_completion_tokens:.1f} per trace)",
        f"truncated / errors      {e.truncated_share:.1%} / {e.error_share:.1%}",
        f"measured throughput     {e.output_tokens_per_s:.1f} output tokens/s (one vLLM instance, {e.sampling_s:.1f}s sample)",
        f"wall time, one instance {e.wall_hours_one_server:.2f} h",
    ]
    if e.gpu_hours is not None:
        lines.append(f"GPU-hours               {e.gpu_hours:.2f}  ({e.gpus_per_server} GPU(s) per instance)")
    if e.cost is not None:
        lines.append(f"cost                    {e.cost:.2f}")
    return "\n".join(lines)
