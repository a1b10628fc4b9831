"""One toy build (replay teacher, mix with split) shared by the publishing tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, write_recipe

SECRETS = {"HF_TOKEN": "hf_secretTOKENvalue123", "OPENAI_API_KEY": "sk-secretOPENAIkey456"}


def write_toy_sources(folder: Path, *, math_rows: int = 30, general_rows: int = 10) -> None:
    with (folder / "math.jsonl").open("w") as f:
        for i in range(math_rows):
            a, b = i, 2 * i + 1
            gens = [
                f"<think>\n{a}+{b}={a + b}, try {k}.\n</think>\n\nThe answer is \\boxed{{{a + b}}}."
                for k in range(4)
            ]
            f.write(
                json.dumps({"problem": f"What is {a} + {b}?", "answer": str(a + b), "generations": gens})
                + "\n"
            )
    with (folder / "general.jsonl").open("w") as f:
        for i in range(general_rows):
            gens = [f"Number {i} / quiet afternoon / version {k}" for k in range(2)]
            f.write(
                json.dumps({"problem": f"Write a haiku about the number {i}.", "generations": gens}) + "\n"
            )


SOURCES = [
    {
        "name": "toy-math",
        "domain": "math",
        "path": "math.jsonl",
        "columns": {"prompt": "problem", "answer": "answer", "generations": "generations"},
    },
    {
        "name": "chat",
        "domain": "general",
        "path": "general.jsonl",
        "reasoning": False,
        "columns": {"prompt": "problem", "generations": "generations"},
    },
]
MIX = {
    "seed": 1,
    "max_per_prompt": 2,
    "buckets": [
        {"name": "math", "where": "domain = 'math'", "count": 40},
        {"name": "general", "where": "domain = 'general'", "count": 100},  # short: 20 available
    ],
    "split": {"test_prompts": 3, "seed": 0},
}


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Output folder of a finished toy build, built with secret-looking env values set."""
    tmp = tmp_path_factory.mktemp("built")
    write_toy_sources(tmp)
    recipe = write_recipe(
        tmp, sources=SOURCES, name="toy", mix=MIX, description="Toy build for the card tests."
    )
    proc = run_cli("build", str(recipe), cwd=tmp, env=SECRETS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "out"
