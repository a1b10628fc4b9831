"""The math verifier's comparison policies in words: one text for docs/verification.md and the card.

Example:
    >>> lines = policy_lines(MathVerifyConfig())
    >>> lines[0].startswith("Decimals:")
    True
"""

from __future__ import annotations

from typing import Any

from tracekit.verify.math.config import MathVerifyConfig


def policy_lines(config: MathVerifyConfig) -> list[str]:
    """One sentence per policy, with this configuration's values filled in."""
    lines = [
        "Decimals: a decimal for an exact value that does not terminate (1/3, pi/2, sqrt 2) is correct when it "
        f"has at least {config.decimal_sig_digits} significant digits and is that value rounded or cut at its "
        "last digit; for a terminating value (1/8) only the exact decimal (0.125) is correct; two decimals must "
        "be equal.",
        "Units: a bare number matches a number with a unit (the unit was left out); the same number with "
        "another unit is wrong unless an exact conversion between common SI units (prefixes, litres, minutes, "
        "hours, days, degrees and radians) makes the two quantities equal (`1000 m` is `1 km`: against a "
        "quantity a one-letter unit symbol is a unit, alone it is a name); other unit words match only "
        "themselves.",
        "Equations: `x = 5` matches `5`; two equations match when they are the same relation rearranged (one "
        "side minus the other is a non-zero multiple of the other's), never when their variables differ.",
        "Empty set: \\emptyset, \\varnothing, \\{\\} and the empty-set sign are the same answer.",
        "Assignments: `x = 2, y = -1` matches the tuple `(2, -1)` (variables in alphabetical order) and the "
        "list `2, -1` (a bare list has no order).",
        "Bases: a numeral with its base (`4210_5`) matches the same digits with the base left out (`4210`); "
        "another base or the value in base 10 (`555`) is another answer.",
        "TeX: a macro argument without braces is one token, as TeX reads it (`\\frac112` is 2, `x^23` is "
        "3x^2, `a_n+1` is a_n + 1); every group keeps its scope (`\\frac{6}{2+1}` is not `\\frac{6}{2}+1`).",
    ]
    if config.percent_as_fraction:
        lines.append("Percent: 28% matches 28 and 0.28.")
    else:
        lines.append("Percent: 28% matches 28 only.")
    if config.allow_set_relation_comp:
        lines.append(
            "Intervals: an inequality answer matches an interval gold (`x < 3` for (-inf, 3)) and back."
        )
    else:
        lines.append("Intervals: an interval answer matches an inequality gold, not the other way round.")
    if not config.strict:
        lines.append("Names: free variables may be renamed (f(y) matches f(x)).")
    judge = "the LLM judge decides" if config.judge.enabled else "the verdict is `incorrect`"
    lines += [
        "Proof: an answer is accepted only when exact canonical forms show it equal to the gold, or sympy "
        "simplifies the difference to 0 (two closed numbers: equal to 60 significant digits); when neither "
        f"can decide, {judge} (detail `undecided`).",
        "Real values: answers are real functions; an odd root of a negative number is real (the cube root "
        "of -8 is -2), and an identity that holds only for positive values is refused where the gold has a "
        "real value the answer does not share (`|x|` is not `x`, `\\ln(x^2)` is not `2\\ln x`).",
    ]
    answer = "the last number of the answer text" if config.allow_bare_number else "no answer"
    lines.append(
        "Extraction: the last \\boxed{}, else a 'final answer is' phrase, else a concluding sentence that "
        f"states a value ('Therefore, the total is 240.'), else {answer}; never text inside the reasoning block."
    )
    return lines


def card_section(recipe: dict[str, Any]) -> str:
    """Markdown for the card: the policies of the recipe's `verify: {math: ...}`, or '' without one."""
    math = (recipe.get("verify") or {}).get("math")
    if math is None:
        return ""
    try:
        config = MathVerifyConfig.model_validate(math)
    except ValueError:
        return ""
    items = "\n".join(f"- {line}" for line in policy_lines(config))
    note = ""
    if any(((s.get("verify") or {}).get("math") is not None) for s in recipe.get("sources") or []):
        note = "\n\nSome sources set their own math settings (see the recipe below)."
    return "Math answers were compared with these policies (docs/verification.md):\n\n" + items + note
