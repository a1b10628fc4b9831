"""Differential fuzzing of the math verifier: random expression pairs with an exact, independent oracle.

A grammar builds random answer trees (nested fractions, roots, powers, subscripts, functions,
intervals, units, equations, decimals). Each tree is rendered in several LaTeX spellings (braces or
not where TeX allows a single token, `\\dfrac`, `\\left(`, spaces, `\\cdot`/`\\times`/juxtaposition,
`a/b`, decimals) and also edited so its value changes (move a brace, drop a group so TeX reads a
single token, change a number, a variable, a function, a unit, a bracket).

Ground truth never comes from the verifier, its parser or sympy: `Oracle` evaluates the generated
TREES at random points with exact arithmetic in Q(sqrt 2, sqrt 3, ..., i). Function applications (sin,
ln, exp), pi and indexed names (a_n) are modelled as random values fixed by their exact argument, so
two trees are equal when their values agree at every point; nothing here relies on a trig identity.
The generator keeps pi out of function arguments and never nests functions, so no identity of the
real functions (periodicity, exp(ln x) = x) can make two trees equal that the model calls different.
The documented policies (docs/verification.md) are part of the truth: a bare number matches a number
with a unit, `x = E` matches `E`, a decimal matches a non-terminating value when it has 6 significant
digits and is that value rounded or cut at its last digit.

Example:
    >>> fz = Fuzzer(seed=1)
    >>> case = fz.case()
    >>> sorted(case) == ["construct", "equal", "gold", "kind", "pred", "trees"]
    True
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

# ------------------------------------------------------------------ exact numbers Q(sqrt p, ..., i)
# a value is {frozenset of primes (with -1 for i): rational coefficient}; sqrt(S)*sqrt(T) = sqrt(S ^ T)
# times the primes S and T share (i * i = -1 comes out of that rule with the "prime" -1).

Key = frozenset[int]
ONE: Key = frozenset()


class Unknown(Exception):
    """This point gives no exact value (a non-rational root argument, 0 in a denominator)."""


@dataclass(frozen=True)
class Q:
    c: tuple[tuple[Key, Fraction], ...]

    @staticmethod
    def of(d: dict[Key, Fraction]) -> Q:
        return Q(tuple(sorted(((k, v) for k, v in d.items() if v), key=lambda t: sorted(t[0]))))

    @staticmethod
    def rat(q: Fraction | int) -> Q:
        return Q.of({ONE: Fraction(q)})

    def dict(self) -> dict[Key, Fraction]:
        return dict(self.c)

    def __add__(self, o: Q) -> Q:
        d = self.dict()
        for k, v in o.c:
            d[k] = d.get(k, Fraction(0)) + v
        return Q.of(d)

    def __neg__(self) -> Q:
        return Q(tuple((k, -v) for k, v in self.c))

    def __sub__(self, o: Q) -> Q:
        return self + (-o)

    def __mul__(self, o: Q) -> Q:
        d: dict[Key, Fraction] = {}
        for ka, va in self.c:
            for kb, vb in o.c:
                coef = Fraction(1)
                for p in ka & kb:
                    coef *= p
                k = ka ^ kb
                d[k] = d.get(k, Fraction(0)) + va * vb * coef
        return Q.of(d)

    def conj(self, p: int) -> Q:
        return Q(tuple((k, -v if p in k else v) for k, v in self.c))

    def inverse(self) -> Q:
        if not self.c:
            raise Unknown("division by zero")
        num, den = Q.rat(1), self
        for p in sorted({p for k, _ in self.c for p in k}):
            c = den.conj(p)
            num, den = num * c, den * c
        d = den.dict()
        if set(d) != {ONE}:
            raise Unknown("not rationalised")
        return num * Q.rat(1 / d[ONE])

    def __truediv__(self, o: Q) -> Q:
        return self * o.inverse()

    def rational(self) -> Fraction | None:
        if not self.c:
            return Fraction(0)
        if len(self.c) == 1 and self.c[0][0] == ONE:
            return self.c[0][1]
        return None

    def approx(self) -> complex:
        total = 0j
        for k, v in self.c:
            r = 1 + 0j
            for p in k:
                r *= 1j if p == -1 else p**0.5
            total += float(v) * r
        return total


def _factor(n: int) -> dict[int, int]:
    out: dict[int, int] = {}
    p = 2
    while p * p <= n:
        while n % p == 0:
            out[p] = out.get(p, 0) + 1
            n //= p
        p += 1
    if n > 1:
        out[n] = out.get(n, 0) + 1
    return out


def q_sqrt(q: Fraction) -> Q:
    """sqrt of a rational, exactly: sqrt(a/b) = sqrt(a*b)/b."""
    if q == 0:
        return Q.rat(0)
    n = abs(q.numerator) * q.denominator
    if n > 10**12:
        raise Unknown("too large to factor")
    coef, primes = Fraction(1, q.denominator), set()
    for p, e in _factor(n).items():
        coef *= p ** (e // 2)
        if e % 2:
            primes.add(p)
    if q < 0:
        primes.add(-1)
    return Q.of({frozenset(primes): coef})


def q_cbrt(q: Fraction) -> Q:
    for part in (q.numerator, q.denominator):
        r = round(abs(part) ** (1 / 3))
        if not any((r + d) ** 3 == abs(part) for d in (-1, 0, 1)):
            raise Unknown("not a cube")
    num = next(r for r in range(round(abs(q.numerator) ** (1 / 3)) + 2) if r**3 == abs(q.numerator))
    den = next(r for r in range(round(q.denominator ** (1 / 3)) + 2) if r**3 == q.denominator)
    return Q.rat(Fraction(num if q > 0 else -num, den))


# ------------------------------------------------------------------------------------------- trees
# ("n", Fraction) ("v", name) ("iv", name) ("pi",) ("add", a, b) ("sub", a, b) ("mul", a, b)
# ("div", a, b) ("neg", a) ("pow", a, exp) ("sqrt", a) ("cbrt", a) ("fn", name, a) ("idx", name, i)
# ("abs", a) ("raw", latex, tree)   -- a spelling whose TeX reading is `tree` (\frac125 = 1/2 * 5)

Tree = tuple[Any, ...]
REAL_VARS = ("x", "y", "z", "a", "b", "t")
INT_VARS = ("n", "k", "m")
FUNCS = ("sin", "cos", "ln", "exp")
INDEXED = ("a", "b", "u")
PI_STANDINS = (
    Fraction(22, 7), Fraction(47, 15), Fraction(69, 22), Fraction(91, 29), Fraction(25, 8), Fraction(19, 6),
)  # fmt: skip


class Point:
    """One random point: values of the variables and of every function application met there."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        values: set[Fraction] = set()
        # distinct (x and y never coincide at a point), and of either sign: |x + 3| and |x| + 3, or
        # sqrt(x^2) and x, agree at every positive point (where ln x is undefined the point is skipped)
        while len(values) < len(REAL_VARS):
            values.add(rng.choice((1, -1)) * (Fraction(rng.randint(1, 40), rng.randint(1, 9)) + rng.choice((0, 1, 2))))
        self.vars = dict(zip(REAL_VARS, rng.sample(sorted(values), len(values)), strict=True))
        self.ints = dict(zip(INT_VARS, rng.sample(range(1, 7), len(INT_VARS)), strict=True))  # distinct
        self.memo: dict[Any, Q] = {}

    def opaque(self, key: Any) -> Q:
        if key not in self.memo:
            self.memo[key] = Q.rat(Fraction(self.rng.randint(-500, 500), self.rng.randint(1, 97)))
        return self.memo[key]


def evaluate(t: Tree, pt: Point) -> Q:
    op = t[0]
    if op == "n":
        return Q.rat(t[1])
    if op == "v":
        return Q.rat(pt.vars[t[1]])
    if op == "iv":
        return Q.rat(pt.ints[t[1]])
    if op == "pi":  # a rational near pi (positive, so |11 + pi| = 11 + pi holds as it does for pi)
        if "pi" not in pt.memo:
            pt.memo["pi"] = Q.rat(pt.rng.choice(PI_STANDINS))
        return pt.memo["pi"]
    if op == "add":
        return evaluate(t[1], pt) + evaluate(t[2], pt)
    if op == "sub":
        return evaluate(t[1], pt) - evaluate(t[2], pt)
    if op == "mul":
        return evaluate(t[1], pt) * evaluate(t[2], pt)
    if op == "div":
        return evaluate(t[1], pt) / evaluate(t[2], pt)
    if op == "neg":
        return -evaluate(t[1], pt)
    if op == "pow":
        e = evaluate(t[2], pt).rational()
        if e is None or e.denominator != 1 or abs(e) > 12:
            raise Unknown("exponent")
        base = evaluate(t[1], pt)
        out = Q.rat(1)
        for _ in range(abs(int(e))):
            out = out * base
        return out if e >= 0 else out.inverse()
    if op in ("sqrt", "cbrt"):
        q = evaluate(t[1], pt).rational()
        if q is None:
            raise Unknown("root of an irrational")
        return q_sqrt(q) if op == "sqrt" else q_cbrt(q)
    if op == "fn":
        arg = evaluate(t[2], pt)
        q = arg.rational()
        if t[1] == "ln" and (q is None or q <= 0):
            raise Unknown("ln of a non-positive or irrational value")
        exact = {("sin", 0): 0, ("cos", 0): 1, ("exp", 0): 1, ("ln", 1): 0}.get((t[1], q))
        if exact is not None:  # the values the real functions have at 0 (or 1), which a verifier knows
            return Q.rat(exact)
        if t[1] in ("sin", "cos") and _negative_first(arg):  # cos(-t) = cos t, sin(-t) = -sin t
            v = pt.opaque((t[1], -arg))
            return v if t[1] == "cos" else -v
        return pt.opaque((t[1], arg))
    if op == "idx":
        return pt.opaque(("idx", t[1], evaluate(t[2], pt)))
    if op == "abs":
        v = evaluate(t[1], pt)
        a = v.approx()
        if abs(a.imag) > 1e-9 or abs(a.real) < 1e-9:
            raise Unknown("abs")
        return v if a.real > 0 else -v
    if op == "raw":
        return evaluate(t[2], pt)
    raise ValueError(op)


def _negative_first(v: Q) -> bool:
    """A fixed choice between v and -v (the sign of the first coefficient)."""
    return bool(v.c) and v.c[0][1] < 0


def variables(t: Any) -> set[str]:
    if isinstance(t, tuple) and t and t[0] in ("v", "iv"):
        return {t[1]}
    if isinstance(t, tuple):
        out: set[str] = set()
        for x in t[1:]:
            out |= variables(x)
        return out
    return set()


# --------------------------------------------------------------------------------------- rendering

PREC = {"add": 1, "sub": 1, "mul": 2, "neg": 2, "slash": 2, "raw": 2, "pow": 3}


@dataclass
class Piece:
    tex: str
    prec: int  # 1 sum, 2 product, 3 power, 4 atom
    start: str  # first token kind: digit frac letter cmd paren minus
    end: str  # last token kind: digit letter close open_fn (a function without parentheses)
    single: bool = False  # one TeX token: may stand without braces as an argument


class Renderer:
    """LaTeX for a tree, in a random spelling with the tree's meaning."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def sp(self) -> str:
        return self.rng.choice(("", "", " ", " "))

    def paren(self, p: Piece) -> Piece:
        if self.rng.random() < 0.4:
            return Piece(f"\\left({p.tex}\\right)", 4, "paren", "close")
        return Piece(f"({p.tex})", 4, "paren", "close")

    def arg(self, p: Piece, *, tex_single_ok: bool = True) -> str:
        """A macro argument: braces, or the bare token where TeX reads one token."""
        r = self.rng.random()
        if p.single and tex_single_ok and r < 0.5:
            return (" " if p.start == "letter" or r < 0.1 else "") + p.tex
        return ("{ " + p.tex + " }") if r > 0.9 else "{" + p.tex + "}"

    def number(self, q: Fraction) -> Piece:
        if q < 0:
            inner = self.number(-q)
            return Piece("-" + (inner.tex if inner.prec >= 2 else f"({inner.tex})"), 2, "minus", inner.end)
        if q.denominator == 1:
            s = str(q.numerator)
            return Piece(s, 4, "digit", "digit", single=len(s) == 1)
        d = q.denominator
        while d % 2 == 0:
            d //= 2
        while d % 5 == 0:
            d //= 5
        r = self.rng.random()
        if d == 1 and r < 0.3:  # a terminating value as its exact decimal
            s = f"{float(q):.12f}".rstrip("0")
            if Fraction(s) == q:
                return Piece(s, 4, "digit", "digit")
        num, den = str(q.numerator), str(q.denominator)
        if q > 1 and r > 0.9:  # a mixed number: 2\frac{1}{2} is 5/2
            whole, rest = divmod(q.numerator, q.denominator)
            return Piece(f"{whole}\\frac{{{rest}}}{{{q.denominator}}}", 4, "digit", "close")
        if r < 0.5:
            return Piece(f"{num}/{den}", 2, "digit", "digit")
        cmd = self.rng.choice(("\\frac", "\\frac", "\\dfrac", "\\tfrac"))
        a = Piece(num, 4, "digit", "digit", single=len(num) == 1)
        b = Piece(den, 4, "digit", "digit", single=len(den) == 1)
        return Piece(f"{cmd}{self.arg(a)}{self.arg(b)}", 4, "frac", "close")

    def render(self, t: Tree) -> Piece:
        op = t[0]
        rng = self.rng
        if op == "n":
            return self.number(t[1])
        if op in ("v", "iv"):
            return Piece(t[1], 4, "letter", "letter", single=True)
        if op == "pi":
            return Piece("\\pi", 4, "cmd", "letter", single=True)
        if op in ("add", "sub"):
            a = self.render(t[1])
            b = self.render(t[2])
            if op == "sub" and b.prec <= 1 or b.start == "minus":
                b = self.paren(b)
            if op == "sub" and b.start == "minus":
                b = self.paren(b)
            sign = "+" if op == "add" else "-"
            return Piece(f"{a.tex}{self.sp()}{sign}{self.sp()}{b.tex}", 1, a.start, b.end)
        if op == "neg":
            a = self.render(t[1])
            if a.prec <= 2 or a.start == "minus":
                a = self.paren(a)
            return Piece(f"-{a.tex}", 2, "minus", a.end)
        if op == "mul":
            a = self.render(t[1])
            b = self.render(t[2])
            if a.prec < 2 or (a.prec == 2 and a.start == "minus" and rng.random() < 0.5):
                a = self.paren(a)
            if b.prec <= 2:
                b = self.paren(b)
            juxtapose = (
                a.end in ("letter", "close")
                and b.start in ("letter", "cmd", "paren")
                or a.end == "digit"
                and b.start in ("letter", "cmd", "paren")
            ) and a.end != "open_fn"
            if a.prec == 2 and a.start != "minus":
                juxtapose = False  # a/b x would read as a/(bx)
            if juxtapose and rng.random() < 0.6:
                # a control word runs to the first non-letter: `\pi b`, never `\pib`
                word_then_letter = b.tex[:1].isalpha() and re.search(r"\\[A-Za-z]+$", a.tex) is not None
                spaced = (a.end == "letter" and b.start == "letter") or word_then_letter
                glue = " " if spaced or rng.random() < 0.3 else ""
                return Piece(f"{a.tex}{glue}{b.tex}", 2, a.start, b.end)
            op_tex = rng.choice(("\\cdot", "\\cdot", "\\times", "*"))
            return Piece(f"{a.tex}{self.sp()}{op_tex}{self.sp() or ' '}{b.tex}", 2, a.start, b.end)
        if op == "div":
            a = self.render(t[1])
            b = self.render(t[2])
            if rng.random() < 0.25:
                if a.prec < 3 or a.start == "minus":
                    a = self.paren(a)
                if b.prec < 4:
                    b = self.paren(b)
                return Piece(f"{a.tex}/{b.tex}", 2, a.start, b.end)
            cmd = rng.choice(("\\frac", "\\frac", "\\dfrac", "\\tfrac", "\\cfrac"))
            return Piece(f"{cmd}{self.arg(a)}{self.arg(b)}", 4, "frac", "close")
        if op == "pow":
            base = self.render(t[1])
            exp = self.render(t[2])
            if base.prec < 4 or base.start in ("frac", "minus") or base.end == "open_fn":
                base = self.paren(base)
            if t[1][0] == "idx":
                base = self.paren(base)
            elif base.prec == 4 and rng.random() < 0.15:
                base = Piece("{" + base.tex + "}", 4, base.start, "close")
            return Piece(f"{base.tex}^{self.arg(exp)}", 3, base.start, "close" if not exp.single else exp.end)
        if op == "sqrt":
            a = self.render(t[1])
            return Piece(f"\\sqrt{self.arg(a)}", 4, "cmd", "close")
        if op == "cbrt":
            a = self.render(t[1])
            return Piece(f"\\sqrt[3]{{{a.tex}}}", 4, "cmd", "close")
        if op == "fn":
            name, a = t[1], self.render(t[2])
            if name == "exp":
                if rng.random() < 0.3:
                    return Piece(f"\\exp\\left({a.tex}\\right)", 4, "cmd", "close")
                return Piece(f"e^{self.arg(a)}", 3, "letter", "close")
            r = rng.random()
            if a.single and r < 0.3:
                return Piece(f"\\{name} {a.tex}", 3, "cmd", "open_fn")
            if r < 0.6:
                return Piece(f"\\{name}\\left({a.tex}\\right)", 4, "cmd", "close")
            return Piece(f"\\{name}({a.tex})", 4, "cmd", "close")
        if op == "idx":
            i = self.render(t[2])
            return Piece(f"{t[1]}_{self.arg(i)}", 4, "letter", "close")
        if op == "abs":
            a = self.render(t[1])
            if rng.random() < 0.5:
                return Piece(f"\\left|{a.tex}\\right|", 4, "paren", "close")
            return Piece(f"|{a.tex}|", 4, "paren", "close")
        if op == "raw":
            return Piece(t[1], 2, t[1].startswith("\\frac") and "frac" or "letter", "digit")
        raise ValueError(op)

    def latex(self, t: Tree) -> str:
        return self.render(t).tex


# ----------------------------------------------------------------------------------------- grammar

UNITS = {  # symbol -> (dimension, factor to the base unit); the oracle's own table
    "m": ("L", Fraction(1)), "cm": ("L", Fraction(1, 100)), "mm": ("L", Fraction(1, 1000)),
    "km": ("L", Fraction(1000)), "g": ("M", Fraction(1, 1000)), "kg": ("M", Fraction(1)),
    "s": ("T", Fraction(1)), "min": ("T", Fraction(60)), "h": ("T", Fraction(3600)),
    "L": ("V", Fraction(1, 1000)), "mL": ("V", Fraction(1, 10**6)),
}  # fmt: skip
UNIT_SPELLINGS = {
    "m": ["\\text{ m}", "\\,\\mathrm{m}", "\\text{m}", " \\text{ meters}"],
    "cm": ["\\text{ cm}", " cm", "\\,\\mathrm{cm}", "\\text{ centimeters}"],
    "mm": ["\\text{ mm}", " mm"],
    "km": ["\\text{ km}", " km", "\\text{ kilometers}"],
    "g": ["\\text{ g}", "\\,\\mathrm{g}", " grams"],
    "kg": ["\\text{ kg}", " kg"],
    "s": ["\\text{ s}", "\\text{ seconds}"],
    "min": ["\\text{ min}", " minutes"],
    "h": ["\\text{ h}", " hours"],
    "L": ["\\text{ L}", " liters"],
    "mL": ["\\text{ mL}", " mL"],
}


@dataclass(frozen=True)
class Answer:
    kind: str  # expr interval qty eq decimal
    tree: Any = None
    lo: Any = None
    hi: Any = None
    lo_closed: bool = False
    hi_closed: bool = False
    unit: str = ""
    name: str = ""
    digits: str = ""  # decimal: the written decimal; numeral: its digits; sci: a fixed spelling or ""
    base: int = 0  # numeral: the written base (0: left out)


class Oracle:
    """Ground truth for two generated answers (exact, independent of the verifier)."""

    def __init__(self, seed: int, points: int = 3) -> None:
        self.seed = seed
        self.points = points

    def values_equal(self, a: Tree, b: Tree) -> bool | None:
        rng = random.Random(self.seed)
        seen = 0
        for _ in range(self.points * 3):
            pt = Point(rng)
            try:
                va, vb = evaluate(a, pt), evaluate(b, pt)
            except (Unknown, ZeroDivisionError):
                continue
            seen += 1
            if va != vb:
                return False
            if seen >= self.points:
                break
        return True if seen >= 2 else None  # one point alone could agree by chance

    def equal(self, g: Answer, p: Answer) -> bool | None:
        if g.kind == "qty" and p.kind == "qty":
            (dg, fg), (dp, fp) = UNITS[g.unit], UNITS[p.unit]
            if dg != dp:
                return False
            return self.values_equal(("mul", g.tree, ("n", fg)), ("mul", p.tree, ("n", fp)))
        if g.kind == "qty" or p.kind == "qty":  # a bare number for a number with a unit
            return self.values_equal(g.tree, p.tree)
        if g.kind == "eq" and p.kind == "eq":
            if g.name != p.name:
                return False
            return self.values_equal(g.tree, p.tree)
        if g.kind == "eq" or p.kind == "eq":  # x = E against E
            return self.values_equal(g.tree, p.tree)
        if g.kind == "interval" and p.kind == "interval":
            if (g.lo_closed, g.hi_closed) != (p.lo_closed, p.hi_closed):
                return False
            lo, hi = self.values_equal(g.lo, p.lo), self.values_equal(g.hi, p.hi)
            if lo is False or hi is False:
                return False
            return None if lo is None or hi is None else True
        if g.kind == "numeral" or p.kind == "numeral":  # the numeral policy: digits, and the base if both
            if g.base and p.base and g.base != p.base:
                return False
            return (g.digits.lstrip("0") or "0") == (p.digits.lstrip("0") or "0")
        if g.kind == "decimal" or p.kind == "decimal":
            exact, dec = (p, g) if g.kind == "decimal" else (g, p)
            return decimal_matches(dec.digits, exact.tree)
        return self.values_equal(g.tree, p.tree)


def decimal_matches(digits: str, exact: Tree) -> bool | None:
    """The decimal policy, exactly: a terminating value needs the exact decimal; otherwise at least
    6 significant digits and the value within one unit of the last written digit."""
    d = Fraction(digits)
    places = len(digits.split(".")[1]) if "." in digits else 0
    ulp = Fraction(1, 10**places)
    sig = len(digits.replace("-", "").replace(".", "").lstrip("0"))
    pt = Point(random.Random(0))
    try:
        v = evaluate(exact, pt)
    except Unknown:
        return None
    q = v.rational()
    if q is not None:
        den = q.denominator
        for p in (2, 5):
            while den % p == 0:
                den //= p
        if den == 1:
            return q == d
        return sig >= 6 and abs(d - q) <= ulp
    # sqrt(r) for a positive rational r: |d - sqrt r| <= ulp  <=>  (d - ulp)^2 <= r <= (d + ulp)^2
    parts = dict(v.c)
    if len(parts) != 1:
        return None
    ((key, coef),) = parts.items()
    if -1 in key or coef <= 0:
        return None
    r = coef * coef
    for p in key:
        r *= p
    lo, hi = d - ulp, d + ulp
    inside = (lo <= 0 or lo * lo <= r) and r <= hi * hi
    return sig >= 6 and inside


class Fuzzer:
    """Random cases: {"gold", "pred", "equal" (oracle), "construct", "kind" (spelling or edit name)}."""

    CONSTRUCTS = (
        "fraction",
        "root",
        "power",
        "subscript",
        "function",
        "interval",
        "unit",
        "equation",
        "decimal",
        "mixed",
        "numeral",
        "scientific",
    )

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.count = 0
        self.in_function = 0

    # -- random trees
    def num(self, lo: int = 1, hi: int = 12) -> Tree:
        return ("n", Fraction(self.rng.randint(lo, hi)))

    def var(self) -> Tree:
        return ("v", self.rng.choice(REAL_VARS[:4]))

    def leaf(self) -> Tree:
        r = self.rng.random()
        if r < 0.45:
            return self.num()
        if r < 0.9 or self.in_function:  # no pi inside sin/cos: sin(t + pi) = sin(t - pi) is real
            return self.var()
        return ("pi",)

    def expr(self, depth: int, focus: str) -> Tree:
        rng = self.rng
        if depth <= 0:
            return self.leaf()
        choices = {
            "fraction": ["div", "div", "add", "mul", "sub"],
            "root": ["sqrt", "sqrt", "add", "mul", "cbrt"],
            "power": ["pow", "pow", "add", "mul", "powvar"],
            "subscript": ["idx", "idx", "add", "mul"],
            "function": ["fn", "fn", "add", "mul"],
            "mixed": ["div", "sqrt", "pow", "idx", "fn", "add", "sub", "mul", "neg", "abs"],
        }.get(focus, ["add", "mul", "div"])
        op = rng.choice(choices)
        if op in ("add", "sub", "mul", "div"):
            return (op, self.expr(depth - 1, focus), self.expr(depth - 1, focus))
        if op == "neg":
            return ("neg", self.expr(depth - 1, focus))
        if op == "abs":
            return ("abs", self.expr(depth - 1, focus))
        if op == "sqrt":
            return ("sqrt", self.expr(depth - 1, "fraction" if depth > 1 else focus))
        if op == "cbrt":
            return ("cbrt", ("n", Fraction(rng.choice((8, 27, 64, 125, 1000)))))
        if op == "pow":
            if rng.random() < 0.2:  # x^{10}..x^{12}: TeX needs the braces
                return ("pow", self.var(), ("n", Fraction(rng.randint(10, 12))))
            return ("pow", self.expr(depth - 1, focus), ("n", Fraction(rng.randint(2, 4))))
        if op == "powvar":
            e = ("iv", rng.choice(INT_VARS))
            if rng.random() < 0.6:
                e = ("add", e, self.num(1, 3))
            return ("pow", self.var(), e)
        if op == "idx":
            i: Tree = ("iv", rng.choice(INT_VARS))
            if rng.random() < 0.2:
                i = ("n", Fraction(rng.randint(10, 30)))
            elif rng.random() < 0.6:
                i = ("add", i, self.num(1, 3))
            return ("idx", rng.choice(INDEXED), i)
        if op == "fn":
            self.in_function += 1
            arg = self.expr(depth - 1, "fraction") if depth > 1 else self.var()
            self.in_function -= 1
            return ("fn", rng.choice(FUNCS), arg)
        raise ValueError(op)

    # -- value-changing edits (the result is a tree the oracle evaluates)
    def edits(self, t: Tree) -> list[tuple[str, Tree]]:
        out: list[tuple[str, Tree]] = []
        self._brace_moves(t, lambda x: x, out)
        self._single_tokens(t, lambda x: x, out)
        self._number_changes(t, lambda x: x, out)
        ints = sorted(variables(t) & set(INT_VARS))
        if ints:
            old_i = self.rng.choice(ints)
            out.append(
                (
                    "change variable",
                    _subst_int(t, old_i, self.rng.choice([v for v in INT_VARS if v != old_i])),
                )
            )
        names = sorted(variables(t) & set(REAL_VARS))
        if names:
            old = self.rng.choice(names)
            new = self.rng.choice([v for v in REAL_VARS if v != old])
            out.append(("change variable", _subst(t, old, new)))
        self._function_changes(t, lambda x: x, out)
        return out

    def _brace_moves(self, t: Any, wrap: Any, out: list[tuple[str, Tree]]) -> None:
        """Move a closing brace left: \\frac{a}{b+c} -> \\frac{a}{b}+c, \\sqrt{x+1} -> \\sqrt{x}+1, ..."""
        if not isinstance(t, tuple) or t[0] in ("n", "v", "iv", "pi", "raw"):
            return
        op = t[0]
        group_slot = {"div": 2, "sqrt": 1, "pow": 2, "idx": 2, "fn": 2, "abs": 1}.get(op)
        if group_slot is not None and isinstance(t[group_slot], tuple) and t[group_slot][0] == "add":
            inner = t[group_slot]
            moved = t[:group_slot] + (inner[1],) + t[group_slot + 1 :]
            out.append((f"move brace ({op})", wrap(("add", moved, inner[2]))))
        if op == "div" and isinstance(t[1], tuple) and t[1][0] == "add":  # \frac{a+b}{c} -> a+\frac{b}{c}
            out.append(("move brace (div num)", wrap(("add", t[1][1], ("div", t[1][2], t[2])))))
        for k in range(1, len(t)):
            if isinstance(t[k], tuple):
                self._brace_moves(t[k], lambda x, k=k: wrap(t[:k] + (x,) + t[k + 1 :]), out)

    def _single_tokens(self, t: Any, wrap: Any, out: list[tuple[str, Tree]]) -> None:
        """Drop a group's braces so TeX reads one token: \\frac{12}{5} -> \\frac125 = \\frac{1}{2}5."""
        if not isinstance(t, tuple) or t[0] in ("n", "v", "iv", "pi", "raw"):
            return
        op = t[0]
        if op == "div" and all(x[0] == "n" and x[1].denominator == 1 and x[1] > 0 for x in t[1:]):
            s = str(t[1][1].numerator) + str(t[2][1].numerator)
            if len(s) >= 3 and s[1] != "0":
                value = (
                    "mul",
                    ("div", ("n", Fraction(int(s[0]))), ("n", Fraction(int(s[1])))),
                    ("n", Fraction(int(s[2:]))),
                )
                out.append(("drop braces (frac)", wrap(("raw", "\\frac" + s, value))))
        if op == "pow" and t[2][0] == "n" and t[2][1].denominator == 1 and t[2][1] >= 10 and t[1][0] == "v":
            s = str(t[2][1].numerator)  # x^{12} -> x^12 = x^1 * 2
            value = ("mul", ("pow", t[1], ("n", Fraction(int(s[0])))), ("n", Fraction(int(s[1:]))))
            out.append(("drop braces (power)", wrap(("raw", f"{t[1][1]}^{s}", value))))
        if op == "idx" and t[2][0] == "n" and t[2][1] >= 10:
            s = str(t[2][1].numerator)  # a_{12} -> a_12 = a_1 * 2
            value = ("mul", ("idx", t[1], ("n", Fraction(int(s[0])))), ("n", Fraction(int(s[1:]))))
            out.append(("drop braces (subscript)", wrap(("raw", f"{t[1]}_{s}", value))))
        if op == "sqrt" and t[1][0] == "n" and t[1][1].denominator == 1 and t[1][1] >= 10:
            s = str(t[1][1].numerator)
            value = ("mul", ("sqrt", ("n", Fraction(int(s[0])))), ("n", Fraction(int(s[1:]))))
            out.append(("drop braces (sqrt)", wrap(("raw", "\\sqrt" + s, value))))
        for k in range(1, len(t)):
            if isinstance(t[k], tuple):
                self._single_tokens(t[k], lambda x, k=k: wrap(t[:k] + (x,) + t[k + 1 :]), out)

    def _number_changes(self, t: Any, wrap: Any, out: list[tuple[str, Tree]]) -> None:
        if not isinstance(t, tuple):
            return
        if t[0] == "n":
            out.append(("change number", wrap(("n", t[1] + self.rng.choice((-1, 1, 2))))))
            return
        if t[0] in ("v", "iv", "pi", "raw"):
            return
        for k in range(1, len(t)):
            if isinstance(t[k], tuple):
                self._number_changes(t[k], lambda x, k=k: wrap(t[:k] + (x,) + t[k + 1 :]), out)

    def _function_changes(self, t: Any, wrap: Any, out: list[tuple[str, Tree]]) -> None:
        if not isinstance(t, tuple) or t[0] in ("n", "v", "iv", "pi", "raw"):
            return
        if t[0] == "fn":
            other = self.rng.choice([f for f in FUNCS if f != t[1]])
            out.append(("change function", wrap(("fn", other, t[2]))))
        if t[0] == "add":
            out.append(("change operator", wrap(("sub", t[1], t[2]))))
        for k in range(1, len(t)):
            if isinstance(t[k], tuple):
                self._function_changes(t[k], lambda x, k=k: wrap(t[:k] + (x,) + t[k + 1 :]), out)

    # -- value-preserving rewrites (the verifier must accept them)
    def rewrite(self, t: Tree) -> Tree:
        """An equal tree written differently: commuted sums/products, a fraction split, x^2 = x*x."""
        if not isinstance(t, tuple) or t[0] in ("n", "v", "iv", "pi", "raw"):
            return t
        parts = tuple(self.rewrite(x) if isinstance(x, tuple) else x for x in t)
        op = parts[0]
        r = self.rng.random()
        if op in ("add", "mul") and r < 0.5:
            return (op, parts[2], parts[1])
        if op == "div" and parts[1][0] == "add" and r < 0.3:
            return ("add", ("div", parts[1][1], parts[2]), ("div", parts[1][2], parts[2]))
        if op == "pow" and parts[2] == ("n", Fraction(2)) and r < 0.3:
            return ("mul", parts[1], parts[1])
        if op == "sub" and r < 0.3:
            return ("add", parts[1], ("neg", parts[2]))
        return parts

    # -- cases
    def case(self) -> dict[str, Any]:
        self.count += 1
        construct = self.CONSTRUCTS[self.count % len(self.CONSTRUCTS)]
        rng = self.rng
        r = Renderer(rng)
        oracle_seed = rng.randint(0, 10**9)
        oracle = Oracle(seed=oracle_seed)
        gold_answer, gold_tex = self.answer(construct, r)
        mode = rng.random()
        if mode < 0.3:  # the same tree in another spelling
            pred_answer, kind = gold_answer, "respelled"
        elif mode < 0.45:
            pred_answer, kind = self.rewritten(gold_answer), "rewritten"
        else:
            pred_answer, kind = self.edited(gold_answer)
        pred_tex = self.tex(pred_answer, r)
        equal = oracle.equal(gold_answer, pred_answer)
        return {
            "gold": gold_tex,
            "pred": pred_tex,
            "equal": equal,
            "construct": construct,
            "kind": kind,
            "trees": (gold_answer, pred_answer, oracle_seed),  # to replay the oracle
        }

    def answer(self, construct: str, r: Renderer) -> tuple[Answer, str]:
        rng = self.rng
        if construct == "interval":
            lo = self.expr(rng.randint(0, 1), "fraction")
            lo = ("neg", lo) if rng.random() < 0.5 else lo
            hi = ("add", lo, ("n", Fraction(rng.randint(1, 5))))  # lo < hi when lo is a constant
            if variables(lo):
                lo, hi = self.num(), ("n", Fraction(rng.randint(13, 30)))
            a = Answer("interval", lo=lo, hi=hi, lo_closed=rng.random() < 0.5, hi_closed=rng.random() < 0.5)
        elif construct == "unit":
            a = Answer("qty", tree=self.const(), unit=rng.choice(sorted(UNITS)))
        elif construct == "equation":
            a = Answer(
                "eq", tree=self.expr(rng.randint(1, 2), "mixed"), name=rng.choice(("y", "f(x)", "z", "k"))
            )
        elif construct == "decimal":
            a = Answer("expr", tree=rng.choice(self._decimal_golds()))
        elif construct == "numeral":
            base = rng.randint(2, 16)
            digits = str(rng.randint(1, min(base, 10) - 1)) + "".join(
                str(rng.randrange(min(base, 10))) for _ in range(rng.randint(0, 5))
            )
            a = Answer("numeral", digits=digits, base=base)
        elif construct == "scientific":
            mant = rng.randint(1, 999) * rng.choice((1, 10, 100))
            a = Answer("sci", tree=("n", Fraction(mant) * Fraction(10) ** rng.randint(-14, 40)))
        else:
            a = Answer("expr", tree=self.expr(rng.randint(1, 3), construct))
        return a, self.tex(a, r)

    def const(self) -> Tree:
        rng = self.rng
        t = ("n", Fraction(rng.randint(1, 500)))
        if rng.random() < 0.3:
            t = ("div", t, ("n", Fraction(rng.randint(2, 8))))
        return t

    def _decimal_golds(self) -> list[Tree]:
        return [
            ("div", ("n", Fraction(1)), ("n", Fraction(3))),
            ("div", ("n", Fraction(2)), ("n", Fraction(7))),
            ("div", ("n", Fraction(1)), ("n", Fraction(8))),
            ("div", ("n", Fraction(5)), ("n", Fraction(16))),
            ("sqrt", ("n", Fraction(2))),
            ("sqrt", ("n", Fraction(3))),
            ("div", ("sqrt", ("n", Fraction(5))), ("n", Fraction(2))),
            ("div", ("n", Fraction(22)), ("n", Fraction(7))),
            ("n", Fraction(3, 4)),
        ]

    def rewritten(self, a: Answer) -> Answer:
        if a.kind == "numeral":  # the base left out, or a leading zero
            if self.rng.random() < 0.6:
                return Answer("numeral", digits=a.digits, base=0)
            return Answer("numeral", digits="0" + a.digits, base=a.base)
        if a.kind == "expr":
            return Answer("expr", tree=self.rewrite(a.tree))
        if a.kind == "eq":
            return (
                Answer("expr", tree=self.rewrite(a.tree))
                if self.rng.random() < 0.5
                else Answer("eq", tree=self.rewrite(a.tree), name=a.name)
            )
        if a.kind == "qty":
            other = self.rng.choice([u for u in UNITS if UNITS[u][0] == UNITS[a.unit][0]])
            scale = UNITS[a.unit][1] / UNITS[other][1]
            if self.rng.random() < 0.3:
                return Answer("expr", tree=a.tree)  # the bare number
            return Answer("qty", tree=("mul", a.tree, ("n", scale)), unit=other)
        return a

    def edited(self, a: Answer) -> tuple[Answer, str]:
        rng = self.rng
        if a.kind == "interval":
            k = rng.random()
            if k < 0.4:
                return Answer(
                    "interval", lo=a.lo, hi=a.hi, lo_closed=not a.lo_closed, hi_closed=a.hi_closed
                ), "flip bracket"
            if k < 0.7:
                return Answer(
                    "interval", lo=a.lo, hi=a.hi, lo_closed=a.lo_closed, hi_closed=not a.hi_closed
                ), "flip bracket"
            return Answer(
                "interval",
                lo=a.lo,
                hi=("add", a.hi, ("n", Fraction(1))),
                lo_closed=a.lo_closed,
                hi_closed=a.hi_closed,
            ), "change number"
        if a.kind == "qty":
            other = rng.choice([u for u in UNITS if u != a.unit])
            return Answer("qty", tree=a.tree, unit=other), "change unit"
        if a.kind == "numeral":
            k = rng.random()
            top = max(int(c) for c in a.digits)
            if k < 0.35:  # another base in which the digits are still digits
                other = rng.choice([b for b in range(top + 2, 17) if b != a.base] or [a.base + 1])
                return Answer("numeral", digits=a.digits, base=other), "change base"
            if k < 0.6:  # the value in base 10, written bare
                return Answer("numeral", digits=str(int(a.digits, a.base)), base=0), "value in base 10"
            i = rng.randrange(len(a.digits))
            d = str((int(a.digits[i]) + rng.randint(1, min(a.base, 10) - 1)) % min(a.base, 10))
            digits = a.digits[:i] + d + a.digits[i + 1 :]
            return Answer("numeral", digits=digits, base=a.base if rng.random() < 0.7 else 0), "change number"
        if a.kind == "sci":
            return self.sci_edit(a.tree[1])
        if a.kind == "eq":
            if rng.random() < 0.4:
                return Answer(
                    "eq", tree=a.tree, name=rng.choice([n for n in ("y", "f(x)", "z", "k") if n != a.name])
                ), "change variable"
            options = self.edits(a.tree)
            if not options:
                return a, "respelled"
            kind, t = rng.choice(options)
            return Answer("eq", tree=t, name=a.name), kind
        if a.kind == "expr" and a.tree in self._decimal_golds():
            return self.decimal_for(a.tree), "decimal"
        options = self.edits(a.tree)
        if not options:
            return a, "respelled"
        kind, t = rng.choice(options)
        return Answer("expr", tree=t), kind

    def sci_edit(self, q: Fraction) -> tuple[Answer, str]:
        """A number in scientific notation, changed: the exponent, a mantissa digit, or an exponent of
        two digits without braces (`10^35` is TeX's `10^{3}5`, so the value is 5 * 10^3 * mantissa)."""
        rng = self.rng
        mant, exp = _mantissa(q)
        k = rng.random()
        if k < 0.35:
            return Answer("sci", tree=("n", q * Fraction(10) ** rng.choice((-1, 1)))), "change exponent"
        if k < 0.7 or not 10 <= exp <= 99:
            step = Fraction(10) ** (exp - len(_digits(mant)) + 1)  # one unit in the last mantissa digit
            return Answer("sci", tree=("n", q + rng.choice((-1, 1)) * step)), "change number"
        m = _fixed(mant)
        op = "\\times" if rng.random() < 0.5 else "\\cdot"
        text = f"{m} {op} 10^{exp}"
        value = mant * Fraction(10) ** (exp // 10) * (exp % 10)
        return Answer("sci", tree=("n", value), digits=text), "drop braces (exponent)"

    def decimal_for(self, t: Tree) -> Answer:
        """The decimal of a constant with 2..9 significant digits, rounded, cut or one off."""
        rng = self.rng
        pt = Point(random.Random(0))
        v = evaluate(t, pt).approx().real
        sig = rng.randint(2, 9)
        places = max(sig - 1 - int(f"{v:e}".split("e")[1]), 0)
        text = f"{v:.{places}f}"
        k = rng.random()
        if k < 0.25:  # cut instead of rounded
            text = f"{int(v * 10**places) / 10**places:.{places}f}"
        elif k < 0.4:  # one unit off in the last place
            text = f"{v + 2 * 10**-places:.{places}f}"
        return Answer("decimal", digits=text)

    def tex(self, a: Answer, r: Renderer) -> str:
        rng = self.rng
        if a.kind in ("expr",):
            return r.latex(a.tree)
        if a.kind == "decimal":
            return a.digits
        if a.kind == "numeral":
            if not a.base:
                return a.digits
            if a.base < 10 and rng.random() < 0.5:
                return f"{a.digits}_{a.base}"  # one token: TeX reads the whole base
            return f"{a.digits}_{{{r.sp()}{a.base}{r.sp()}}}"
        if a.kind == "sci":
            return a.digits or sci_spelling(a.tree[1], rng)
        if a.kind == "qty":
            return r.latex(a.tree) + rng.choice(UNIT_SPELLINGS[a.unit])
        if a.kind == "eq":
            return f"{a.name}{r.sp()}={r.sp()}{r.latex(a.tree)}"
        if a.kind == "interval":
            lo, hi = r.latex(a.lo), r.latex(a.hi)
            o, c = "[" if a.lo_closed else "(", "]" if a.hi_closed else ")"
            if rng.random() < 0.3:
                return f"\\left{o}{lo},{r.sp()}{hi}\\right{c}"
            if rng.random() < 0.2:
                lo_op = "\\le" if a.lo_closed else "<"
                hi_op = "\\le" if a.hi_closed else "<"
                return f"{lo} {lo_op} x {hi_op} {hi}"
            return f"{o}{lo},{r.sp()}{hi}{c}"
        raise ValueError(a.kind)


def _digits(m: Fraction) -> str:
    """The significant digits of a positive decimal m (no leading or trailing zeros)."""
    return _fixed(m).replace(".", "").lstrip("0").rstrip("0") or "0"


def _fixed(q: Fraction) -> str:
    """The exact decimal of a terminating positive fraction, without trailing zeros after the point."""
    places = 0
    while (q * 10**places).denominator != 1:
        places += 1
    whole = q * 10**places
    text = str(whole.numerator).rjust(places + 1, "0")
    if not places:
        return text
    return f"{text[:-places]}.{text[-places:]}"


def _mantissa(q: Fraction) -> tuple[Fraction, int]:
    """q = mant * 10^exp with 1 <= mant < 10."""
    exp = 0
    while q >= 10 * Fraction(10) ** exp:
        exp += 1
    while q < Fraction(10) ** exp:
        exp -= 1
    return q / Fraction(10) ** exp, exp


def sci_spelling(q: Fraction, rng: random.Random) -> str:
    """A random spelling of a positive terminating number: 3.83e35, 3.83 \\times 10^{35}, 38.3 \\cdot
    10^{34}, 0.000383, 11,000 / 11{,}000 / 11,\\!000 (TeX's thousands spacing)."""
    mant, exp = _mantissa(q)
    k = rng.random()
    if k < 0.2:
        return f"{_fixed(mant)}{rng.choice('eE')}{exp}"
    if k < 0.6:
        shift = rng.randint(-2, 2)
        m = mant * Fraction(10) ** shift
        e = exp - shift
        power = f"10^{e}" if 0 <= e <= 9 and rng.random() < 0.5 else f"10^{{{e}}}"
        op = rng.choice(("\\times", "\\cdot"))
        return f"{_fixed(m)} {op} {power}"
    plain = _fixed(q)
    if q.denominator == 1 and q >= 1000 and rng.random() < 0.7:
        sep = rng.choice((",", "{,}", ",\\!", ",\\! "))
        groups = []
        while plain:
            groups.insert(0, plain[-3:])
            plain = plain[:-3]
        return sep.join(groups)
    return plain


def _subst_int(t: Any, old: str, new: str) -> Any:
    if isinstance(t, tuple) and t and t[0] == "iv" and t[1] == old:
        return ("iv", new)
    if isinstance(t, tuple):
        return tuple(_subst_int(x, old, new) if isinstance(x, tuple) else x for x in t)
    return t


def _subst(t: Any, old: str, new: str) -> Any:
    if isinstance(t, tuple) and t and t[0] == "v" and t[1] == old:
        return ("v", new)
    if isinstance(t, tuple):
        return tuple(_subst(x, old, new) if isinstance(x, tuple) else x for x in t)
    return t
