"""`StudentSampler`: the student's vLLM engine in the trainer's process, its weights replaced in place after each update.

vLLM runs its engine core in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`, set before vLLM is imported),
so the trainer's tensors reach the worker without a copy through a socket: `LLM.collective_rpc("reload_weights",
weights_iterator=...)` loads them into the running model (vLLM's in-place reload, which also redoes any weight
processing the backend applied at load time) and the engine keeps its KV cache, compiled graphs and scheduler.
Prefix caching is off by default (a cached prefix would hold keys and values of the old weights, and a resumed run
would then take another numerical path); when it is on, the cache is reset after every reload.

The teachers' `OfflineVllmEngine` is not reused: it takes chat bodies and returns text answers from an engine
core in a child process, where this needs token ids in, per-token log-probabilities out and the engine in this
process. The teacher side does reuse the teachers' machinery (`ManagedVllmServer`, see teacher.py).

Prompts go in as token ids rendered by the trainer's tokenizer, so sampler, teacher and trainer see the very same
tokens. Every completion comes back with the sampler's log-probability of each of its tokens (vLLM's raw
log-probabilities: the student's distribution before temperature and top-p), which the loss uses as pi_old.

Example:
    >>> with StudentSampler(model="runs/sft/final", engine={"dtype": "float32"}) as sampler:  # doctest: +SKIP
    ...     out = sampler.sample([[1, 2, 3]], n=2, max_tokens=8, temperature=1.0, top_p=1.0, seeds=[[7, 8]])
    ...     sampler.load_weights(model.state_dict().items())
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import torch

# set before vLLM is first imported: the engine core then runs in this process (in-place weight reload)
IN_PROCESS_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


@dataclass
class Completion:
    """One sampled completion: its token ids, the sampler's log-probability of each, and why it stopped."""

    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str | None
    text: str = ""


class StudentSampler:
    """`vllm.LLM` for the student, in this process; see the module docstring."""

    def __init__(
        self, *, model: str, engine: dict[str, Any] | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.model = model
        self.engine_args = dict(engine or {})
        self.env = dict(env or {})
        self.llm: Any = None

    def start(self) -> None:
        for key, value in {**self.env, **IN_PROCESS_ENV}.items():
            os.environ[key] = value
        import vllm.envs
        from vllm import LLM
        from vllm.engine.arg_utils import EngineArgs

        if vllm.envs.VLLM_ENABLE_V1_MULTIPROCESSING:
            raise RuntimeError(
                "vLLM was imported before the student sampler set VLLM_ENABLE_V1_MULTIPROCESSING=0; "
                "in-place weight reload needs the engine in this process"
            )
        known = {f.name for f in dataclasses.fields(EngineArgs)}
        if unknown := sorted(k for k in self.engine_args if k not in known):
            raise ValueError(f"engine: not vLLM engine arguments: {', '.join(unknown)}")
        # vLLM's CPU worker pins and sizes torch's thread pool for itself: the trainer keeps its own
        threads = torch.get_num_threads()
        try:
            self.llm = LLM(model=self.model, **self.engine_args)
        finally:
            torch.set_num_threads(threads)

    def stop(self) -> None:
        llm, self.llm = self.llm, None
        if llm is not None:
            with contextlib.suppress(Exception):
                llm.llm_engine.engine_core.shutdown()

    def __enter__(self) -> StudentSampler:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def prefix_caching(self) -> bool:
        return bool(self.llm.llm_engine.vllm_config.cache_config.enable_prefix_caching)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Replace the engine's weights in place with `weights` (Hugging Face names, as in the checkpoint)."""
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(list(weights))})
        if self.prefix_caching:
            self.llm.reset_prefix_cache()

    def sample(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        n: int,
        max_tokens: int,
        temperature: float,
        top_p: float,
        seeds: Sequence[Sequence[int]],
    ) -> list[list[Completion]]:
        """`n` completions of each prompt (token ids); completion j of prompt i is sampled with seeds[i][j]."""
        from vllm import SamplingParams

        requests, params = [], []
        for prompt, prompt_seeds in zip(prompts, seeds, strict=True):
            for j in range(n):
                requests.append({"prompt_token_ids": list(prompt)})
                params.append(
                    SamplingParams(
                        n=1,
                        max_tokens=max_tokens,
                        temperature=temperature,
                        top_p=top_p,
                        seed=int(prompt_seeds[j]),
                        logprobs=0,
                    )
                )
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        flat = []
        for out in outputs:
            sample = out.outputs[0]
            ids = list(sample.token_ids)
            lps = [float(step[tok].logprob) for tok, step in zip(ids, sample.logprobs or [], strict=True)]
            flat.append(
                Completion(token_ids=ids, logprobs=lps, finish_reason=sample.finish_reason, text=sample.text)
            )
        return [flat[i * n : (i + 1) * n] for i in range(len(prompts))]
