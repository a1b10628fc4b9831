"""Canonical forms: the exact fast path's proof that two expressions are equal, or that they differ.

An expression becomes a polynomial over *atoms* (variables, pi, e, function applications, reciprocals
of sums, powers with symbolic exponents) whose coefficients are exact numbers in Q(sqrt k1, sqrt k2,
...): rationals plus square roots of squarefree integers (i = sqrt(-1)). Every rewrite is an identity
(expanding products, collecting terms, sqrt(12) = 2 sqrt(3), 1/sqrt(3) = sqrt(3)/3), so equal canonical
forms prove equal values, and every grouping of the input is kept (`\\frac{6}{2+1}` is 2, `\\frac{6}{2}+1`
is 4). Different canonical forms prove nothing by themselves; `compare_values` then substitutes exact
random rationals for the variables: a constant in that field is unique, so two different constants
prove the expressions differ. What neither settles is left to sympy (returns None).

Example:
    >>> from tracekit.verify.math.latex import parse_answer
    >>> compare_values(parse_answer(r"3\\sqrt{13}"), parse_answer(r"\\sqrt{117}"))
    True
    >>> compare_values(parse_answer(r"\\frac{6}{2+1}"), parse_answer(r"\\frac{6}{2}+1"))
    False
    >>> compare_values(parse_answer(r"\\tan^2 y + 1"), parse_answer(r"\\sec^2 y")) is None
    True
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

from tracekit.verify.math.latex import (
    Add,
    Const,
    Div,
    Func,
    Mul,
    Neg,
    Node,
    Num,
    Pow,
    Root,
    Sub,
    Sym,
)


class NotCanonical(Exception):
    """The expression has no canonical form here (infinity, a structure, too large): ask sympy."""


_MAX_TERMS = 400
_MAX_POW = 64  # integer powers of sums
_MAX_BITS = 30_000  # size of an exact rational
_FACTOR_LIMIT = 10**4

# --------------------------------------------------------------------------------- exact coefficients
# A coefficient is a dict {k: q} meaning sum q * sqrt(k), k a squarefree integer (1 = rational part,
# -1 = i, -3 = i sqrt 3). Keys are kept squarefree so the representation is unique.

Rad = dict[int, Fraction]


def _squarefree_split(n: int) -> tuple[int, int] | None:
    """n = s^2 * r with r squarefree (sign kept in r); None when n is too large to factor here."""
    sign = -1 if n < 0 else 1
    n = abs(n)
    if n == 0:
        return 0, 1
    s, r = 1, 1
    p = 2
    while p * p <= n and p <= _FACTOR_LIMIT:
        if n % p == 0:
            e = 0
            while n % p == 0:
                n //= p
                e += 1
            s *= p ** (e // 2)
            if e % 2:
                r *= p
        p += 1 if p == 2 else 2
    if n > 1:
        root = math.isqrt(n)
        if root * root == n:
            s *= root
        elif n < _FACTOR_LIMIT * _FACTOR_LIMIT:
            r *= n  # no factor up to its square root: n is prime
        else:
            return None
    return s, sign * r


def _rad_mul(a: Rad, b: Rad) -> Rad:
    out: Rad = {}
    for ka, qa in a.items():
        for kb, qb in b.items():
            g = math.gcd(ka, kb)
            k = (abs(ka) // g) * (abs(kb) // g)
            if ka < 0 and kb < 0:  # i sqrt|a| * i sqrt|b| = -sqrt|ab|
                coef = -g
            else:
                coef = g
                k = -k if (ka < 0 or kb < 0) else k
            out[k] = out.get(k, Fraction(0)) + qa * qb * coef
    return {k: q for k, q in out.items() if q}


def _rad_add(a: Rad, b: Rad, sign: int = 1) -> Rad:
    out = dict(a)
    for k, q in b.items():
        out[k] = out.get(k, Fraction(0)) + sign * q
    return {k: q for k, q in out.items() if q}


def _primes_of(k: int) -> list[int]:
    out = [-1] if k < 0 else []
    n, p = abs(k), 2
    while p * p <= n:
        if n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return out


def _rad_inv(a: Rad) -> Rad:
    if not a:
        raise ZeroDivisionError
    if len(a) == 1:
        ((k, q),) = a.items()
        # 1/(q sqrt k) = sqrt k / (q k)
        return {k: 1 / (q * k)} if k != 1 else {1: 1 / q}
    # multiply by a conjugate that flips one prime's sign until the denominator is rational
    num: Rad = {1: Fraction(1)}
    den = a
    for _ in range(16):
        keys = [k for k in den if k != 1]
        if not keys:
            break
        p = _primes_of(keys[0])[0]
        conj = {k: (-q if (k < 0 if p == -1 else k % p == 0) else q) for k, q in den.items()}
        num = _rad_mul(num, conj)
        den = _rad_mul(den, conj)
    if set(den) - {1} or not den:
        raise NotCanonical("radical denominator")
    return {k: q / den[1] for k, q in num.items()}


def _rad_key(a: Rad) -> str:
    return ";".join(f"{q.numerator:x}/{q.denominator:x}r{k}" for k, q in sorted(a.items()))


def _rad_sqrt(q: Fraction) -> Rad | None:
    """sqrt of a rational as a coefficient, or None when its numbers are too large to factor."""
    split = _squarefree_split(q.numerator * q.denominator)
    if split is None:
        return None
    s, r = split
    if s == 0:
        return {}
    return {r: Fraction(s, q.denominator)}


# ------------------------------------------------------------------------------------ polynomials

Mono = tuple[tuple[str, int], ...]
Poly = dict[Mono, Rad]


def _const(q: Fraction | int) -> Poly:
    return {(): {1: Fraction(q)}} if q else {}


def _poly_add(a: Poly, b: Poly, sign: int = 1) -> Poly:
    out = dict(a)
    for m, c in b.items():
        s = _rad_add(out.get(m, {}), c, sign)
        if s:
            out[m] = s
        else:
            out.pop(m, None)
    return out


def _mono_mul(a: Mono, b: Mono) -> Mono:
    if not a:
        return b
    if not b:
        return a
    d = dict(a)
    for k, e in b:
        d[k] = d.get(k, 0) + e
    return tuple(sorted((k, e) for k, e in d.items() if e))


def _poly_mul(a: Poly, b: Poly) -> Poly:
    if len(a) * len(b) > _MAX_TERMS * 4:
        raise NotCanonical("too many terms")
    out: Poly = {}
    for ma, ca in a.items():
        for mb, cb in b.items():
            m = _mono_mul(ma, mb)
            c = _rad_add(out.get(m, {}), _rad_mul(ca, cb))
            if c:
                out[m] = c
            else:
                out.pop(m, None)
    if len(out) > _MAX_TERMS:
        raise NotCanonical("too many terms")
    return out


def poly_key(p: Poly) -> str:
    """A string that is equal for equal canonical forms."""
    if not p:
        return "0"
    return " + ".join(
        f"[{_rad_key(c)}]" + "".join(f"*{a}^{e}" for a, e in m)
        for m, c in sorted(p.items(), key=lambda t: t[0])
    )


def _as_rad(p: Poly) -> Rad | None:
    """The constant of a polynomial without atoms, else None."""
    if not p:
        return {}
    if len(p) == 1 and () in p:
        return p[()]
    return None


def _as_rational(p: Poly) -> Fraction | None:
    r = _as_rad(p)
    if r is None:
        return None
    if not r:
        return Fraction(0)
    if set(r) == {1}:
        return r[1]
    return None


def _bits(q: Fraction) -> int:
    return q.numerator.bit_length() + q.denominator.bit_length()


# --------------------------------------------------------------------------------------- the builder


class Canon:
    """Builds canonical forms; `env` maps variable names to exact values (random points)."""

    def __init__(self, env: dict[str, Fraction] | None = None) -> None:
        self.env = env
        self.atoms: dict[str, tuple[Any, ...]] = {}  # atom key -> how to evaluate it numerically

    def atom(self, key: str, how: tuple[Any, ...]) -> Poly:
        if self.env is not None and how[0] in ("sub", "opaque"):
            # an indexed name or an opaque constant at a random point: a value fixed by its key
            h = zlib.crc32(key.encode())
            return _const(Fraction(h % 89 + 11, h // 89 % 13 + 7))
        self.atoms[key] = how
        return {((key, 1),): {1: Fraction(1)}}

    def build(self, n: Node) -> Poly:
        if isinstance(n, Num):
            if _bits(n.value) > _MAX_BITS:
                raise NotCanonical("number too large")
            return _const(n.value)
        if isinstance(n, Sym):
            if self.env is not None and n.name in self.env:
                return _const(self.env[n.name])
            return self.atom("v:" + n.name, ("var", n.name))
        if isinstance(n, Const):
            if n.name == "i":
                return {(): {-1: Fraction(1)}}
            if n.name in ("pi", "e"):
                return self.atom(n.name, (n.name,))
            raise NotCanonical(n.name)
        if isinstance(n, Add):
            out: Poly = {}
            for t in n.terms:
                out = _poly_add(out, self.build(t))
            return out
        if isinstance(n, Neg):
            return {m: {k: -q for k, q in c.items()} for m, c in self.build(n.arg).items()}
        if isinstance(n, Mul):
            acc = _const(1)
            for f in n.factors:
                acc = _poly_mul(acc, self.build(f))
            return acc
        if isinstance(n, Div):
            return _poly_mul(self.build(n.num), self.power(self.build(n.den), Fraction(-1)))
        if isinstance(n, Pow):
            base = n.base
            exp = self.build(n.exp)
            q = _as_rational(exp)
            if isinstance(base, Const) and base.name == "e" and q is None:
                return self.atom(f"exp({poly_key(exp)})", ("exp", exp))
            b = self.build(base)
            if q is not None:
                return self.power(b, q)
            return self.atom(f"pow({poly_key(b)},{poly_key(exp)})", ("pow", b, exp))
        if isinstance(n, Root):
            idx = Fraction(2) if n.index is None else _as_rational(self.build(n.index))
            if idx is None or idx == 0:
                raise NotCanonical("root index")
            return self.power(self.build(n.arg), 1 / idx)
        if isinstance(n, Sub):
            try:
                idx_key = poly_key(self.build(n.index))
            except NotCanonical:
                idx_key = repr(n.index)  # x_{k=0}: only the same subscript is the same name
            if isinstance(n.base, Sym):
                return self.atom(f"sub:{n.base.name}[{idx_key}]", ("sub",))
            if isinstance(n.base, Num):
                return self.atom(f"base:{n.base.text}[{idx_key}]", ("opaque",))
            raise NotCanonical("subscript")
        if isinstance(n, Func):
            return self.function(n)
        raise NotCanonical(type(n).__name__)

    def power(self, b: Poly, q: Fraction) -> Poly:
        if q.denominator == 1:
            e = q.numerator
            if e == 0:
                if not b:
                    raise NotCanonical("0^0")
                return _const(1)
            r = _as_rational(b)
            if r is not None:
                if r == 0 and e < 0:
                    raise ZeroDivisionError
                if abs(e) * max(_bits(r), 1) > _MAX_BITS:
                    raise NotCanonical("power too large")
                return _const(r**e)
            if len(b) == 1:  # a monomial: exponents multiply, the coefficient is powered exactly
                ((m, c),) = b.items()
                if abs(e) > _MAX_POW * 4:
                    raise NotCanonical("power too large")
                cc = self._rad_pow(c, e)
                return {tuple((k, x * e) for k, x in m): cc}
            if e < 0:
                return self.power(self.recip(b), Fraction(-e))
            if e > _MAX_POW:
                raise NotCanonical("power too large")
            acc, base, k = _const(1), b, e
            while k:
                if k & 1:
                    acc = _poly_mul(acc, base)
                k >>= 1
                if k:
                    base = _poly_mul(base, base)
            return acc
        # a fractional power
        r = _as_rational(b)
        if r is not None and q.denominator == 2 and abs(q.numerator) <= _MAX_POW:
            root = _rad_sqrt(r)
            if root is not None:
                return self.power({(): root} if root else {}, Fraction(q.numerator))
        if r is not None and r < 0 and q.denominator % 2:
            # an odd root of a negative number is the real one (the cube root of -8 is -2)
            return _poly_mul(_const((-1) ** q.numerator), self.power(_const(-r), q))
        if r is not None and r > 0:
            num = _exact_root(r.numerator, q.denominator)
            den = _exact_root(r.denominator, q.denominator)
            if num is not None and den is not None:
                return self.power(_const(Fraction(num, den)), Fraction(q.numerator))
        whole, frac = divmod(q, 1)
        atom = self.atom(f"pow({poly_key(b)},{frac})", ("pow", b, _const(frac)))
        return _poly_mul(atom, self.power(b, Fraction(whole))) if whole else atom

    def _rad_pow(self, c: Rad, e: int) -> Rad:
        if e < 0:
            c, e = _rad_inv(c), -e
        if len(c) == 1 and 1 in c:
            if _bits(c[1]) * e > _MAX_BITS:
                raise NotCanonical("power too large")
            return {1: c[1] ** e}
        acc: Rad = {1: Fraction(1)}
        while e:
            if e & 1:
                acc = _rad_mul(acc, c)
            e >>= 1
            if e:
                c = _rad_mul(c, c)
            if sum(_bits(v) for v in acc.values()) + sum(_bits(v) for v in c.values()) > _MAX_BITS:
                raise NotCanonical("power too large")
        return acc

    def recip(self, b: Poly) -> Poly:
        """1/b for a sum b: an atom of b scaled so its first term has coefficient 1."""
        if not b:
            raise ZeroDivisionError
        first = min(b)
        lead = b[first]
        if len(lead) == 1:
            inv = _rad_inv(lead)
            b = _poly_mul(b, {(): inv})
            scale: Poly = {(): inv}
        else:
            scale = _const(1)
        return _poly_mul(self.atom(f"recip({poly_key(b)})", ("recip", b)), scale)

    def function(self, n: Func) -> Poly:
        name = n.name
        args = [self.build(a) for a in n.args]
        consts = [_as_rational(a) for a in args]
        if name == "exp":
            return self.build(Pow(Const("e"), n.args[0]))
        if name == "abs":
            r = consts[0]
            if r is not None:
                return _const(abs(r))
            c = _as_rad(args[0])
            if c is not None and all(k > 0 for k in c):
                approx = _rad_float(c)
                if abs(approx) > 1e-6:
                    return args[0] if approx > 0 else {(): {k: -q for k, q in c.items()}}
        elif name == "factorial" and consts[0] is not None:
            v = consts[0]
            if v.denominator == 1 and 0 <= v <= 2500:
                return _const(math.factorial(int(v)))
        elif name == "binom" and None not in consts:
            a, b = consts
            assert a is not None and b is not None
            if a.denominator == b.denominator == 1 and 0 <= a <= 2000:
                return _const(math.comb(int(a), int(b)) if b >= 0 else 0)
        elif name in ("floor", "ceil") and consts[0] is not None:
            w = consts[0]
            return _const(math.floor(w) if name == "floor" else math.ceil(w))
        elif (
            name in ("gcd", "lcm")
            and None not in consts
            and all(c.denominator == 1 for c in consts if c is not None)
        ):
            ints = [int(c) for c in consts if c is not None]
            return _const(math.gcd(*ints) if name == "gcd" else math.lcm(*ints))
        elif name in ("max", "min") and None not in consts:
            vals = [c for c in consts if c is not None]
            return _const(max(vals) if name == "max" else min(vals))
        elif name in ("log", "ln"):
            base = Fraction(10) if name == "log" and n.base is None else None
            bpoly = self.build(n.base) if n.base is not None else None
            if bpoly is not None:
                base = _as_rational(bpoly)
            if consts[0] == 1:
                return {}
            if consts[0] == 0:
                raise NotCanonical("log of 0")
            if base is not None and consts[0] is not None and base > 1 and consts[0] > 0:
                k = _exact_log(consts[0], base)
                if k is not None:
                    return _const(k)
            if name == "ln" and n.base is None and _is_e(args[0]):
                return _const(1)
            base_key = (
                "e" if name == "ln" and n.base is None else (poly_key(bpoly) if bpoly is not None else "10")
            )
            how = ("log", args[0], bpoly if bpoly is not None else (None if base_key == "e" else _const(10)))
            return self.atom(f"log({poly_key(args[0])},{base_key})", how)
        key = f"{name}(" + ",".join(poly_key(a) for a in args) + ")"
        return self.atom(key, ("fn", name, args))


def _is_e(p: Poly) -> bool:
    return p == {(("e", 1),): {1: Fraction(1)}}


def _exact_root(n: int, k: int) -> int | None:
    if n < 0 or k <= 0 or n.bit_length() > 4000:
        return None
    r = round(n ** (1.0 / k)) if n.bit_length() < 1000 else None
    if r is None:
        return None
    for c in (r - 1, r, r + 1):
        if c >= 0 and c**k == n:
            return c
    return None


def _exact_log(x: Fraction, base: Fraction) -> Fraction | None:
    """k with base^k == x for a small integer or reciprocal-integer k, else None."""
    for k in range(-64, 65):
        if k and _bits(base) * abs(k) < 4000 and base**k == x:
            return Fraction(k)
    return None


def _rad_float(c: Rad) -> float:
    return float(sum(float(q) * math.sqrt(k) for k, q in c.items() if k > 0))


# ----------------------------------------------------------------------------------- numeric values


def _mp() -> Any:
    import mpmath

    return mpmath


def _num_rad(c: Rad, mp: Any) -> Any:
    total = mp.mpf(0)
    for k, q in c.items():
        term = mp.mpf(q.numerator) / q.denominator
        total += term * (mp.sqrt(k) if k > 0 else mp.mpc(0, 1) * mp.sqrt(-k))
    return total


def numeric(p: Poly, atoms: dict[str, tuple[Any, ...]], mp: Any) -> Any:
    """The value of a polynomial whose atoms hold no variables, at the current mpmath precision."""
    total = mp.mpf(0)
    cache: dict[str, Any] = {}
    for m, c in p.items():
        term = _num_rad(c, mp)
        for key, e in m:
            if key not in cache:
                cache[key] = _atom_value(atoms[key], atoms, mp)
            term *= cache[key] ** e
        total += term
    return total


def real_power(base: Any, exp: Any, mp: Any, *, exact_exp: Fraction | None = None) -> Any:
    """base^exp, with the real root for a negative base and an exact exponent p/q with odd q (TeX
    answers' reading: the cube root of -8 is -2); the principal value otherwise."""
    q = exact_exp
    if q is not None and q.denominator % 2 and mp.im(base) == 0 and mp.re(base) < 0:
        return (-1) ** q.numerator * mp.power(-mp.re(base), mp.mpf(q.numerator) / q.denominator)
    return mp.power(base, exp)


_MP_FUNCS = {
    "sin": "sin", "cos": "cos", "tan": "tan", "cot": "cot", "sec": "sec", "csc": "csc", "arcsin": "asin",
    "arccos": "acos", "arctan": "atan", "arccot": "acot", "arcsec": "asec", "arccsc": "acsc", "sinh": "sinh",
    "cosh": "cosh", "tanh": "tanh", "coth": "coth", "factorial": "factorial", "floor": "floor",
    "ceil": "ceil", "abs": "fabs",
}  # fmt: skip


def _atom_value(how: tuple[Any, ...], atoms: dict[str, tuple[Any, ...]], mp: Any) -> Any:
    kind = how[0]
    if kind == "pi":
        return +mp.pi
    if kind == "e":
        return +mp.e
    if kind == "exp":
        return mp.exp(numeric(how[1], atoms, mp))
    if kind == "pow":
        exact = _as_rational(how[2])
        return real_power(numeric(how[1], atoms, mp), numeric(how[2], atoms, mp), mp, exact_exp=exact)
    if kind == "recip":
        return 1 / numeric(how[1], atoms, mp)
    if kind == "log":
        x = numeric(how[1], atoms, mp)
        return mp.log(x) if how[2] is None else mp.log(x) / mp.log(numeric(how[2], atoms, mp))
    if kind == "fn":
        name, args = how[1], [numeric(a, atoms, mp) for a in how[2]]
        if name == "abs":
            return abs(args[0])
        if name == "binom":
            return mp.binomial(args[0], args[1])
        if name in ("max", "min"):
            return max(args) if name == "max" else min(args)
        if name in _MP_FUNCS:
            return getattr(mp, _MP_FUNCS[name])(*args)
    raise NotCanonical(f"no value for {kind}")


# ------------------------------------------------------------------------------------- comparisons


def symbols_of(n: Node) -> set[str]:
    """Names of the variables in a tree (not the names that are only subscripted)."""
    out: set[str] = set()
    stack: list[Any] = [n]
    while stack:
        x = stack.pop()
        if isinstance(x, Sym):
            out.add(x.name)
        elif isinstance(x, Sub):
            stack.append(x.index)
        elif isinstance(x, Node):
            stack.extend(x.children())
        elif isinstance(x, tuple):
            stack.extend(x)
    return out


def _points(names: list[str], k: int) -> Iterator[dict[str, Fraction]]:
    """k points with exact rational coordinates in (1/2, 5k), fixed by the names (reproducible)."""
    for j in range(k):
        env = {}
        for name in names:
            h = zlib.crc32(f"{name}#{j}".encode())
            env[name] = Fraction(h % 997 + 500, h // 997 % 89 + 211) + 5 * j
        yield env


def canonical(n: Node) -> tuple[Poly, Canon]:
    c = Canon()
    return c.build(n), c


def compare_values(a: Node, b: Node, *, points: int = 3) -> bool | None:
    """True: provably equal; False: provably different (at an exact point, or numerically far apart
    where only transcendental constants remain); None: not decided here."""
    try:
        ca, cb = Canon(), Canon()
        pa, pb = ca.build(a), cb.build(b)
    except (NotCanonical, ZeroDivisionError, OverflowError, ValueError):
        return None
    if poly_key(pa) == poly_key(pb):
        return True
    names = sorted(symbols_of(a) | symbols_of(b))
    if not names:
        ra, rb = _as_rad(pa), _as_rad(pb)
        if ra is not None and rb is not None:
            return False  # two different exact constants
    # exact points; without variables, one point still gives indexed names (a_12) their own values
    for env in _points(names, points if names else 1):
        try:
            ea, eb = Canon(env), Canon(env)
            va, vb = ea.build(a), eb.build(b)
        except (NotCanonical, ZeroDivisionError, OverflowError, ValueError):
            continue
        if poly_key(va) == poly_key(vb):
            continue
        ra, rb = _as_rad(va), _as_rad(vb)
        if ra is not None and rb is not None:
            return False
        if _numerically_different(va, vb, {**ea.atoms, **eb.atoms}) is False:
            return False
    return None


def proportional(a: Node, b: Node, *, points: int = 4) -> bool | None:
    """Is a = c * b for a constant c != 0 (the same equation a = 0 rearranged)? None: not decided."""
    try:
        pa, pb = Canon().build(a), Canon().build(b)
    except (NotCanonical, ZeroDivisionError, OverflowError, ValueError):
        return None
    if not pa or not pb:
        return None
    if set(pa) == set(pb):
        m = min(pa)
        try:
            ratio = _rad_mul(pa[m], _rad_inv(pb[m]))
        except NotCanonical:
            ratio = None
        if ratio is not None and all(_rad_key(_rad_mul(pb[k], ratio)) == _rad_key(pa[k]) for k in pa):
            return True
    names = sorted(symbols_of(a) | symbols_of(b))
    seen: set[str] = set()
    for env in _points(names, points):
        try:
            ra, rb = _as_rad(Canon(env).build(a)), _as_rad(Canon(env).build(b))
            if ra is None or rb is None:
                continue
            if not rb:
                if ra:
                    return False  # b = 0 where a != 0
                continue
            seen.add(_rad_key(_rad_mul(ra, _rad_inv(rb))))
        except (NotCanonical, ZeroDivisionError, OverflowError, ValueError):
            continue
        if len(seen) > 1:
            return False  # the ratio changes from point to point
    return None


def _numerically_different(pa: Poly, pb: Poly, atoms: dict[str, tuple[Any, ...]]) -> bool | None:
    """False when the two constants are far apart at 50 digits (a proof for all practical purposes)."""
    mp = _mp()
    try:
        with mp.workdps(50):
            va = numeric(pa, atoms, mp)
            vb = numeric(pb, atoms, mp)
            diff = abs(va - vb)
            scale = max(abs(va), abs(vb))
            if not (mp.isfinite(diff) and mp.isfinite(scale)):
                return None
            if diff > scale * mp.mpf(10) ** -30 and diff > mp.mpf(10) ** -300:
                return False
    except (NotCanonical, ZeroDivisionError, ValueError, OverflowError, TypeError):
        return None
    return None


def constant_value(n: Node, dps: int = 50) -> Any:
    """(exact Fraction or None, mpmath value or None) of a tree without variables."""
    try:
        c = Canon()
        p = c.build(n)
    except (NotCanonical, ZeroDivisionError, OverflowError, ValueError):
        return None, None
    if symbols_of(n):
        return None, None
    q = _as_rational(p)
    if q is not None:
        return q, None
    mp = _mp()
    try:
        with mp.workdps(dps):
            return None, numeric(p, c.atoms, mp)
    except (NotCanonical, ZeroDivisionError, ValueError, OverflowError, TypeError):
        return None, None
