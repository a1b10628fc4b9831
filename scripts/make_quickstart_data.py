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
    return rows


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
    for name, rows in (("quickstart-math.jsonl", math_rows(rng)), ("quickstart-chat.jsonl", general_rows(rng))):
        with open(HERE / name, "w") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
