"""An independent, plain-Python reading of the decontamination token rules (tests' oracle).

It follows the rules as written in tracekit/decontam/kernels.py's docstring, character by
character, and yields token strings instead of hashes: tests compare the kernel's hashes with
these strings (equal strings <=> equal hashes) and recompute scores from them.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from dataclasses import dataclass

NUMBER_WORDS = {
    w: str(v)
    for w, v in zip(
        [
            "zero",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
            "thirty",
            "forty",
            "fifty",
            "sixty",
            "seventy",
            "eighty",
            "ninety",
        ],
        [0, *range(2, 21), 30, 40, 50, 60, 70, 80, 90],
        strict=True,
    )
}
ALIASES = {"dfrac": "frac", "tfrac": "frac", "dbinom": "binom", "tbinom": "binom", "le": "leq", "ge": "geq",
           "ne": "neq", "lvert": "vert", "rvert": "vert"}  # fmt: skip
DROPPED = set(
    [
        "left",
        "right",
        "big",
        "Big",
        "bigg",
        "Bigg",
        "bigl",
        "bigr",
        "Bigl",
        "Bigr",
        "displaystyle",
        "textstyle",
        "quad",
        "qquad",
        "mathrm",
        "text",
        "textbf",
        "textit",
        "mathbf",
        "mathit",
        "mathsf",
        "mathcal",
        "mbox",
        "operatorname",
        "hspace",
        "vspace",
        "limits",
        "nolimits",
        "emph",
        "boldsymbol",
        "mathbb",
    ]
)
OPERATORS = set("+-*/^=<>()[]|!%")
MATH_KINDS = {"number", "operator", "command"}


@dataclass(frozen=True)
class Tok:
    kind: str  # word | letter | number | command | operator | other
    exact: str
    feature: str | None


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower() if any(ord(c) > 127 for c in text) else text


def _canon(intpart: str, frac: str) -> str:
    intpart = intpart.lstrip("0") or "0"
    frac = frac.rstrip("0")
    return f"n:{intpart}.{frac}" if frac else f"n:{intpart}"


def tokens(text: str) -> list[Tok]:
    s = normalise(text)
    out: list[Tok] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c.isascii() and c.isalpha():
            j = i
            while j < n and s[j].isascii() and s[j].isalpha():
                j += 1
            w = s[i:j].lower()
            kind = "letter" if len(w) == 1 and w != "a" else "word"
            if w in NUMBER_WORDS:
                out.append(Tok("number", f"w:{w}", f"n:{NUMBER_WORDS[w]}"))
            elif len(w) >= 4 and w.endswith("s") and w[-2] != "s":
                out.append(Tok(kind, f"w:{w}", f"w:{w[:-1]}"))
            else:
                out.append(Tok(kind, f"w:{w}", f"w:{w}"))
            i = j
        elif c.isascii() and c.isdigit():
            j = i
            digits = ""
            while True:
                while j < n and s[j].isascii() and s[j].isdigit():
                    digits += s[j]
                    j += 1
                group = s[j + 1 : j + 4]
                if (
                    j < n
                    and s[j] == ","
                    and len(group) == 3
                    and all(x.isascii() and x.isdigit() for x in group)
                    and not (j + 4 < n and s[j + 4].isascii() and s[j + 4].isdigit())
                ):
                    j += 1
                    continue
                break
            frac = ""
            if j + 1 < n and s[j] == "." and s[j + 1].isascii() and s[j + 1].isdigit():
                j += 1
                while j < n and s[j].isascii() and s[j].isdigit():
                    frac += s[j]
                    j += 1
            t = _canon(digits, frac)
            out.append(Tok("number", t, t))
            i = j
        elif c == "\\":
            j = i + 1
            while j < n and s[j].isascii() and s[j].isalpha():
                j += 1
            name = s[i + 1 : j]
            if name:
                name = ALIASES.get(name, name)
                if name not in DROPPED:
                    out.append(Tok("command", f"c:{name}", f"c:{name}"))
                i = j
            else:
                i += 2
        elif c in OPERATORS:
            out.append(Tok("operator", f"o:{c}", None))
            i += 1
        elif not c.isascii():
            out.append(Tok("other", f"x:{c}", f"x:{c}"))
            i += 1
        else:
            i += 1
    return out


def is_math(t: Tok) -> bool:
    return t.kind in MATH_KINDS


def whole_item_found(item: str, prompt: str) -> bool:
    """The item's token sequence occurs in the prompt and no formula goes on across its ends."""
    a, p = tokens(item), tokens(prompt)
    if len(a) < 2:
        return False
    ex = [t.exact for t in a]
    for s in range(len(p) - len(a) + 1):
        if [t.exact for t in p[s : s + len(a)]] != ex:
            continue
        end = s + len(a)
        if end < len(p) and is_math(a[-1]) and is_math(p[end]):
            continue
        if s > 0 and is_math(a[0]) and is_math(p[s - 1]):
            continue
        return True
    return False


class Weights:
    """IDF weights over a list of items, as features.py states them."""

    def __init__(self, items: list[str], stopwords: set[str], floor: float) -> None:
        self.item_feats = [{t.feature for t in tokens(x) if t.feature} for x in items]
        df = Counter(f for fs in self.item_feats for f in fs)
        n = len(items)
        cap = max(32, int(0.02 * n))
        stop = {t.feature for w in stopwords for t in tokens(w)}
        self.w = {f: (0.0 if c > cap or f in stop else math.log(max(n, 1000) / c)) for f, c in df.items()}
        self.floor = floor

    def score(self, k: int, prompt: str) -> float:
        pf = {t.feature for t in tokens(prompt) if t.feature}
        own = self.item_feats[k]
        norm = max(sum(self.w[f] for f in own), self.floor)
        return sum(self.w[f] for f in own & pf) / norm


def numbers(text: str) -> Counter[str]:
    return Counter(t.feature for t in tokens(text) if t.kind == "number" and t.feature)


def compare_numbers(item: str, prompt: str) -> tuple[int, int]:
    """(distinct item numbers missing from the prompt, prompt numbers beyond the item's counts)."""
    a, b = numbers(item), numbers(prompt)
    return sum(1 for v in a if v not in b), sum(max(0, c - a.get(v, 0)) for v, c in b.items())


def formula_pairs(text: str) -> set[tuple[str, str]]:
    ts = tokens(text)
    ok = [t.kind in MATH_KINDS or t.kind == "letter" for t in ts]
    return {(ts[i].exact, ts[i + 1].exact) for i in range(len(ts) - 1) if ok[i] and ok[i + 1]}


def formula_share(item: str, prompt: str) -> float:
    a = formula_pairs(item)
    return 1.0 if not a else len(a & formula_pairs(prompt)) / len(a)
