"""A small scripted world for the shipped recipes: source rows in the Hub datasets' own columns, and a
teacher, a judge and a rewriter (local chat servers) whose answers follow known rules, so a test knows
which traces every stage must keep.

Questions are numbered; question `i` is answered wrongly when `i % 3 == 0` (math: a wrong \\boxed{},
code: a program that prints 0), so the verifiers have something to reject.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.chat_server import user_text
from tests.conftest import REPO, SHARED_DATA

PIPELINES = REPO / "pipelines"
BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
CODE = re.compile(r"```python\n(.*?)```", re.S)
NUM = re.compile(r"#(\d+)\b")
GOOD_PROGRAM = "import sys\na, b = map(int, sys.stdin.read().split())\nprint(a + b)\n"
BAD_PROGRAM = "print(0)\n"


def wrong(i: int) -> bool:
    return i % 3 == 0


def math_question(i: int) -> str:
    return f"Problem #{i}: what is {i} + {2 * i}?"


def code_question(i: int) -> str:
    return f"Task #{i}: read two integers from stdin and print their sum."


def tests_json(i: int) -> str:
    return json.dumps({"inputs": [f"{i} 5\n", "2 2\n"], "outputs": [f"{i + 5}\n", "4\n"]})


def number(text: str) -> int:
    m = NUM.search(text)
    assert m, text
    return int(m.group(1))


def teacher_reply(body: dict[str, Any], *, thinking_field: bool) -> dict[str, Any]:
    """The teacher: thinking (in `reasoning_content` like R1's API, or inline like QwQ), then an answer."""
    text = user_text(body)
    i = number(text)
    if "what is" in text:
        value = 3 * i + (1 if wrong(i) else 0)
        answer = f"Adding gives {value}.\n\\boxed{{{value}}}"
    elif "integers" in text:
        answer = f"```python\n{BAD_PROGRAM if wrong(i) else GOOD_PROGRAM}```"
    else:
        answer = f"Science answer #{i}."
    thinking = f"Let me think about question {i} step by step."
    if thinking_field:
        return {"content": answer, "reasoning_content": thinking}
    return {"content": f"{thinking}\n{answer}"}


def s1_teacher_reply(body: dict[str, Any]) -> dict[str, Any]:
    """The pool's teacher: as `teacher_reply`, thinking `i % 5` steps longer for question `i`."""
    reply = teacher_reply(body, thinking_field=True)
    reply["reasoning_content"] += " Then I check that step once more." * thinking_steps(number(user_text(body)))
    return reply


def thinking_steps(i: int) -> int:
    return i % 5


def student_right(model: str, i: int) -> bool:
    """Whether a selection student answers question `i` right: a 7B model on multiples of 4 and on 9
    (the 32B fails 9), any other model on even questions."""
    return i % 4 == 0 or i % 12 == 9 if "7B" in model else i % 2 == 0


def student_reply(body: dict[str, Any]) -> str:
    """A selection student (no thinking), right or wrong as `student_right` says for its model."""
    i = number(user_text(body))
    return f"The sum is \\boxed{{{3 * i + (0 if student_right(body['model'], i) else 1)}}}."


S1_DOMAINS = ["Number theory", "Combinatorics", "Geometry"]


def s1_domain(i: int) -> str | None:
    """The domain the labelling judge names for question `i` (None: it answers something unusable)."""
    return None if i == 11 else S1_DOMAINS[i % 3]


def s1_tool_reply(body: dict[str, Any]) -> str:
    """s1's one tool model (Claude): names domains when asked for one, else grades like `judge_reply`."""
    text = user_text(body)
    if "domains does the following problem belong to" in text:
        domain = s1_domain(number(text.split("Problem:")[-1]))
        return domain if domain else "It is hard to say; maybe algebra or analysis."
    return judge_reply(body)


def judge_reply(body: dict[str, Any]) -> str:
    """The judge: YES when the student's last \\boxed{} equals the reference's (the last one shown)."""
    boxes = BOXED.findall(user_text(body))
    return "Compared the two.\nYES" if len(boxes) >= 2 and boxes[-1] == boxes[-2] else "They differ.\nNO"


def rewriter_reply(body: dict[str, Any]) -> str:
    """The rewriter: the thinking in thought tags, the final answer (boxed value or program) in solution tags."""
    text = user_text(body)
    codes, boxes = CODE.findall(text), BOXED.findall(text)
    final = f"```python\n{codes[-1]}```" if codes else f"The answer is \\boxed{{{boxes[-1]}}}."
    return (
        "<|begin_of_thought|>\n\nReformatted reasoning.\n\n<|end_of_thought|>\n\n"
        f"<|begin_of_solution|>\n\n{final}\n\n<|end_of_solution|>"
    )


# rows in the columns each Hub dataset publishes ------------------------------------------------------
def numina_rows(n: int, subsets: list[str], difficulty: Any = None) -> list[dict[str, Any]]:
    """NuminaMath-CoT's columns, with NovaSky's GPT-4o-mini label (`gpt_difficulty_parsed`, a float;
    `difficulty(i)`, by default (i % 10) + 1) as in NovaSky-AI/labeled_numina_difficulty_162K."""
    return [
        {
            "source": subsets[i % len(subsets)],
            "gpt_difficulty_parsed": float(difficulty(i) if difficulty else i % 10 + 1),
            "problem": math_question(i),
            "solution": f"Add the numbers: {i} + {2 * i} = {3 * i}. So the answer is $\\boxed{{{3 * i}}}$.",
            "messages": [],
        }
        for i in range(n)
    ]


def apps_rows(n: int, start: int) -> list[dict[str, Any]]:
    return [
        {"question": code_question(i), "input_output": tests_json(i), "difficulty": "interview", "starter_code": ""}
        for i in range(start, start + n)
    ]


def taco_rows(n: int, start: int, difficulties: list[str]) -> list[dict[str, Any]]:
    return [
        {"question": code_question(i), "input_output": tests_json(i), "difficulty": difficulties[i % len(difficulties)]}
        for i in range(start, start + n)
    ]


def code_contests_rows(n: int, start: int) -> list[dict[str, Any]]:
    return [
        {
            "description": code_question(i),
            "private_tests": {"input": [f"{i} 5\n"], "output": [f"{i + 5}\n"]},
            "difficulty": 7,
        }
        for i in range(start, start + n)
    ]


def camel_rows(n: int, start: int) -> list[dict[str, Any]]:
    return [
        {"message_1": f"Question #{i}: why is the sky blue?", "topic;": "optics", "sub_topic": "scattering"}
        for i in range(start, start + n)
    ]


def s1_pool_rows(n: int) -> list[dict[str, Any]]:
    """simplescaling/data_ablation_full59K's columns: math questions with worked solutions."""
    return [
        {
            "question": math_question(i),
            "solution": f"{i} + {2 * i} = {3 * i}, so $\\boxed{{{3 * i}}}$.",
            "cot_type": "math",
            "source_type": "AI-MO/NuminaMath-CoT/olympiads",
        }
        for i in range(n)
    ]


# deriving a test-sized recipe from a shipped one ---------------------------------------------------------
def to_server(model: dict[str, Any]) -> None:
    """A vLLM model config as the same model behind an OpenAI-compatible server (sampling and prompts kept)."""
    if model.get("kind") == "vllm":
        for key in ("mode", "engine", "startup_timeout_s", "env"):
            model.pop(key, None)
        model["kind"] = "openai"


def derive(
    name: str,
    tmp: Path,
    rows: dict[str, list[dict[str, Any]]],
    *,
    limit: int,
    teacher_url: str,
    tool_url: str | None = None,
    student_url: str | None = None,
    edit: Any = None,
) -> tuple[Path, dict[str, Any]]:
    """pipelines/NAME.yaml with each source read from a local file holding `rows[source]` (the same
    columns as its Hub dataset) under `limit`, the teacher and the tool models (rewriter, judges) at
    `tool_url`, the selection students at `student_url` (local servers), decontamination at the local
    benchmark copies, one task. Everything else is the shipped recipe."""
    recipe = yaml.safe_load((PIPELINES / f"{name}.yaml").read_text())
    tmp.mkdir(parents=True, exist_ok=True)
    recipe["output"] = str(tmp / "out")
    for src in recipe["sources"]:
        src["limit"] = limit
        if "hub" not in src:  # a local path (another build's output): `edit` points it at the test's
            continue
        f = tmp / f"{src['name']}.jsonl"
        f.write_text("".join(json.dumps(r) + "\n" for r in rows[src["name"]]))
        src.pop("hub"), src.pop("split", None), src.pop("config", None)
        src["path"] = str(f)
    retries = {"attempts": 2, "backoff_s": 0.1}
    teacher = recipe["teacher"]
    if teacher["kind"] != "dataset":  # a replay teacher reads the sources; a model is a scripted server
        to_server(teacher)
        teacher.update(base_urls=[teacher_url], api_key_env="TK_TEACHER_KEY", retries=retries)
    select = recipe.get("select") or {}
    students = select.get("pass_rate") or []
    for student in students if isinstance(students, list) else [students]:
        if student.get("kind", "vllm") in ("vllm", "openai"):
            assert student_url is not None
            to_server(student)
            student.update(base_urls=[student_url], api_key_env="TK_TOOL_KEY", retries=retries)
    tools = [
        recipe.get("rewrite", {}).get("teacher"),
        (recipe.get("verify") or {}).get("llm", {}).get("judge"),
        select.get("labels", {}).get("judge"),
    ]
    for tool in filter(None, tools):
        assert tool_url is not None
        to_server(tool)
        tool.update(base_urls=[tool_url], api_key_env="TK_TOOL_KEY", retries=retries)
    dc = recipe.get("decontaminate")
    if dc:  # the benchmarks with a local copy (gpqa_diamond and livecodebench have none here)
        dc["data_dir"] = str(SHARED_DATA / "benchmarks")
        dc["benchmarks"] = [b for b in dc["benchmarks"] if b in ("aime24", "aime25", "amc23", "math500", "gsm8k")]
    recipe["executor"] = {"kind": "local", "tasks": 1, "workers": 1}
    if edit is not None:
        edit(recipe)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path, recipe
