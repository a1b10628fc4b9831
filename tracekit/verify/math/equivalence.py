"""Is a predicted answer equivalent to the gold one? One comparison, two stages, one set of policies.

Both answers are parsed into trees (`latex.py`) that keep every grouping. `Comparer` walks the two
trees and applies the policies of docs/verification.md (equations, assignments vs tuples, units,
percent, empty set, intervals vs inequalities, decimals); at the leaves it asks a value comparer:

- the fast stage (`FastValues`, in process): canonical forms prove equality, exact rational points
  prove a difference (`canonical.py`); what it cannot prove is None;
- the sympy stage (`symbolic.SympyValues`, in the killable worker): the same walk, with sympy for the
  leaves the fast stage left open. What sympy cannot decide stays None: the verdict is then
  `incorrect` with detail `undecided` (or the judge's, when one is enabled).

Example:
    >>> from tracekit.verify.math.normalize import clean_answer
    >>> compare(clean_answer(r"\\frac{6}{2+1}"), clean_answer(r"\\frac{6}{2}+1"), EquivalenceSettings())
    Outcome(equal=False, detail='exact')
    >>> compare(clean_answer("x = 2, y = -1"), clean_answer("(2, -1)"), EquivalenceSettings())
    Outcome(equal=True, detail='exact')
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from tracekit.verify.math.canonical import compare_values, constant_value, proportional, symbols_of
from tracekit.verify.math.latex import (
    Add,
    Const,
    Div,
    EmptySet,
    Func,
    LatexError,
    Matrix,
    Mul,
    Neg,
    Node,
    Num,
    Percent,
    PlusMinus,
    Pow,
    Quantity,
    Reals,
    Rel,
    Seq,
    SetLit,
    SetOp,
    Sub,
    Sym,
    Text,
    Tup,
    is_decimal_comma,
    parse_answer,
)
from tracekit.verify.math.normalize import CleanAnswer
from tracekit.verify.math.units import parse_unit, si_scale

Tri = bool | None  # True: equal, False: different, None: not decided


@dataclass(frozen=True, slots=True)
class EquivalenceSettings:
    """The comparison policies that have a switch (docs/verification.md)."""

    decimal_sig_digits: int = 6
    percent_as_fraction: bool = True
    allow_set_relation_comp: bool = True
    strict: bool = True


@dataclass(frozen=True, slots=True)
class Outcome:
    """`equal` None: not decided (detail `undecided`); details: exact, sympy, not_comparable, undecided."""

    equal: bool | None
    detail: str


class Unparseable(Exception):
    """An answer this verifier cannot read; the message starts with `gold:` or `pred:`."""


# ---------------------------------------------------------------------------------- three-valued logic


def _any(results: Iterable[Tri]) -> Tri:
    undecided = False
    for r in results:
        if r is True:
            return True
        if r is None:
            undecided = True
    return None if undecided else False


def _all(results: Iterable[Tri]) -> Tri:
    undecided = False
    for r in results:
        if r is False:
            return False
        if r is None:
            undecided = True
    return None if undecided else True


# ----------------------------------------------------------------------------------- value comparers


class FastValues:
    """Leaf comparisons of the fast stage: exact canonical forms and exact random points."""

    def values(self, a: Node, b: Node) -> Tri:
        return compare_values(a, b)

    def proportional(self, a: Node, b: Node) -> Tri:
        return proportional(a, b)

    def constant(self, a: Node) -> tuple[Fraction | None, Any]:
        return constant_value(a)

    def relation_sets_equal(self, a: Node, b: Node) -> Tri:
        return None


# ------------------------------------------------------------------------------------- tree helpers


def _inf_sign(n: Node) -> int:
    if isinstance(n, Const) and n.name == "inf":
        return 1
    if isinstance(n, Neg):
        return -_inf_sign(n.arg)
    return 0


def _has(n: Any, kind: type) -> bool:
    if isinstance(n, kind):
        return True
    if isinstance(n, Node):
        return any(_has(v, kind) for v in n.children())
    if isinstance(n, tuple):
        return any(_has(x, kind) for x in n)
    return False


def _expand_pm(n: Any) -> list[Any]:
    """Both readings of every \\pm (at most 3 of them)."""
    if isinstance(n, PlusMinus):
        a = n.a
        plus: Node = n.b if a is None else Add((a, n.b))
        minus: Node = Neg(n.b) if a is None else Add((a, Neg(n.b)))
        first, second = (minus, plus) if n.minus_first else (plus, minus)
        return _expand_pm(first) + _expand_pm(second)
    if isinstance(n, Node) and not isinstance(n, Num | Sym | Const | Text):
        options: list[list[Any]] = [[]]
        for v in n.children():
            alts = _expand_pm(v)
            options = [o + [x] for o in options for x in alts]
            if len(options) > 8:
                raise LatexError("too many \\pm")
        return [n.rebuilt(o) for o in options]
    if isinstance(n, tuple):
        options2: list[tuple[Any, ...]] = [()]
        for v in n:
            alts = _expand_pm(v)
            options2 = [o + (x,) for o in options2 for x in alts]
            if len(options2) > 8:
                raise LatexError("too many \\pm")
        return list(options2)
    return [n]


def is_name(n: Node) -> bool:
    """A left-hand side that only names the answer: x, a_3, f(x), xy, AB, |AB|, x'."""
    if isinstance(n, Sym):
        return True
    if isinstance(n, Sub):
        return isinstance(n.base, Sym)
    if isinstance(n, Mul):
        return isinstance(n.factors[0], Sym | Sub) and all(
            isinstance(f, Sym | Sub | Num)
            or (isinstance(f, Seq) and all(isinstance(x, Sym | Num) for x in f.items))
            for f in n.factors[1:]
        )
    if isinstance(n, Func):  # |AB|, \tan A, \sin x: a function of names names a quantity
        return all(is_name(a) for a in n.args) and n.base is None
    if isinstance(n, Tup):  # (p, q) = (3, 2); A:B = 7:32
        return all(is_name(x) for x in n.items)
    if isinstance(n, Div):  # \frac{NO}{BO} = ...
        return is_name(n.num) and is_name(n.den)
    return False


def _name_key(n: Node) -> tuple[str, Fraction, str]:
    """Sort key of a name: base letters, then a numeric subscript (x_2 before x_10)."""
    if isinstance(n, Sub) and isinstance(n.base, Sym):
        idx = n.index.value if isinstance(n.index, Num) else Fraction(0)
        return (n.base.name, idx, repr(n.index))
    return (repr(n), Fraction(0), "")


def _is_eq(n: Node) -> bool:
    return isinstance(n, Rel) and n.ops == ("=",)


def _is_assignment_list(n: Node) -> bool:
    return (
        isinstance(n, Seq) and len(n.items) > 1 and all(_is_eq(x) and is_name(x.parts[0]) for x in n.items)  # type: ignore[attr-defined]
    )


_INEQ = ("<", ">", "<=", ">=")


def _is_inequality(n: Node) -> bool:
    if isinstance(n, Rel):
        return all(o in _INEQ for o in n.ops)
    if isinstance(n, Seq) and n.sep in ("or", "and", ","):
        return all(_is_inequality(x) for x in n.items)
    return False


def _is_interval(n: Node) -> bool:
    return isinstance(n, Tup) and len(n.items) == 2 and n.open in "([" and n.close in ")]"


def _set_like(n: Node) -> bool:
    return isinstance(n, SetOp | Reals) or (isinstance(n, Rel) and n.ops == ("in",))


@dataclass(frozen=True, slots=True)
class _Interval:
    lo: Node
    hi: Node
    lo_closed: bool
    hi_closed: bool


_NEG_INF = Neg(Const("inf"))
_POS_INF = Const("inf")


def _flip(op: str) -> str:
    return {"<": ">", ">": "<", "<=": ">=", ">=": "<="}[op]


def _inequality_interval(rel: Rel) -> tuple[Node, _Interval] | None:
    """(variable, interval) of `a < x <= b`, `x > 5`, `5 <= x`: one plain variable, constant bounds."""
    var_idx = [k for k, p in enumerate(rel.parts) if symbols_of(p)]
    if len(var_idx) != 1 or not is_name(rel.parts[var_idx[0]]):
        return None
    k = var_idx[0]
    var = rel.parts[k]
    lo: Node = _NEG_INF
    hi: Node = _POS_INF
    lo_c = hi_c = False
    # bounds: the relation to the left of x (read as "bound op x") and to its right ("x op bound")
    sides: list[tuple[str, Node]] = []
    if k > 0:
        sides.append((_flip(rel.ops[k - 1]), rel.parts[k - 1]))
    if k < len(rel.ops):
        sides.append((rel.ops[k], rel.parts[k + 1]))
    if len(rel.parts) > 3 or len(sides) != len(rel.ops):
        return None
    for op, bound in sides:  # x op bound
        if op in ("<", "<="):
            if hi is not _POS_INF:
                return None
            hi, hi_c = bound, op == "<="
        else:
            if lo is not _NEG_INF:
                return None
            lo, lo_c = bound, op == ">="
    return var, _Interval(lo, hi, lo_c, hi_c)


def variable_names(n: Any) -> set[str]:
    """The variables of a tree, subscripted names included (a_1 is a variable of its own)."""
    out: set[str] = set()
    for x in iter_nodes(n):
        if isinstance(x, Sym):
            out.add(x.name)
        elif isinstance(x, Sub) and isinstance(x.base, Sym):
            out.add(repr(x))
    return out


def _rename(n: Any, mapping: dict[str, str]) -> Any:
    if isinstance(n, Sym):
        return Sym(mapping.get(n.name, n.name))
    if isinstance(n, Node) and not isinstance(n, Num | Const | Text):
        return n.rebuilt(_rename(v, mapping) for v in n.children())
    if isinstance(n, tuple):
        return tuple(_rename(x, mapping) for x in n)
    return n


# ------------------------------------------------------------------------------------------ decimals


@dataclass(frozen=True, slots=True)
class _Decimal:
    value: Fraction
    sig: int  # significant digits written
    ulp: Fraction  # one unit in the last written place


def _sig_digits(text: str) -> int:
    mant = re.split(r"[eE]", text)[0]
    digits = mant.replace(".", "").lstrip("+-").lstrip("0")
    return len(digits) if digits else 1


def as_decimal(n: Node) -> _Decimal | None:
    """A number written as a decimal (0.333, -1.5, 3.83 \\times 10^{35}, 1.5e-4): an approximation."""
    if isinstance(n, Num) and n.decimals is not None:
        ulp = Fraction(1, 10**n.decimals) if n.decimals >= 0 else Fraction(10 ** (-n.decimals))
        return _Decimal(n.value, _sig_digits(n.text), ulp)
    if isinstance(n, Neg):
        d = as_decimal(n.arg)
        return None if d is None else _Decimal(-d.value, d.sig, d.ulp)
    if isinstance(n, Mul) and len(n.factors) == 2:
        m, p = n.factors
        if (
            isinstance(m, Num)
            and m.decimals is not None
            and isinstance(p, Pow)
            and p.base == Num("10", Fraction(10))
            and isinstance(p.exp, Num | Neg)
        ):
            e = (
                p.exp.value
                if isinstance(p.exp, Num)
                else (-p.exp.arg.value if isinstance(p.exp.arg, Num) else None)
            )
            if e is not None and e.denominator == 1 and abs(e) <= 400:
                scale = Fraction(10) ** int(e)
                d = as_decimal(m)
                assert d is not None
                return _Decimal(d.value * scale, d.sig, d.ulp * scale)
    return None


def _terminates(q: Fraction) -> bool:
    d = q.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


# ------------------------------------------------------------------------------------------ comparer


class Comparer:
    """Walks two answer trees; `values` decides the leaves. Flags what kind of answer it was."""

    def __init__(self, settings: EquivalenceSettings, values: FastValues) -> None:
        self.s = settings
        self.v = values
        self.not_comparable = False

    # -- entry
    def same(self, g: Node, p: Node) -> Tri:
        g, p = self._prepare(g), self._prepare(p)
        if isinstance(g, Text) or isinstance(p, Text):
            if isinstance(g, Text) and isinstance(p, Text):
                return _words(g.words) == _words(p.words)
            self.not_comparable = True
            return False
        if _has(g, PlusMinus) or _has(p, PlusMinus):
            return self._pm(g, p)
        if isinstance(g, Percent) or isinstance(p, Percent):
            return _any(self.same(a, b) for a in self._percent(g) for b in self._percent(p))
        if isinstance(g, Quantity) or isinstance(p, Quantity):
            g, p = _letter_unit(g, p), _letter_unit(p, g)
            return self._quantities(g, p)
        g_empty, p_empty = _is_empty(g), _is_empty(p)
        if g_empty or p_empty:
            return g_empty and p_empty
        if _is_assignment_list(g) or _is_assignment_list(p):
            return self._assignments(g, p)
        if _is_eq(g) or _is_eq(p):
            return self._equations(g, p)
        g_ineq, p_ineq = _is_inequality(g), _is_inequality(p)
        if g_ineq or p_ineq or _set_like(g) or _set_like(p):
            return self._sets(g, p, g_ineq, p_ineq)
        if _has(g, Matrix) or _has(p, Matrix):
            return self._matrices(g, p)
        if isinstance(g, Rel) or isinstance(p, Rel):
            return self._relations(g, p)
        if _is_collection(g) or _is_collection(p):
            return self._collections(g, p)
        gn, pn = _numeral(g), _numeral(p)
        if (gn or pn) and (gn or _plain_integer(g)) and (pn or _plain_integer(p)):
            return _numerals_same(gn or _plain_integer(g), pn or _plain_integer(p))
        return self.values(g, p)

    def _prepare(self, n: Node) -> Node:
        """x = 5+5+1 = 11 -> x = 11; 1/3 \\approx 0.33 -> 1/3; x \\approx 0.33 -> x = 0.33."""
        if isinstance(n, Seq) and len(n.items) == 1:
            n = n.items[0]
        n = _grouped(n)
        if isinstance(n, Rel) and "approx" in n.ops:
            k = n.ops.index("approx")
            left = n.parts[: k + 1]
            if len(left) == 1 and is_name(left[0]):
                n = Rel(("=",), (left[0], n.parts[k + 1]))
            else:
                n = left[0] if len(left) == 1 else Rel(n.ops[:k], left)
        if isinstance(n, Rel) and len(n.ops) > 1 and all(o == "=" for o in n.ops):
            first = n.parts[0]
            n = Rel(("=",), (first, n.parts[-1])) if variable_names(first) else n.parts[-1]
        if (
            isinstance(n, Rel)
            and n.ops == ("=",)
            and not variable_names(n.parts[0])
            and not variable_names(n.parts[1])
        ):
            n = n.parts[1]  # 35 + 70 = 105: the result
        return n

    # -- values
    def values(self, a: Node, b: Node) -> Tri:
        """Two expressions, with the decimal policy."""
        if not self.s.strict:
            b = self._renamed(a, b)
        ia, ib = _inf_sign(a), _inf_sign(b)
        if ia or ib:
            return ia == ib
        da, db = as_decimal(a), as_decimal(b)
        if da is not None and db is not None:
            return da.value == db.value
        if da is None and db is None:
            return self.v.values(a, b)
        d, x = (da, b) if da is not None else (db, a)
        assert d is not None
        exact = self.v.values(a, b)
        if exact is True or symbols_of(x):
            return exact
        q, approx = self.v.constant(x)
        if q is not None:
            if _terminates(q):
                return q == d.value  # a terminating value needs the exact decimal
            return d.sig >= self.s.decimal_sig_digits and abs(d.value - q) <= d.ulp
        if approx is None:
            return exact
        import mpmath

        if isinstance(approx, mpmath.mpc) and abs(approx.imag) > 1e-30:
            return False
        with mpmath.workdps(50):
            diff = abs(mpmath.mpf(d.value.numerator) / d.value.denominator - mpmath.re(approx))
            ulp = mpmath.mpf(d.ulp.numerator) / d.ulp.denominator
            if abs(diff - ulp) < ulp * mpmath.mpf(10) ** -20:
                return None  # on the boundary at 50 digits: let sympy look
            return d.sig >= self.s.decimal_sig_digits and diff <= ulp

    def _renamed(self, a: Node, b: Node) -> Node:
        sa, sb = sorted(symbols_of(a)), sorted(symbols_of(b))
        if len(sa) == len(sb) and sa != sb:
            return _rename(b, dict(zip(sb, sa, strict=True)))
        return b

    # -- policies
    def _pm(self, g: Node, p: Node) -> Tri:
        ge = _flatten(_expand_pm(g))
        pe = _flatten(_expand_pm(p))
        if len(ge) == 1 and len(pe) == 1:
            return self.same(ge[0], pe[0])
        return self._unordered(ge, pe)

    def _percent(self, n: Node) -> list[Node]:
        if not isinstance(n, Percent):
            return [n]
        out = [n.value]
        if self.s.percent_as_fraction:
            out.append(Div(n.value, Num("100", Fraction(100))))
        return out

    def _quantities(self, g: Node, p: Node) -> Tri:
        if not (isinstance(g, Quantity) and isinstance(p, Quantity)):
            q, other = (g, p) if isinstance(g, Quantity) else (p, g)
            assert isinstance(q, Quantity)
            if _is_collection(other) or isinstance(other, Rel):
                return False
            if q.unit.factors == (("°", 1),):  # 30^\circ is also pi/6
                rad = Mul((q.value, Div(Const("pi"), Num("180", Fraction(180)))))
                return _any(self.same(v, other) if q is g else self.same(other, v) for v in (q.value, rad))
            return self.same(q.value, other) if q is g else self.same(other, q.value)
        gu, pu = g.unit, p.unit
        if gu.is_placeholder or pu.is_placeholder or gu.factors == pu.factors:
            return self.same(g.value, p.value)
        gs, ps = si_scale(gu), si_scale(pu)
        if gs is None or ps is None or gs[0] != ps[0]:
            return False  # another unit: another answer
        return self.values(_scaled(g.value, gs[1], gs[2]), _scaled(p.value, ps[1], ps[2]))

    def _equations(self, g: Node, p: Node) -> Tri:
        if _is_eq(g) and _is_eq(p):
            assert isinstance(g, Rel) and isinstance(p, Rel)
            gl, gr = g.parts
            pl, pr = p.parts
            if is_name(gl) and is_name(pl) and (gl == pl or not self.s.strict):
                r = self.same(gr, pr)
                if r is not False or gl == pl:
                    return r
            if variable_names(g) != variable_names(p):
                return False  # never equal when the variables differ
            if _is_collection(gr) or _is_collection(pr):
                return False
            return self.v.proportional(Add((gl, Neg(gr))), Add((pl, Neg(pr))))
        eq, other = (g, p) if _is_eq(g) else (p, g)
        assert isinstance(eq, Rel)
        if not is_name(eq.parts[0]):
            return False
        return self.same(eq.parts[1], other) if eq is g else self.same(other, eq.parts[1])

    def _assignments(self, g: Node, p: Node) -> Tri:
        ga, pa = _is_assignment_list(g), _is_assignment_list(p)
        gm = _assignment_pairs(g) if ga else None
        pm = _assignment_pairs(p) if pa else None
        if ga and pa:
            if gm is None or pm is None:  # x = 1, x = 2: a list of values
                return self._collections(_values_of(g), _values_of(p))
            gd = {repr(n): v for n, v in gm}
            pd = {repr(n): v for n, v in pm}
            if set(gd) != set(pd):
                if self.s.strict or len(gd) != len(pd):
                    return False
                return self._ordered(_in_name_order(gm), _in_name_order(pm))
            return _all(self.same(gd[k], pd[k]) for k in gd)
        assign, other = (g, p) if ga else (p, g)
        pairs = gm if ga else pm
        if pairs is None:
            vals = _values_of(assign)
            return self._collections(vals, other) if assign is g else self._collections(other, vals)
        if not isinstance(other, Tup | Seq) or (isinstance(other, Tup) and other.open == ":"):
            return False
        items = list(other.items)
        if isinstance(other, Seq):  # a bare list has no order
            return self._unordered([v for _, v in pairs], items)
        ordered = _in_name_order(pairs)  # x = 2, y = -1 is the tuple (2, -1)
        return self._ordered(ordered, items) if assign is g else self._ordered(items, ordered)

    def _relations(self, g: Node, p: Node) -> Tri:
        if not (isinstance(g, Rel) and isinstance(p, Rel)):
            return False
        if g.ops == p.ops and len(g.parts) == len(p.parts):
            r = _all(self.values(a, b) for a, b in zip(g.parts, p.parts, strict=True))
            if r is not False:
                return r
        return self.v.relation_sets_equal(g, p)

    def _sets(self, g: Node, p: Node, g_ineq: bool, p_ineq: bool) -> Tri:
        if p_ineq and not g_ineq and not self.s.allow_set_relation_comp:
            return False  # an inequality answer for an interval gold is off
        if (g_ineq or p_ineq) and not (g_ineq and p_ineq):
            other = p if g_ineq else g
            if not (_is_interval(other) or _set_like(other)):
                return False
        gi, pi_ = self._intervals(g), self._intervals(p)
        if gi is not None and pi_ is not None:
            gvar, givs = gi
            pvar, pivs = pi_
            if gvar is not None and pvar is not None and gvar != pvar:
                if self.s.strict and symbols_of(gvar) != symbols_of(pvar):
                    return False  # x < 3 is not y < 3
                return self.v.relation_sets_equal(g, p)  # 1 <= |z| <= 2 against z in [...]
            return self._match(givs, pivs, self._interval_same)
        return self.v.relation_sets_equal(g, p)

    def _intervals(self, n: Node) -> tuple[Node | None, list[_Interval]] | None:
        """(variable or None, intervals of the union) of a set-like answer, else None."""
        if isinstance(n, Reals):
            return None, [_Interval(_NEG_INF, _POS_INF, False, False)]
        if _is_interval(n):
            assert isinstance(n, Tup)
            return None, [_Interval(n.items[0], n.items[1], n.open == "[", n.close == "]")]
        if isinstance(n, SetOp) and n.op == "cup":
            a, b = self._intervals(n.a), self._intervals(n.b)
            if a is None or b is None:
                return None
            return a[0] or b[0], a[1] + b[1]
        if isinstance(n, SetLit) and all(not _is_collection(x) for x in n.items):
            return None, [_Interval(x, x, True, True) for x in n.items]
        if isinstance(n, Rel) and n.ops == ("in",):
            inner = self._intervals(n.parts[1])
            if inner is None or not is_name(n.parts[0]):
                return None
            return n.parts[0], inner[1]
        if isinstance(n, Rel) and all(o in _INEQ for o in n.ops):
            found = _inequality_interval(n)
            return None if found is None else (found[0], [found[1]])
        if isinstance(n, Seq) and _is_inequality(n):
            parts = [self._intervals(x) for x in n.items]
            if any(x is None for x in parts):
                return None
            names = {repr(x[0]) for x in parts if x is not None}
            if len(names) != 1 or parts[0] is None:
                return None
            var = parts[0][0]
            ivs = [iv for x in parts if x is not None for iv in x[1]]
            if n.sep == "and":
                return self._intersect(var, ivs)
            return var, ivs
        return None

    def _intersect(
        self, var: Node | None, ivs: list[_Interval]
    ) -> tuple[Node | None, list[_Interval]] | None:
        """x > 1 and x < 3: one lower and one upper bound."""
        if len(ivs) != 2:
            return None
        a, b = ivs
        if _inf_sign(a.hi) == 1 and _inf_sign(b.lo) == -1:
            return var, [_Interval(a.lo, b.hi, a.lo_closed, b.hi_closed)]
        if _inf_sign(b.hi) == 1 and _inf_sign(a.lo) == -1:
            return var, [_Interval(b.lo, a.hi, b.lo_closed, a.hi_closed)]
        return None

    def _interval_same(self, a: _Interval, b: _Interval) -> Tri:
        if a.lo_closed != b.lo_closed or a.hi_closed != b.hi_closed:
            return False
        return _all((self._endpoint(a.lo, b.lo), self._endpoint(a.hi, b.hi)))

    def _endpoint(self, a: Node, b: Node) -> Tri:
        return self.values(a, b)

    def _matrices(self, g: Node, p: Node) -> Tri:
        gm, pm = _matrix_value(g), _matrix_value(p)
        if gm is None or pm is None:
            return False
        if len(gm.rows) != len(pm.rows) or len(gm.rows[0]) != len(pm.rows[0]):
            return False
        return _all(
            self.same(a, b)
            for ra, rb in zip(gm.rows, pm.rows, strict=True)
            for a, b in zip(ra, rb, strict=True)
        )

    def _collections(self, g: Node, p: Node) -> Tri:
        g, p = _grouped(g), _grouped(p)
        gi, pi_ = _items(g), _items(p)
        if gi is not None and pi_ is not None:
            g_named, p_named = _named_items(gi), _named_items(pi_)
            if g_named and not p_named:  # (x, y) = (5, 8), (8, 5) against (5, 8), (8, 5)
                gi, g = _stripped(gi), _rebuilt(g, _stripped(gi))
            elif p_named and not g_named:
                pi_, p = _stripped(pi_), _rebuilt(p, _stripped(pi_))
        if gi is None or pi_ is None:
            # one value against a set of one value ({5} vs 5) or the same value boxed twice (6, 6)
            items = gi if gi is not None else pi_
            assert items is not None
            if (
                isinstance(g, SetLit | Seq)
                and gi is not None
                or isinstance(p, SetLit | Seq)
                and pi_ is not None
            ):
                distinct = self._distinct(items)
                if len(distinct) == 1:
                    return self.same(distinct[0], p) if gi is not None else self.same(g, distinct[0])
            return False
        if isinstance(g, Tup) and isinstance(p, Tup):
            if len(gi) != len(pi_):
                return False
            if (g.open == ":") != (p.open == ":"):
                return False
            if len(gi) == 2 and (g.open, g.close) != (p.open, p.close):
                return False  # [a, b) is not (a, b)
            return self._ordered(gi, pi_)
        if isinstance(g, Tup) and isinstance(p, SetLit) or isinstance(g, SetLit) and isinstance(p, Tup):
            tup, st = (g, p) if isinstance(g, Tup) else (p, g)
            assert isinstance(tup, Tup) and isinstance(st, SetLit)
            return self._tuple_vs_set(tup, st, tup is g)
        if isinstance(g, Tup) and isinstance(p, Seq):
            return self._ordered(gi, pi_)
        return self._unordered(gi, pi_)

    def _tuple_vs_set(self, tup: Tup, st: SetLit, tup_is_gold: bool) -> Tri:
        """(1, 3) vs {1, 3}: the pair read in increasing order (the public suites' rule)."""
        if len(tup.items) != len(st.items) or tup.open == ":":
            return False
        values = [constant_value(x)[0] for x in st.items]
        if all(v is not None for v in values):
            ordered = [x for _, x in sorted(zip(values, st.items, strict=True), key=lambda t: t[0])]  # type: ignore[arg-type, return-value]
            if tup_is_gold:
                return self._ordered(list(tup.items), ordered)
            return self._ordered(ordered, list(tup.items))
        return self._unordered(list(tup.items), list(st.items))

    def _ordered(self, a: list[Node], b: list[Node]) -> Tri:
        if len(a) != len(b):
            return False
        return _all(self.same(x, y) for x, y in zip(a, b, strict=True))

    def _unordered(self, a: list[Node], b: list[Node]) -> Tri:
        if len(a) != len(b):  # as sets: a repeated answer counts once
            a, b = self._distinct(a), self._distinct(b)
        return self._match(a, b, self.same)

    def _distinct(self, items: list[Node]) -> list[Node]:
        out: list[Node] = []
        for x in items:
            if not any(self.same(x, y) is True for y in out):
                out.append(x)
        return out

    def _match(self, a: list[Any], b: list[Any], eq: Callable[[Any, Any], Tri]) -> Tri:
        """A perfect matching of a onto b under eq (multisets); None if it depends on undecided pairs."""
        if len(a) != len(b):
            return False
        table = [[eq(x, y) for y in b] for x in a]
        if any(all(r is False for r in row) for row in table):
            return False
        if any(all(table[i][j] is False for i in range(len(a))) for j in range(len(b))):
            return False
        if _perfect(table, True):
            return True
        return None if _perfect(table, None) else False


def _perfect(table: list[list[Tri]], accept: Tri) -> bool:
    """Is there a perfect matching using cells that are True (accept=True) or not False (accept=None)?"""
    n = len(table)
    match_of: dict[int, int] = {}

    def ok(v: Tri) -> bool:
        return v is True or (accept is None and v is None)

    def augment(i: int, seen: set[int]) -> bool:
        for j in range(n):
            if ok(table[i][j]) and j not in seen:
                seen.add(j)
                if j not in match_of or augment(match_of[j], seen):
                    match_of[j] = i
                    return True
        return False

    return all(augment(i, set()) for i in range(n))


def _matrix_value(n: Node) -> Matrix | None:
    """A matrix expression worked out entry by entry (sums, products, scalar multiples), else None."""
    if isinstance(n, Matrix):
        return n
    if isinstance(n, Neg):
        m = _matrix_value(n.arg)
        return None if m is None else Matrix(tuple(tuple(Neg(x) for x in r) for r in m.rows))
    if isinstance(n, Add):
        ms = [_matrix_value(t) for t in n.terms]
        if any(m is None for m in ms) or len({(len(m.rows), len(m.rows[0])) for m in ms if m}) != 1:
            return None
        first = ms[0]
        assert first is not None
        return Matrix(
            tuple(
                tuple(Add(tuple(m.rows[i][j] for m in ms if m)) for j in range(len(first.rows[0])))
                for i in range(len(first.rows))
            )
        )
    if isinstance(n, Mul):
        acc: Matrix | None = None
        scalars: list[Node] = []
        for f in n.factors:
            if _has(f, Matrix):
                m = _matrix_value(f)
                if m is None:
                    return None
                if acc is None:
                    acc = m
                else:
                    if len(acc.rows[0]) != len(m.rows):
                        return None
                    acc = Matrix(
                        tuple(
                            tuple(
                                Add(tuple(Mul((acc.rows[i][k], m.rows[k][j])) for k in range(len(m.rows))))
                                for j in range(len(m.rows[0]))
                            )
                            for i in range(len(acc.rows))
                        )
                    )
            else:
                scalars.append(f)
        if acc is None:
            return None
        if scalars:
            acc = Matrix(tuple(tuple(Mul((*scalars, x)) for x in r) for r in acc.rows))
        return acc
    return None


def _assignment_pairs(n: Node) -> list[tuple[Node, Node]] | None:
    """(name, value) of `x = 2, y = -1`; None when a name repeats (`x = 1, x = 2` lists values)."""
    assert isinstance(n, Seq)
    pairs = [(x.parts[0], x.parts[1]) for x in n.items if isinstance(x, Rel)]
    if len({repr(name) for name, _ in pairs}) != len(pairs):
        return None
    return pairs


def _in_name_order(pairs: list[tuple[Node, Node]]) -> list[Node]:
    return [v for _, v in sorted(pairs, key=lambda t: _name_key(t[0]))]


def _named_items(items: list[Node]) -> bool:
    return any(_is_eq(x) and is_name(x.parts[0]) for x in items)  # type: ignore[attr-defined]


def _stripped(items: list[Node]) -> list[Node]:
    return [x.parts[1] if _is_eq(x) and is_name(x.parts[0]) else x for x in items]  # type: ignore[attr-defined]


def _rebuilt(n: Node, items: list[Node]) -> Node:
    assert isinstance(n, Seq | Tup | SetLit)
    return dataclasses.replace(n, items=tuple(items))


def _grouped(n: Node) -> Node:
    """p = 5, q = 2 and p = 7, q = 2: a list of two assignments (a name repeats after each group)."""
    if not isinstance(n, Seq) or not all(_is_eq(x) and is_name(x.parts[0]) for x in n.items):  # type: ignore[attr-defined]
        return n
    names = [repr(x.parts[0]) for x in n.items]  # type: ignore[attr-defined]
    k = len(set(names))
    if k < 2 or len(names) % k or len(names) == k:
        return n
    groups = [n.items[i : i + k] for i in range(0, len(names), k)]
    if any(sorted(names[i : i + k]) != sorted(names[:k]) for i in range(0, len(names), k)):
        return n
    return Seq(tuple(Seq(tuple(g)) for g in groups), n.sep)


def _values_of(n: Node) -> Node:
    assert isinstance(n, Seq)
    return Seq(tuple(x.parts[1] for x in n.items), n.sep)  # type: ignore[attr-defined]


def _letter_unit(n: Node, other: Node) -> Node:
    """`1000 m` against `1 km`: a number times a one-letter unit symbol (m, g, s, L, N, ...) is a
    quantity when the other answer is a quantity with an SI unit (alone, `5 m` is five times m)."""
    if isinstance(n, Quantity) or not isinstance(other, Quantity) or si_scale(other.unit) is None:
        return n
    if not (isinstance(n, Mul) and len(n.factors) == 2 and isinstance(n.factors[1], Sym)):
        return n
    value, letter = n.factors
    assert isinstance(letter, Sym)
    unit = parse_unit(letter.name) if len(letter.name) == 1 else None
    if unit is None or si_scale(unit) is None or symbols_of(value):
        return n
    return Quantity(value, unit)


def _scaled(value: Node, scale: Fraction, pi: int) -> Node:
    factors: list[Node] = [value, Num(str(scale), scale)]
    if pi:
        factors.append(Pow(Const("pi"), Num(str(pi), Fraction(pi))))
    return Mul(tuple(factors))


def _numeral(n: Node) -> tuple[str, int | None] | None:
    """(digits, base) of a numeral with its base written: `4210_5`, `4210_{5}` (every digit below the base)."""
    if not (isinstance(n, Sub) and isinstance(n.base, Num) and isinstance(n.index, Num)):
        return None
    digits, base = n.base.text, n.index.value
    if not digits.isdigit() or base.denominator != 1 or not 2 <= base <= 36 or n.index.decimals is not None:
        return None
    if any(int(c) >= base for c in digits):
        return None
    return digits.lstrip("0") or "0", int(base)


def _plain_integer(n: Node) -> tuple[str, int | None] | None:
    """(digits, None) of a bare non-negative integer: a numeral whose base was left out."""
    if isinstance(n, Num) and n.decimals is None and n.text.isdigit():
        return n.text.lstrip("0") or "0", None
    return None


def _numerals_same(a: tuple[str, int | None] | None, b: tuple[str, int | None] | None) -> bool:
    """The numeral policy: the same digits, and the same base where both name one (`4210_5` is `4210`;
    it is neither `555`, its value in base 10, nor `4210_6`)."""
    assert a is not None and b is not None
    if a[1] is not None and b[1] is not None and a[1] != b[1]:
        return False
    return a[0] == b[0]


def _is_empty(n: Node) -> bool:
    return isinstance(n, EmptySet) or (isinstance(n, SetLit) and not n.items)


def _is_collection(n: Node) -> bool:
    return isinstance(n, Seq | Tup | SetLit)


def _items(n: Node) -> list[Node] | None:
    return list(n.items) if isinstance(n, Seq | Tup | SetLit) else None


def _flatten(nodes: list[Node]) -> list[Node]:
    out: list[Node] = []
    for x in nodes:
        if isinstance(x, Seq):
            out.extend(_flatten(list(x.items)))
        else:
            out.append(x)
    return out


def _words(s: str) -> str:
    t = re.sub(r"[^\w\s]", " ", s.lower())
    return " ".join(
        w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in t.split()
    )


# ----------------------------------------------------------------------------------------- entry points


def parse_side(ans: CleanAnswer, *, decimal_comma: bool = False) -> Node:
    """The tree of one cleaned answer (words become Text); raises LatexError."""
    if ans.is_text:
        return Text(ans.text)
    return parse_answer(ans.text, decimal_comma=decimal_comma)


def _single_number(n: Node) -> bool:
    return isinstance(n, Num) or (isinstance(n, Neg) and isinstance(n.arg, Num))


def parse_pair(gold: CleanAnswer, pred: CleanAnswer) -> tuple[Node, Node]:
    """Both trees; raises Unparseable('gold: ...' / 'pred: ...')."""
    try:
        g = parse_side(gold)
    except (LatexError, RecursionError, ValueError) as exc:
        raise Unparseable(f"gold: {exc}") from exc
    try:
        p = parse_side(pred, decimal_comma=_single_number(g))
    except (LatexError, RecursionError, ValueError) as exc:
        raise Unparseable(f"pred: {exc}") from exc
    if _single_number(p) and not gold.is_text and is_decimal_comma(gold.text):
        g = parse_answer(gold.text, decimal_comma=True)  # gold 1,22 against 1.22
    return g, p


def compare(
    gold: CleanAnswer, pred: CleanAnswer, settings: EquivalenceSettings, *, values: FastValues | None = None
) -> Outcome:
    """Compare two cleaned answers with the given leaf comparer (the fast one by default).

    Raises Unparseable when a side cannot be read."""
    g, p = parse_pair(gold, pred)
    cmp = Comparer(settings, values or FastValues())
    equal = cmp.same(g, p)
    if cmp.not_comparable:
        return Outcome(False, "not_comparable")
    stage = "exact" if values is None or type(values) is FastValues else "sympy"
    return Outcome(equal, stage if equal is not None else "undecided")


def iter_nodes(n: Any) -> Iterator[Node]:
    """Every node of a tree (depth first)."""
    if isinstance(n, Node):
        yield n
        for v in n.children():
            yield from iter_nodes(v)
    elif isinstance(n, tuple):
        for x in n:
            yield from iter_nodes(x)


__all__ = [
    "Comparer",
    "EquivalenceSettings",
    "FastValues",
    "Outcome",
    "Unparseable",
    "compare",
    "parse_pair",
]
