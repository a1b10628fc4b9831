"""The sympy stage: leaf comparisons the fast stage left open, run inside the killable worker.

The trees come from the same parser (`latex.py`) and go to sympy node by node (`to_sympy`), so an
answer means the same thing in both stages (no second LaTeX parser with its own reading of braces).
sympy proves equality by simplifying the difference to zero (also with positive variables, as answers
assume), and a difference by evaluating it numerically at a point. Anything else is undecided (None).

Example:
    >>> from tracekit.verify.math.latex import parse_answer
    >>> SympyValues().values(parse_answer(r"\\tan^2 y + 1"), parse_answer(r"\\sec^2 y"))
    True
"""

from __future__ import annotations

import zlib
from fractions import Fraction
from typing import Any

from tracekit.verify.math.equivalence import FastValues, Tri
from tracekit.verify.math.latex import (
    Add,
    Const,
    Div,
    EmptySet,
    Func,
    LatexError,
    Mul,
    Neg,
    Node,
    Num,
    Pow,
    Reals,
    Rel,
    Root,
    Seq,
    SetLit,
    SetOp,
    Sub,
    Sym,
    Tup,
)

_FUNCS = {
    "sin": "sin", "cos": "cos", "tan": "tan", "cot": "cot", "sec": "sec", "csc": "csc", "arcsin": "asin",
    "arccos": "acos", "arctan": "atan", "arccot": "acot", "arcsec": "asec", "arccsc": "acsc", "sinh": "sinh",
    "cosh": "cosh", "tanh": "tanh", "coth": "coth", "exp": "exp", "abs": "Abs", "floor": "floor",
    "ceil": "ceiling", "factorial": "factorial", "binom": "binomial", "gcd": "gcd", "lcm": "lcm",
    "max": "Max", "min": "Min", "sgn": "sign", "arg": "arg",
}  # fmt: skip


def to_sympy(n: Node) -> Any:
    """The sympy expression of an expression tree; raises LatexError for structures."""
    import sympy as sp

    if isinstance(n, Num):
        return sp.Rational(n.value.numerator, n.value.denominator)
    if isinstance(n, Sym):
        return sp.Symbol(n.name)
    if isinstance(n, Const):
        return {"pi": sp.pi, "e": sp.E, "i": sp.I, "inf": sp.oo}[n.name]
    if isinstance(n, Sub):
        if isinstance(n.base, Sym):
            return sp.Symbol(f"{n.base.name}_{{{sp.sstr(to_sympy(n.index))}}}")
        if isinstance(n.base, Num):
            return sp.Symbol(f"{n.base.text}_{{{sp.sstr(to_sympy(n.index))}}}")
    if isinstance(n, Add):
        return sp.Add(*(to_sympy(t) for t in n.terms))
    if isinstance(n, Neg):
        return -to_sympy(n.arg)
    if isinstance(n, Mul):
        return sp.Mul(*(to_sympy(f) for f in n.factors))
    if isinstance(n, Div):
        return to_sympy(n.num) / to_sympy(n.den)
    if isinstance(n, Pow):
        return sp.Pow(to_sympy(n.base), to_sympy(n.exp))
    if isinstance(n, Root):
        arg = to_sympy(n.arg)
        return sp.sqrt(arg) if n.index is None else sp.root(arg, to_sympy(n.index))
    if isinstance(n, Func):
        args = [to_sympy(a) for a in n.args]
        if n.name == "ln":
            return sp.log(args[0]) if n.base is None else sp.log(args[0], to_sympy(n.base))
        if n.name == "log":
            return sp.log(args[0], 10 if n.base is None else to_sympy(n.base))
        if n.name in _FUNCS:
            return getattr(sp, _FUNCS[n.name])(*args)
    raise LatexError(f"no sympy form for {type(n).__name__}")


def _points(symbols: list[Any], k: int) -> list[dict[Any, Any]]:
    import sympy as sp

    out = []
    for j in range(k):
        env = {}
        for s in symbols:
            h = zlib.crc32(f"{s.name}@{j}".encode())
            env[s] = sp.Rational(h % 997 + 500, h // 997 % 89 + 211) + j
        out.append(env)
    return out


def sympy_equal(a: Any, b: Any) -> Tri:
    """True: sympy proves a == b; False: they differ at a point; None: undecided."""
    import sympy as sp

    if a.has(sp.zoo, sp.nan, sp.oo, -sp.oo) or b.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        return None  # an undefined or infinite value is never "equal" (zoo == zoo in sympy)
    if a == b:
        return True
    d = sp.simplify(a - b)
    if d == 0:
        return True
    syms = sorted(d.free_symbols, key=lambda s: s.name)
    if not syms:
        return _numbers_equal(a, b)
    pos = {s: sp.Symbol(s.name, positive=True) for s in syms}
    if sp.simplify(d.subs(pos)) == 0:
        return True
    if d.has(sp.sinh, sp.cosh, sp.tanh, sp.sin, sp.cos, sp.tan) and sp.simplify(d.rewrite(sp.exp)) == 0:
        return True
    for env in _points(syms, 3):
        try:
            va, vb = sp.N(a.subs(env), 50), sp.N(b.subs(env), 50)
            if _numbers_equal(va, vb) is False:
                return False
        except (TypeError, ValueError, ZeroDivisionError):
            continue
    return None


def _numbers_equal(a: Any, b: Any) -> Tri:
    """Two closed numbers at 60 significant digits, relative to their size."""
    import sympy as sp

    av, bv = sp.N(a, 60), sp.N(b, 60)
    if not (av.is_number and bv.is_number) or av.has(sp.zoo, sp.nan, sp.oo) or bv.has(sp.zoo, sp.nan, sp.oo):
        return None
    scale = max(abs(av), abs(bv))
    if scale == 0:
        return True
    return bool(abs(av - bv) <= scale * sp.Float(10, 60) ** -50)


class SympyValues(FastValues):
    """Leaf comparisons of the sympy stage: the fast stage first, sympy for what it left open."""

    def values(self, a: Node, b: Node) -> Tri:
        fast = super().values(a, b)
        if fast is not None:
            return fast
        try:
            return sympy_equal(to_sympy(a), to_sympy(b))
        except LatexError:
            return None

    def proportional(self, a: Node, b: Node) -> Tri:
        fast = super().proportional(a, b)
        if fast is not None:
            return fast
        import sympy as sp

        try:
            sa, sb = to_sympy(a), to_sympy(b)
        except LatexError:
            return None
        if sb == 0:
            return None
        ratio = sp.simplify(sa / sb)
        if ratio.is_number:
            return bool(ratio != 0 and ratio.is_finite)
        return None

    def constant(self, a: Node) -> tuple[Fraction | None, Any]:
        q, v = super().constant(a)
        if q is not None or v is not None:
            return q, v
        import mpmath
        import sympy as sp

        try:
            val = sp.N(to_sympy(a), 50)
        except (LatexError, TypeError, ValueError):
            return None, None
        if not val.is_number or val.has(sp.zoo, sp.nan, sp.oo):
            return None, None
        with mpmath.workdps(50):
            re, im = val.as_real_imag()
            return None, mpmath.mpc(str(sp.N(re, 50)), str(sp.N(im, 50)))

    def relation_sets_equal(self, a: Node, b: Node) -> Tri:
        """Two relations or sets as subsets of the real line (one variable), by sympy."""
        import sympy as sp

        try:
            sa, sb = _as_sympy_set(a), _as_sympy_set(b)
        except (LatexError, TypeError, ValueError, NotImplementedError):
            return None
        if sa is None or sb is None:
            return None
        if sa == sb:
            return True
        try:
            diff = sp.simplify(sp.SymmetricDifference(sa, sb))
        except (TypeError, ValueError, NotImplementedError):
            return None
        if diff == sp.EmptySet:
            return True
        if diff.is_empty is False:
            return False
        return None


def _relational(rel: Rel) -> Any:
    import sympy as sp

    ops = {"<": sp.Lt, ">": sp.Gt, "<=": sp.Le, ">=": sp.Ge, "=": sp.Eq, "!=": sp.Ne}
    parts = [to_sympy(p) for p in rel.parts]
    conds = []
    for k, op in enumerate(rel.ops):
        if op not in ops:
            raise LatexError(op)
        conds.append(ops[op](parts[k], parts[k + 1]))
    return sp.And(*conds)


def _as_sympy_set(n: Node) -> Any:
    """The subset of the reals an interval, union, set or one-variable relation describes, else None."""
    import sympy as sp

    if isinstance(n, Reals):
        return sp.Reals
    if isinstance(n, EmptySet):
        return sp.EmptySet
    if isinstance(n, Tup) and len(n.items) == 2 and n.open in "([":
        a, b = (to_sympy(x) for x in n.items)
        return sp.Interval(a, b, n.open == "(", n.close == ")")
    if isinstance(n, SetLit):
        return sp.FiniteSet(*(to_sympy(x) for x in n.items))
    if isinstance(n, SetOp):
        a, b = _as_sympy_set(n.a), _as_sympy_set(n.b)
        if a is None or b is None:
            return None
        return {"cup": sp.Union, "cap": sp.Intersection, "setminus": sp.Complement}[n.op](a, b)
    if isinstance(n, Rel) and n.ops == ("in",):
        return _as_sympy_set(n.parts[1])
    if isinstance(n, Rel | Seq):
        if isinstance(n, Rel):
            cond = _relational(n)
        else:
            parts = [_relational(x) for x in n.items if isinstance(x, Rel)]
            if len(parts) != len(n.items):
                return None
            cond = sp.And(*parts) if n.sep == "and" else sp.Or(*parts)
        syms = cond.free_symbols
        if len(syms) != 1:
            return None
        (x,) = syms
        xr = sp.Symbol(x.name, real=True)
        return cond.subs({x: xr}).as_set()
    return None
