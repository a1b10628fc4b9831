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

from tracekit.verify.math.canonical import constant_value, real_power
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
        return _real_pow(to_sympy(n.base), to_sympy(n.exp))
    if isinstance(n, Root):
        arg = to_sympy(n.arg)
        return sp.sqrt(arg) if n.index is None else _real_pow(arg, 1 / to_sympy(n.index))
    if isinstance(n, Func):
        args = [to_sympy(a) for a in n.args]
        if n.name == "ln":
            return sp.log(args[0]) if n.base is None else sp.log(args[0], to_sympy(n.base))
        if n.name == "log":
            return sp.log(args[0], 10 if n.base is None else to_sympy(n.base))
        if n.name in _FUNCS:
            return getattr(sp, _FUNCS[n.name])(*args)
    raise LatexError(f"no sympy form for {type(n).__name__}")


def _real_pow(base: Any, exp: Any) -> Any:
    """base^exp; a negative number to a power p/q with odd q is the real root (the cube root of -8 is
    -2), as in the fast stage (canonical.real_power)."""
    import sympy as sp

    if exp.is_Rational and exp.q % 2 and base.is_number and base.is_negative:
        return (-1) ** exp.p * sp.Pow(-base, exp)
    return sp.Pow(base, exp)


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


def sympy_equal(a: Any, b: Any, *, trees: tuple[Node, Node] | None = None) -> Tri:
    """True: sympy proves a == b; False: they differ at a point; None: undecided.

    A proof that needs positive variables stands only when `trees` (gold, prediction) show no real
    point where the gold has a value the prediction does not share (|x| is not x)."""
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
        return trees is not None and not real_counterexample(*trees)
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


class _Undefined(Exception):
    """The expression has no real value at this point (sqrt of a negative, log of 0, 1/0)."""


class _NoRealReading(Exception):
    """The expression has a part this check does not evaluate (i, gcd, an unknown function)."""


_REAL_FUNCS = {
    "sin": "sin", "cos": "cos", "arctan": "atan", "arccot": "acot", "sinh": "sinh", "cosh": "cosh",
    "tanh": "tanh", "exp": "exp", "abs": "fabs", "floor": "floor", "ceil": "ceil", "sgn": "sign",
}  # fmt: skip


def real_value(n: Node, env: dict[str, Any], mp: Any) -> Any:
    """The real value of an expression tree at a point (names -> mpf), read as a real function: a
    square root of a negative, a logarithm of a non-positive number, a division by zero, arcsin
    outside [-1, 1] are undefined (_Undefined); odd roots of negatives are real."""
    if isinstance(n, Num):
        return mp.mpf(n.value.numerator) / n.value.denominator
    if isinstance(n, Sym | Sub):
        key = n.name if isinstance(n, Sym) else repr(n)
        if key not in env:  # a_{n+1}: a name with a variable index has no value of its own here
            raise _NoRealReading(key)
        return env[key]
    if isinstance(n, Const):
        if n.name == "pi":
            return +mp.pi
        if n.name == "e":
            return +mp.e
        raise _NoRealReading(n.name)
    if isinstance(n, Add):
        return mp.fsum(real_value(t, env, mp) for t in n.terms)
    if isinstance(n, Neg):
        return -real_value(n.arg, env, mp)
    if isinstance(n, Mul):
        return mp.fprod(real_value(f, env, mp) for f in n.factors)
    if isinstance(n, Div):
        den = real_value(n.den, env, mp)
        if den == 0:
            raise _Undefined("division by 0")
        return real_value(n.num, env, mp) / den
    if isinstance(n, Pow | Root):
        if isinstance(n, Pow):
            base, exp_node = real_value(n.base, env, mp), n.exp
            q, _ = constant_value(exp_node)
            if q is None:
                exp = real_value(exp_node, env, mp)
                if base > 0:
                    return mp.power(base, exp)
                if base == 0 and exp > 0:
                    return mp.mpf(0)
                raise _Undefined("power of a non-positive number")
        else:
            base = real_value(n.arg, env, mp)
            k, _ = (Fraction(2), None) if n.index is None else constant_value(n.index)
            if k is None or k == 0:
                raise _NoRealReading("root index")
            q = 1 / k
        if base == 0 and q < 0:
            raise _Undefined("0 to a negative power")
        if base < 0 and q.denominator % 2 == 0:
            raise _Undefined("even root of a negative number")
        return real_power(base, mp.mpf(q.numerator) / q.denominator, mp, exact_exp=q)
    if isinstance(n, Func):
        return _real_function(n, [real_value(a, env, mp) for a in n.args], env, mp)
    raise _NoRealReading(type(n).__name__)


def _real_function(n: Node, args: list[Any], env: dict[str, Any], mp: Any) -> Any:
    assert isinstance(n, Func)
    if not args:
        raise _NoRealReading(n.name)
    name, x = n.name, args[0]
    if name in ("ln", "log"):
        base = mp.e if name == "ln" and n.base is None else mp.mpf(10)
        if n.base is not None:
            base = real_value(n.base, env, mp)
        if x <= 0 or base <= 0 or base == 1:
            raise _Undefined("logarithm")
        return mp.log(x) / mp.log(base)
    if name in ("tan", "sec") and mp.cos(x) == 0 or name in ("cot", "csc") and mp.sin(x) == 0:
        raise _Undefined(name)
    if name in ("tan", "cot", "sec", "csc"):
        return {"tan": mp.tan, "cot": mp.cot, "sec": mp.sec, "csc": mp.csc}[name](x)
    if name in ("arcsin", "arccos"):
        if abs(x) > 1:
            raise _Undefined(name)
        return mp.asin(x) if name == "arcsin" else mp.acos(x)
    if name in ("max", "min"):
        return max(args) if name == "max" else min(args)
    if name in _REAL_FUNCS and len(args) == 1:
        return getattr(mp, _REAL_FUNCS[name])(x)
    raise _NoRealReading(name)


def _real_points(names: list[str], k: int) -> list[dict[str, Any]]:
    """k points fixed by the names; the signs of the first three variables run through every
    pattern in the first 8 points (all negative first)."""
    import mpmath

    out = []
    for j in range(k):
        env = {}
        for i, name in enumerate(names):
            h = zlib.crc32(f"{name}~{j}".encode())
            value = mpmath.mpf(h % 997 + 300) / (h // 997 % 89 + 211)
            negative = not (j >> i) & 1 if i < 3 else bool(h & 1)
            env[name] = -value if negative else value
        out.append(env)
    return out


def real_counterexample(gold: Node, pred: Node, *, points: int = 8) -> bool:
    """True when a point of the real line (or space) has a real gold value the prediction does not
    share: the prediction is undefined there or has another value (|x| against x, ln(x^2) against
    2 ln x). Proofs that assumed positive variables are accepted only without one."""
    import mpmath

    names = sorted(_real_names(gold) | _real_names(pred))
    if not names:
        return False
    with mpmath.workdps(50):
        for env in _real_points(names, points):
            try:
                g = real_value(gold, env, mpmath)
            except (_Undefined, ZeroDivisionError, ValueError):
                continue
            except _NoRealReading:
                return False
            try:
                p = real_value(pred, env, mpmath)
            except (_Undefined, ZeroDivisionError, ValueError):
                return True
            except _NoRealReading:
                return False
            if not (mpmath.isfinite(g) and mpmath.isfinite(p)):
                continue
            if abs(g - p) > max(abs(g), abs(p), 1) * mpmath.mpf(10) ** -30:
                return True
    return False


def _real_names(n: Any) -> set[str]:
    out: set[str] = set()
    stack: list[Any] = [n]
    while stack:
        x = stack.pop()
        if isinstance(x, Sym):
            out.add(x.name)
        elif isinstance(x, Sub):
            if not _real_names(x.index):
                out.add(repr(x))
        elif isinstance(x, Node):
            stack.extend(x.children())
        elif isinstance(x, tuple):
            stack.extend(x)
    return out


class SympyValues(FastValues):
    """Leaf comparisons of the sympy stage: the fast stage first, sympy for what it left open."""

    def values(self, a: Node, b: Node) -> Tri:
        fast = super().values(a, b)
        if fast is not None:
            return fast
        try:
            return sympy_equal(to_sympy(a), to_sympy(b), trees=(a, b))
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
