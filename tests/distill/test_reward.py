"""The optional verifier reward: tracekit's math verifier judges each completion against the prompt's answer,
and the reward is centred over each prompt's samples (prompts without a reference get none)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracekit.distill.config import DistillConfig
from tracekit.distill.data import Prompt
from tracekit.distill.rollout import Completion
from tracekit.distill.trainer import DistillTrainer


def test_verifier_reward_is_centred_per_prompt(tmp_path: Path) -> None:
    cfg = DistillConfig(
        student="s", teacher="t", data="d", output_dir=tmp_path, max_steps=1, reward="verifier"
    )
    trainer = DistillTrainer(config=cfg)
    five = Prompt(messages=[{"role": "user", "content": "2+3?"}], index=0, gold_answer="5")
    open_ended = Prompt(messages=[{"role": "user", "content": "Say hi."}], index=1, gold_answer=None)

    def comp(text: str) -> Completion:
        return Completion(token_ids=[1], logprobs=[-1.0], finish_reason="stop", text=text)

    samples = [
        (five, comp("It is \\boxed{5}."), [-1.0]),
        (five, comp("It is \\boxed{6}."), [-1.0]),
        (five, comp("\\boxed{5}"), [-1.0]),
        (five, comp("no idea"), [-1.0]),
        (open_ended, comp("hi"), [-1.0]),
    ]
    rewards = trainer._rewards(samples)
    assert rewards == pytest.approx([0.5, -0.5, 0.5, -0.5, 0.0])
    assert trainer._last_reward == pytest.approx(2 / 5)  # raw share correct, logged as `reward`


def test_no_reward_configured_gives_none(tmp_path: Path) -> None:
    cfg = DistillConfig(student="s", teacher="t", data="d", output_dir=tmp_path, max_steps=1)
    assert DistillTrainer(config=cfg)._rewards([]) is None
