"""`TeacherScorer`: the teacher's log-probability of every completion token, from vLLM or any OpenAI-compatible server.

Each sequence (prompt + completion token ids) is sent as a token-id prompt to `/v1/completions` with
`max_tokens: 1`, asking for the prompt's own log-probabilities: vLLM's `prompt_logprobs: 0` (keyed by token id)
or the OpenAI `echo: true, logprobs: 0` form (`token_logprobs`, by position). Only the completion part is kept:
position p of the answer is log p_teacher(ids[p] | ids[:p]). A managed teacher is a `ManagedVllmServer` (the
same machinery as `tracekit eval` and the teachers), stopped when the run ends or its process dies.

Example:
    >>> with TeacherScorer(config=TeacherConfig(model="runs/teacher"), log_dir=Path("out/logs")) as scorer:  # doctest: +SKIP
    ...     scorer.score([([1, 2], [3, 4])])
    [[-0.31, -2.05]]
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from tracekit.distill.config import TeacherConfig


class TeacherScoringError(RuntimeError):
    """The teacher's server answered without the log-probabilities asked for."""


class TeacherScorer:
    """Scores (prompt ids, completion ids) pairs with the teacher; see the module docstring."""

    def __init__(self, *, config: TeacherConfig, log_dir: Path, retries: int = 4) -> None:
        self.config = config
        self.log_dir = log_dir
        self.retries = retries
        self.server: Any = None
        self.base_url: str | None = config.base_url
        self.served = config.model
        self.client: httpx.Client | None = None

    def __enter__(self) -> TeacherScorer:
        cfg = self.config
        if cfg.base_url is None:
            from tracekit.teachers.vllm_server import ManagedVllmServer

            engine = {"max_model_len": 4096, "enable_prefix_caching": False, **cfg.engine}
            self.server = ManagedVllmServer(
                model=cfg.model,
                engine=engine,
                startup_timeout_s=cfg.startup_timeout_s,
                env=cfg.engine_env,
                log_path=self.log_dir / "teacher-vllm.log",
            )
            try:
                self.base_url = self.server.__enter__()
            except BaseException:
                self.server.__exit__(None, None, None)
                raise
            self.served = self.server.served_model_name
        headers = {}
        if cfg.api_key_env:
            key = os.environ.get(cfg.api_key_env)
            if not key:
                raise RuntimeError(f"teacher.api_key_env: environment variable {cfg.api_key_env} is not set")
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.Client(timeout=cfg.timeout_s, headers=headers)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.server is not None:
            self.server.__exit__(exc_type, exc, tb)
            self.server = None

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        assert self.client is not None
        delay = 1.0
        for attempt in range(self.retries + 1):
            try:
                r = self.client.post(f"{self.base_url}/completions", json=body)
                if r.status_code < 500 and r.status_code != 429:
                    r.raise_for_status()
                    out: dict[str, Any] = r.json()
                    return out
                err: Exception = httpx.HTTPStatusError(f"HTTP {r.status_code}", request=r.request, response=r)
            except (httpx.TransportError, httpx.TimeoutException) as e:
                err = e
            if attempt == self.retries:
                raise TeacherScoringError(f"teacher at {self.base_url}: {type(err).__name__}: {err}") from err
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def score(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[list[float]]:
        """log p_teacher of each completion token, for every (prompt ids, completion ids) pair, in order."""
        return [lps for lps, _ in self.score_top_k(pairs, k=0)]

    def score_top_k(
        self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], *, k: int
    ) -> list[tuple[list[float], list[list[tuple[int, float]]]]]:
        """Per pair: the completion tokens' log-probabilities and, at each completion position, the teacher's `k`
        most likely (token id, log-probability), most likely first (empty lists when k = 0)."""
        out: list[tuple[list[float], list[list[tuple[int, float]]]]] = []
        batch = self.config.batch
        for start in range(0, len(pairs), batch):
            out += self._score_chunk(pairs[start : start + batch], k)
        return out

    def _score_chunk(
        self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], k: int
    ) -> list[tuple[list[float], list[list[tuple[int, float]]]]]:
        seqs = [list(p) + list(c) for p, c in pairs]
        body: dict[str, Any] = {"model": self.served, "prompt": seqs, "max_tokens": 1, "temperature": 0.0}
        echo = self.config.wire_protocol == "echo"
        if echo:
            if k:
                raise ValueError("teacher.top_k needs protocol prompt_logprobs")
            body.update(echo=True, logprobs=0)
        else:
            body["prompt_logprobs"] = k
        choices = sorted(self._post(body).get("choices") or [], key=lambda c: c.get("index", 0))
        if len(choices) != len(seqs):
            raise TeacherScoringError(f"teacher returned {len(choices)} choices for {len(seqs)} sequences")
        result = []
        for (prompt, completion), seq, choice in zip(pairs, seqs, choices, strict=True):
            first = len(prompt)
            tops: list[list[tuple[int, float]]] = []
            if echo:
                lps = (choice.get("logprobs") or {}).get("token_logprobs")
                if not lps or len(lps) < len(seq):
                    raise TeacherScoringError(
                        "teacher's echo answer has no token_logprobs for the prompt: the endpoint must support "
                        "`echo` with `logprobs` (or use protocol: prompt_logprobs with vLLM)"
                    )
                vals = [float(x) for x in lps[first : len(seq)]]
            else:
                plp = choice.get("prompt_logprobs")
                if not plp or len(plp) != len(seq):
                    raise TeacherScoringError(
                        "teacher's answer has no prompt_logprobs (is it a vLLM server?)"
                    )
                vals = [float(plp[p][str(seq[p])]["logprob"]) for p in range(first, len(seq))]
                if k:
                    for p in range(first, len(seq)):
                        ranked = sorted(
                            ((int(tok), float(e["logprob"])) for tok, e in plp[p].items()),
                            key=lambda x: -x[1],
                        )
                        tops.append(ranked[:k])
            if len(vals) != len(completion):
                raise TeacherScoringError("teacher's log-probabilities do not cover the completion")
            result.append((vals, tops))
        return result
