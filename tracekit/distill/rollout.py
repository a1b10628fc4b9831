"""`StudentSampler`: the student's vLLM engine in the trainer's process, its weights replaced in place after each update.

vLLM runs its engine core in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`, set before vLLM is imported),
so the trainer's tensors reach the worker without a copy through a socket: `LLM.collective_rpc("reload_weights",
weights_iterator=...)` loads them into the running model (vLLM's in-place reload, which also redoes any weight
processing the backend applied at load time) and the engine keeps its KV cache, compiled graphs and scheduler.
Prefix caching is off by default (a cached prefix would hold keys and values of the old weights, and a resumed run
would then take another numerical path); when it is on, the cache is reset after every reload.

Under torchrun (several ranks) the engine cannot live in the trainer's process: vLLM builds its parallel state on
torch's default process group whenever one is initialised, and the trainer's is the world of all ranks, so the
engine's group set-up waits for ranks that never join it (it hangs until gloo's timeout). There, rank 0 runs the
engine core in a spawned child process (`in_process=False`) started without torchrun's variables, so vLLM makes a
world of its own; each reload writes the gathered weights to `weights_dir` as safetensors and the engine reloads
them in place from there (`reload_weights(weights_path=...)`), keeping its KV cache and scheduler.

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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import torch

# set before vLLM is first imported: the engine core then runs in this process (in-place weight reload)
IN_PROCESS_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
# under torchrun: the engine core in a fresh (spawned, not forked: no copy of the trainer's process group) child
CHILD_PROCESS_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "1", "VLLM_WORKER_MULTIPROC_METHOD": "spawn"}
# what torchrun sets and vLLM would read as its own rank and rendezvous
TORCHRUN_ENV = (
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
)


@contextlib.contextmanager
def without_torchrun_env() -> Iterator[None]:
    """torchrun's rank variables hidden from os.environ (and so from processes started meanwhile)."""
    saved = {k: os.environ.pop(k) for k in TORCHRUN_ENV if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


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
        self,
        *,
        model: str,
        engine: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        in_process: bool = True,
        weights_dir: Path | None = None,
    ) -> None:
        if not in_process and weights_dir is None:
            raise ValueError("an engine in a child process reloads from weights_dir: set it")
        self.model = model
        self.engine_args = dict(engine or {})
        self.env = dict(env or {})
        self.in_process = in_process
        self.weights_dir = weights_dir
        self.llm: Any = None

    def start(self) -> None:
        for key, value in {**self.env, **(IN_PROCESS_ENV if self.in_process else CHILD_PROCESS_ENV)}.items():
            os.environ[key] = value
        import vllm.envs
        from vllm import LLM
        from vllm.engine.arg_utils import EngineArgs

        if bool(vllm.envs.VLLM_ENABLE_V1_MULTIPROCESSING) == self.in_process:
            raise RuntimeError(
                "vLLM read VLLM_ENABLE_V1_MULTIPROCESSING before the student sampler set it; the sampler needs "
                f"its engine {'in this process' if self.in_process else 'in a child process'}"
            )
        known = {f.name for f in dataclasses.fields(EngineArgs)}
        if unknown := sorted(k for k in self.engine_args if k not in known):
            raise ValueError(f"engine: not vLLM engine arguments: {', '.join(unknown)}")
        # vLLM's CPU worker pins and sizes torch's thread pool for itself: the trainer keeps its own
        threads = torch.get_num_threads()
        try:
            with without_torchrun_env():
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
        if self.in_process:
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(list(weights))})
        else:
            from safetensors.torch import save_file

            assert self.weights_dir is not None
            self.weights_dir.mkdir(parents=True, exist_ok=True)
            # clones: tied weights share storage, which safetensors refuses
            tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in weights}
            save_file(tensors, str(self.weights_dir / "model.safetensors"))
            self.llm.collective_rpc("reload_weights", kwargs={"weights_path": str(self.weights_dir)})
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
