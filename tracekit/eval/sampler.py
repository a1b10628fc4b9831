"""Sample n answers per problem from a model: a managed vLLM server, or a running endpoint.

Reuses the teachers' pieces: `ManagedVllmServer` (starts/stops vLLM), `ChatClient` (async requests
with retries, bounded concurrency) and `render_messages`. Each request's seed derives from the
sample's id (model, benchmark, problem, index), so a rerun with the same settings reproduces.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from tracekit.eval.config import EvalConfig
from tracekit.eval.problem import EvalProblem
from tracekit.eval.sample import EvalSample
from tracekit.record import seed_from_trace_id, stable_hash
from tracekit.teachers.base import render_messages
from tracekit.teachers.chat_client import ChatClient


def sample_id(model: str, problem: EvalProblem, index: int, config_hash: str) -> str:
    return stable_hash(
        "eval", model, problem.benchmark, problem.problem_id, problem.row_index, index, config_hash
    )


def messages_for(problem: EvalProblem, config: EvalConfig) -> list[dict[str, str]]:
    template = config.math_template if problem.domain == "math" else config.code_template
    return render_messages(problem.prompt, system_prompt=config.system_prompt, template=template)


@contextlib.contextmanager
def endpoint(config: EvalConfig, model: str, log_dir: Path) -> Iterator[tuple[str, str, str]]:
    """(base_url, served model name, backend): the running server, or a managed vLLM for `model`."""
    if config.base_url:
        yield config.base_url, model, "openai"
        return
    from tracekit.teachers.vllm_server import ManagedVllmServer

    name = stable_hash("log", model)
    server = ManagedVllmServer(
        model=model,
        engine=config.engine,
        startup_timeout_s=config.startup_timeout_s,
        env=config.engine_env,
        log_path=log_dir / f"vllm-{name}.log",
    )
    with server as base_url:
        yield base_url, server.served_model_name, "vllm"


async def _sample_all(
    client: ChatClient,
    served: str,
    model: str,
    backend: str,
    problems: list[EvalProblem],
    config: EvalConfig,
    config_hash: str,
) -> list[EvalSample]:
    sampling = {"temperature": config.temperature, "top_p": config.top_p, "max_tokens": config.max_tokens}

    async def one(problem: EvalProblem, i: int, msgs: list[dict[str, str]]) -> EvalSample:
        seed = seed_from_trace_id(sample_id(model, problem, i, config_hash)) ^ config.seed
        ans = await client.complete({"model": served, "messages": msgs, "n": 1, "seed": seed, **sampling})
        return EvalSample(
            model=model,
            problem=problem,
            sample_index=i,
            completion=ans.completion,
            backend=backend,
            reasoning=ans.reasoning,
            finish_reason=ans.finish_reason,
            prompt_tokens=ans.prompt_tokens,
            completion_tokens=ans.completion_tokens,
            latency_s=ans.latency_s,
            error=ans.error,
            seed=seed,
            prompt_messages=msgs,
        )

    jobs = []
    for p in problems:
        msgs = messages_for(p, config)
        jobs += [one(p, i, msgs) for i in range(config.n)]
    return list(await asyncio.gather(*jobs))


def sample_model(
    *, config: EvalConfig, model: str, problems: list[EvalProblem], log_dir: Path, config_hash: str
) -> list[EvalSample]:
    """n samples for every problem, in problem order then sample index."""
    api_key = os.environ.get(config.api_key_env) if config.api_key_env else None
    if config.api_key_env and not api_key:
        raise RuntimeError(f"environment variable {config.api_key_env} (--api-key-env) is not set")
    with endpoint(config, model, log_dir) as (base_url, served, backend):

        async def run() -> list[EvalSample]:
            client = ChatClient(
                base_urls=[base_url],
                api_key=api_key,
                max_concurrency=config.max_concurrency,
                timeout_s=config.timeout_s,
                retries=config.retries,
            )
            try:
                return await _sample_all(client, served, model, backend, problems, config, config_hash)
            finally:
                await client.aclose()

        return asyncio.run(run())
