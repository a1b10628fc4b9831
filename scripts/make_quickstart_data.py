"""Write the small replay sources of pipelines/quickstart.yaml (synthetic, made here, no third-party text).

Usage: python scripts/make_quickstart_data.py  (the files are committed; re-run only to change them)
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "pipelines" / "data"


def math_rows(rng: random.Random) -> list[dict]:
    rows = []
    for _ in range(40):
        a, b, c = rng.randint(2, 60), rng.randint(2, 60), rng.randint(2, 9)
        ans = a * c + b
        good = (
            f"<think>\nWe need {a} times {c}, then add {b}.\n{a} * {c} = {a * c}.\n"
            f"{a * c} + {b} = {ans}.\nLet me double-check: {ans} - {b} = {a * c}, and {a * c} / {c} = {a}. Yes.\n"
            f"</think>\n\nFirst {a} \\times {c} = {a * c}, then {a * c} + {b} = {ans}.\n\n"
            f"The answer is $\\boxed{{{ans}}}$."
        )
        wrong = (
            f"<think>\n{a} times {c} is {a * c + 1}... then add {b}.\n</think>\n\n"
            f"So the result is $\\boxed{{{ans + 1}}}$."
        )
        cut = f"<think>\nLet me compute {a} times {c}. Hmm, {a} times {c}. Wait, {a} times"
        rows.append(
            {
                "problem": f"Compute ${a} \\times {c} + {b}$.",
                "answer": str(ans),
                "generations": [good, wrong, cut, good.replace("Let me double-check", "Check")],
            }
        )
    # a word problem that is also in the toy benchmark (decontamination drops it) and a near-copy of
    # another prompt (dedup keeps one of the two)
    story = "A farmer has 17 sheep and buys 5 more sheep every week for 3 weeks. How many sheep does the farmer have at the end?"
    trace = "<think>\n17 + 5 * 3 = 32.\n</think>\n\nThe farmer has $\\boxed{32}$ sheep."
    rows.append({"problem": story, "answer": "32", "generations": [trace]})
    rows.append({"problem": rows[0]["problem"].replace("Compute", "Compute:"), "answer": rows[0]["answer"],
                 "generations": rows[0]["generations"][:1]})
    return rows


def bench_rows() -> list[dict]:
    return [
        {"id": "toy-1", "question": "A farmer has 17 sheep and buys 5 more sheep every week for 3 weeks. How many sheep does the farmer have at the end?", "answer": "32"},
        {"id": "toy-2", "question": "A train leaves at noon and travels 60 miles per hour for two and a half hours. How far does it go?", "answer": "150"},
    ]


def general_rows(rng: random.Random) -> list[dict]:
    topics = ["tea", "bicycles", "rivers", "libraries", "clocks", "gardens", "bridges", "maps"]
    rows = []
    for t in topics:
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"Write two sentences about {t}."},
                    {
                        "role": "assistant",
                        "content": f"People have cared about {t} for a long time. "
                        f"Each place has its own way with {t}, and that variety is part of the charm.",
                    },
                ]
            }
        )
    return rows


def main() -> None:
    rng = random.Random(7)
    HERE.mkdir(parents=True, exist_ok=True)
    files = (
        ("quickstart-math.jsonl", math_rows(rng)),
        ("quickstart-chat.jsonl", general_rows(rng)),
        ("quickstart-bench.jsonl", bench_rows()),
    )
    for name, rows in files:
        with open(HERE / name, "w") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
