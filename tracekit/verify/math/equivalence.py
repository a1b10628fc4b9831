"""Is a predicted answer equivalent to the gold one? A fast exact path, then sympy.

`fast_equivalent` decides plain numbers and words in microseconds without sympy; it returns None when
it cannot decide. `sympy_equivalent` parses LaTeX with latex2sympy2-extended and compares structure
(sets, tuples, intervals, equations, inequalities, matrices) and values (exactly, then with the
decimal-rounding rule). It can hang on hostile input, so the verifier runs it in a killable worker.

Example:
    >>> fast_equivalent(clean_answer("7,425,000"), clean_answer("7425000"), EquivalenceSettings())
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from tracekit.verify.math.normalize import CleanAnswer, PlainNumber, clean_answer, parse_plain_number


@dataclass(frozen=True, slots=True)
class EquivalenceSettings:
    rel_tol: float = 1e-9
    decimal_min_places: int = 2
    percent_as_fraction: bool = True
    allow_set_relation_comp: bool = False
    strict: bool = True


# ----------------------------------------------------------------------------------------- fast path


def _num_candidates(n: PlainNumber, percent: bool, settings: EquivalenceSettings) -> list[PlainNumber]:
    out = [n]
    if percent and settings.percent_as_fraction:
        places = None if n.decimals is None else n.decimals + 2
        out.append(PlainNumber(n.value / 100, places))
    return out


def numbers_equal(a: PlainNumber, b: PlainNumber, settings: EquivalenceSettings) -> bool:
    """Exact equality, or the decimal-rounding rule: a decimal written with d >= `decimal_min_places`
    places matches a value that rounds to it at d places (1/12 ~ 0.0833, 8/3 ~ 2.6667). Nothing else is
    rounded, so tiny values that differ stay different."""
    if a.value == b.value:
        return True
    cands = [x for x in (a, b) if x.decimals is not None and x.decimals >= settings.decimal_min_places]
    for coarse in cands:
        fine = b if coarse is a else a
        places = coarse.decimals or 0
        finer = fine.decimals is None or fine.decimals > places
        if finer and abs(fine.value - coarse.value) <= Fraction(1, 2 * 10**places):
            return True
    return False


def _text_key(s: str) -> str:
    s = re.sub(r"\\(?:text|mathrm|textbf|mbox|textnormal|mathbf)\s*\{([^{}]*)\}", r"\1", s)
    return re.sub(r"[\s{}]", "", s).lower()


_TIME_RE = re.compile(r"\d+\s*:\s*\d+")
_WORDS_ONLY_RE = re.compile(r"[^\W\d_][^\W\d_\s'-]*(?:[\s'-]+[^\W\d_]+)*", re.UNICODE)


def is_words(ans: CleanAnswer) -> bool:
    """The answer is plain words (\\text{Evelyn}, odd), not mathematics."""
    return ans.is_text or (len(ans.text) > 1 and _WORDS_ONLY_RE.fullmatch(ans.text) is not None)


def fast_equivalent(gold: CleanAnswer, pred: CleanAnswer, settings: EquivalenceSettings) -> bool | None:
    """True/False when plain numbers or plain words decide it, else None."""
    if _text_key(gold.text) == _text_key(pred.text) and gold.text:
        return True
    if _TIME_RE.fullmatch(gold.text) and _TIME_RE.fullmatch(pred.text):  # 12:00, 7:32
        return [int(x) for x in gold.text.split(":")] == [int(x) for x in pred.text.split(":")]
    g = parse_plain_number(gold.text)
    p = parse_plain_number(pred.text)
    if g is not None and p is not None:
        return any(
            numbers_equal(a, b, settings)
            for a in _num_candidates(g, gold.percent, settings)
            for b in _num_candidates(p, pred.percent, settings)
        )
    # two answers made of words only (\text{Evelyn}, odd) differ when their words differ
    gw, pw = is_words(gold), is_words(pred)
    if gw and pw:
        return False
    if (g is not None and pw) or (p is not None and gw):
        return False
    return None


# ---------------------------------------------------------------------------------------- sympy path


class Unparseable(Exception):
    """The answer is not LaTeX/maths that sympy understands."""


def _top_level_split(s: str, seps: tuple[str, ...]) -> list[str]:
    parts: list[str] = []
    depth = 0
    buf: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in "{}":
            buf.append(s[i : i + 2])
            i += 2
            continue
        if c in "{([":
            depth += 1
        elif c in "})]":
            depth -= 1
        if depth == 0:
            hit = next((sep for sep in seps if s.startswith(sep, i)), None)
            if hit is not None:
                parts.append("".join(buf))
                buf = []
                i += len(hit)
                continue
        buf.append(c)
        i += 1
    parts.append("".join(buf))
    return parts


def _prepare(text: str) -> str:
    """Text-level fixes before parsing: chains of '=', '\\approx', python-ish pieces."""
    s = text.strip()
    s = re.sub(r"\\mathrm\{e\}", "e", s)
    s = re.sub(r"\\(?:text|textbf|mathrm|textnormal|mbox)\s*\{\s*\}", "", s)
    s = re.sub(r"\\sqrt\s*\(([^()]*)\)", r"\\sqrt{\1}", s)
    s = re.sub(r"(?<=[\d}])\s*\\cdot\s*10\^", r"\\times 10^", s)
    # x = 5+5+1 = 7 = 11 -> x = 11 ; the value before \approx is the answer
    parts = _top_level_split(s, ("\\approx", "\\simeq"))
    if len(parts) > 1:
        left = parts[0].strip()
        s = (
            left
            if _top_level_split(left, ("=",))[-1].strip() and not re.fullmatch(r"[A-Za-z]", left)
            else parts[1]
        )
        if re.fullmatch(r"[A-Za-z](?:_\{?\w+\}?)?", left):
            s = parts[1]
    groups = _top_level_split(s, (";",))
    out = []
    for group in groups:
        items = _top_level_split(group, (",",))
        fixed = [_prepare_item(item, many=len(items) > 1 or len(groups) > 1) for item in items]
        joined = ",".join(fixed)
        out.append(f"({joined})" if len(groups) > 1 and len(fixed) > 1 else joined)
    return ",".join(out)


def _letters(s: str) -> bool:
    return re.search(r"[A-Za-z]", re.sub(r"\\[A-Za-z]+", "", s)) is not None


def _is_name_text(lhs: str) -> bool:
    t = re.sub(r"_\{[^{}]*\}|_\w", "", lhs)
    t = re.sub(r"\\[A-Za-z]+", "", t)
    return bool(re.search(r"[A-Za-z]", t)) and not re.search(r"[\d+\-*^]", t)


def _prepare_item(item: str, *, many: bool) -> str:
    eq = _top_level_split(item, ("=",))
    if len(eq) > 2:  # x = 5+5+1 = 7 = 11 -> x = 11
        eq = [eq[0], eq[-1]] if _letters(eq[0]) else [eq[-1]]
    if len(eq) == 2:
        lhs, rhs = eq[0].strip(), eq[1].strip()
        if _is_name_text(lhs) and (many or not _letters(rhs)):
            return rhs  # AB=4 -> 4, S:S'=7:32 -> 7:32
        if not _letters(lhs) and not _letters(rhs):
            return rhs  # 35 + 70 = 105 -> 105
        return lhs + "=" + rhs
    return eq[0]


_PY_FUNCS_RE = re.compile(r"\b(?:exp|pi|sqrt|log|sin|cos|tan)\b|\*\*|\*")


def _parse_python(s: str) -> Any:
    import sympy
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    t = re.sub(r"(\d)\s*i\b", r"\1*I", s)
    t = re.sub(r"\bi\b", "I", t)
    tr = (*standard_transformations, implicit_multiplication_application, convert_xor)
    return parse_expr(
        t, transformations=tr, local_dict={"e": sympy.E, "E": sympy.E, "I": sympy.I, "pi": sympy.pi}
    )


def parse_latex(text: str) -> Any:
    """sympy object for one cleaned answer; raises Unparseable."""
    from latex2sympy2_extended import latex2sympy
    from latex2sympy2_extended.math_normalization import NormalizationConfig

    s = _prepare(text)
    if not s:
        raise Unparseable("empty")
    if "\\" not in s and _PY_FUNCS_RE.search(s):
        try:
            return _parse_python(s)
        except Exception:
            pass
    try:
        cfg = NormalizationConfig(
            basic_latex=True, units=False, malformed_operators=True, nits=False, boxed="none"
        )
        return latex2sympy(s, normalization_config=cfg)
    except Exception as exc:  # latex2sympy raises plain Exception on bad input
        raise Unparseable(str(exc)[:200]) from exc


@dataclass
class _Side:
    obj: Any
    text: str
    percent: bool


def _is_name(expr: Any) -> bool:
    """A left-hand side that only names the answer: x, f(x), a_3, |AB|, A:B, (p, q)."""
    import sympy

    if isinstance(expr, sympy.Tuple):
        return all(_is_name(e) for e in expr)
    if not isinstance(expr, sympy.Basic) or not expr.free_symbols:
        return False
    if isinstance(expr, sympy.Add):
        return False
    return all(abs(n) == 1 for n in expr.atoms(sympy.Number))


def _strip_name(obj: Any) -> Any:
    import sympy

    if isinstance(obj, sympy.Eq) and _is_name(obj.lhs):
        return obj.rhs
    if isinstance(obj, sympy.Eq) and not isinstance(obj.lhs, sympy.Basic | sympy.Tuple):
        return obj
    return obj


def _i_to_I(expr: Any) -> Any:
    import sympy

    if isinstance(expr, sympy.Basic) and not isinstance(expr, sympy.Set):
        syms = {s for s in expr.free_symbols if s.name in ("i",)}
        if syms:
            return expr.subs({s: sympy.I for s in syms})
    return expr


def _float_places(value: complex, text: str) -> int | None:
    """Decimal places of the literal in `text` that wrote this value (0.0833 -> 4), if any."""
    best = None
    for m in re.finditer(r"(\d*)\.(\d+)", text):
        try:
            lit = float(m.group(0))
        except ValueError:
            continue
        if abs(abs(value) - lit) <= 1e-12 * max(1.0, lit):
            best = len(m.group(2))
    return best


def _numbers_close(a: Any, b: Any, a_text: str, b_text: str, settings: EquivalenceSettings) -> bool:
    """Two numeric sympy values: equal at 60 significant digits when both are exact (relative, so tiny
    values that differ stay different), else the decimal rule or the relative tolerance."""
    import sympy

    a_float = bool(a.atoms(sympy.Float))
    b_float = bool(b.atoms(sympy.Float))
    if not a_float and not b_float:
        if a == b:
            return True
        av, bv = sympy.N(a, 60), sympy.N(b, 60)
        scale = max(abs(av), abs(bv))
        if scale == 0:
            return True
        if not scale.is_finite:
            return False
        return bool(abs(av - bv) <= scale * sympy.Float(10, 60) ** -50)
    # sympy Floats have an unbounded exponent: no overflow to inf (which would make any tolerance pass)
    av, bv = sympy.N(a, 30), sympy.N(b, 30)
    diff = abs(sympy.N(av - bv, 30))
    scale = max(abs(av), abs(bv))
    if not (diff.is_finite and scale.is_finite):
        return False
    for val, text, is_float in ((av, a_text, a_float), (bv, b_text, b_float)):
        places = _float_places(complex(val) if abs(val) < 1e300 else 0j, text) if is_float else None
        ok = places is not None and places >= settings.decimal_min_places
        if ok and diff <= sympy.Float(0.5, 30) * sympy.Float(10, 30) ** -(places or 0) * (1 + 1e-9):
            return True
    return bool(diff <= sympy.Float(settings.rel_tol, 30) * scale)


def _as_set(obj: Any) -> Any:
    """The set an interval, tuple (open interval) or one-variable inequality describes, else None."""
    import sympy

    if isinstance(obj, sympy.Eq) and isinstance(obj.rhs, sympy.Set):  # x \in [a, b]
        return obj.rhs
    if isinstance(obj, sympy.Set):
        return obj
    if isinstance(obj, sympy.Tuple) and len(obj) == 2:
        return sympy.Interval.open(obj[0], obj[1])
    if isinstance(obj, sympy.logic.boolalg.Boolean):
        syms = obj.free_symbols
        rels = (
            obj.atoms(sympy.core.relational.Relational)
            if not isinstance(obj, sympy.core.relational.Relational)
            else {obj}
        )
        sides = {side for rel in rels for side in rel.args if not side.is_number}
        if len(sides) == 1 and (
            len(syms) != 1 or isinstance(next(iter(sides)), sympy.core.function.AppliedUndef)
        ):
            # 0 < f(x) < 1: the non-constant side is one expression; name it
            x = sympy.Symbol("x_", real=True)
            obj = obj.subs({sides.pop(): x})
        elif len(syms) != 1:
            return None
        else:
            (x0,) = syms
            x = sympy.Symbol(x0.name, real=True)
            obj = obj.subs({x0: x})
        try:
            return obj.as_set()
        except Exception:
            return None
    return None


def _is_relation(obj: Any) -> bool:
    import sympy

    return isinstance(obj, sympy.And | sympy.Or) or (
        isinstance(obj, sympy.core.relational.Relational) and not isinstance(obj, sympy.Eq | sympy.Ne)
    )


def _same(g: Any, p: Any, gt: str, pt: str, settings: EquivalenceSettings, depth: int = 0) -> bool:
    import sympy

    if depth > 6:
        return False
    g = _i_to_I(g)
    p = _i_to_I(p)
    # "name = value" on one side only: compare the values
    if isinstance(g, sympy.Eq) != isinstance(p, sympy.Eq):
        if isinstance(g, sympy.Eq) and _is_name(g.lhs):
            return _same(g.rhs, p, gt, pt, settings, depth + 1)
        if isinstance(p, sympy.Eq) and _is_name(p.lhs):
            return _same(g, p.rhs, gt, pt, settings, depth + 1)
    # "(a, b)" parses as an open interval; next to a tuple or a pair it is a pair
    if _is_open_pair(g) and isinstance(p, sympy.Tuple | sympy.FiniteSet) and not _is_open_pair(p):
        g = sympy.Tuple(g.start, g.end)
    if _is_open_pair(p) and isinstance(g, sympy.Tuple | sympy.FiniteSet) and not _is_open_pair(g):
        p = sympy.Tuple(p.start, p.end)
    if isinstance(g, sympy.FiniteSet) and isinstance(p, sympy.Tuple) and len(g) == len(p) == 2:
        g = sympy.Tuple(*g.args)
    if isinstance(g, sympy.Eq) and isinstance(p, sympy.Eq):
        if isinstance(g.rhs, sympy.Set) or isinstance(p.rhs, sympy.Set):
            gs, ps = _as_set(g), _as_set(p)
            if gs is not None and ps is not None:
                return _same(gs, ps, gt, pt, settings, depth + 1)
        if _is_name(g.lhs) and _is_name(p.lhs) and g.lhs == p.lhs:
            return _same(g.rhs, p.rhs, gt, pt, settings, depth + 1)
        if _is_name(g.lhs) and _is_name(p.lhs) and not settings.strict:
            return _same(g.rhs, p.rhs, gt, pt, settings, depth + 1)
        try:
            gd, pd = g.lhs - g.rhs, p.lhs - p.rhs
        except TypeError:
            return False
        if sympy.simplify(gd - pd) == 0:
            return True
        if pd != 0:
            ratio = sympy.simplify(gd / pd)
            return bool(ratio.is_number and ratio != 0 and ratio.is_finite)
        return False
    # collections
    g_coll = isinstance(g, sympy.FiniteSet | list)
    p_coll = isinstance(p, sympy.FiniteSet | list)
    if g_coll and p_coll:
        ga, pa = (
            list(g.args if isinstance(g, sympy.FiniteSet) else g),
            list(p.args if isinstance(p, sympy.FiniteSet) else p),
        )
        return _match_unordered(ga, pa, gt, pt, settings, depth)
    if isinstance(g, sympy.Tuple) and isinstance(p, sympy.Tuple | sympy.FiniteSet):
        pa = list(p.args)
        return len(g) == len(pa) and all(
            _same(a, b, gt, pt, settings, depth + 1) for a, b in zip(g.args, pa, strict=True)
        )
    if isinstance(p, sympy.Tuple) and isinstance(g, sympy.FiniteSet):
        # a bare gold list "1/3, -2, 5" against "(1/3, -2, 5)": sympy sorted the list, so match as a multiset
        return _match_unordered(list(g.args), list(p.args), gt, pt, settings, depth)
    if isinstance(g, sympy.FiniteSet) and len(g) == 1 and not isinstance(p, sympy.Set):
        return _same(g.args[0], p, gt, pt, settings, depth + 1)
    if isinstance(p, sympy.FiniteSet) and len(p) == 1 and not isinstance(g, sympy.Set):
        return _same(g, p.args[0], gt, pt, settings, depth + 1)
    # intervals and inequalities
    g_rel, p_rel = _is_relation(g), _is_relation(p)
    g_set_like = isinstance(g, sympy.Interval | sympy.Union) or (
        isinstance(g, sympy.Eq) and isinstance(g.rhs, sympy.Set)
    )
    p_set_like = isinstance(p, sympy.Interval | sympy.Union) or (
        isinstance(p, sympy.Eq) and isinstance(p.rhs, sympy.Set)
    )
    if g_rel and p_rel:
        gs, ps = _as_set(g), _as_set(p)
        if gs is not None and ps is not None:
            return _sets_equal(gs, ps, gt, pt, settings, depth)
        return bool(sympy.simplify(sympy.Equivalent(g, p)) is sympy.true)
    if (g_rel and (p_set_like or isinstance(p, sympy.Tuple))) or (
        p_rel and (g_set_like or isinstance(g, sympy.Tuple)) and settings.allow_set_relation_comp
    ):
        gs, ps = _as_set(g), _as_set(p)
        if gs is not None and ps is not None:
            return _sets_equal(gs, ps, gt, pt, settings, depth)
        return False
    if isinstance(g, sympy.Set) or isinstance(p, sympy.Set):
        gs = g if isinstance(g, sympy.Set) else _as_set(g) if isinstance(g, sympy.Tuple) else None
        ps = p if isinstance(p, sympy.Set) else _as_set(p) if isinstance(p, sympy.Tuple) else None
        if gs is None or ps is None:
            return False
        return _sets_equal(gs, ps, gt, pt, settings, depth)
    if isinstance(g, sympy.Tuple) or isinstance(p, sympy.Tuple):
        return False
    # matrices
    g_mat = isinstance(g, sympy.MatrixBase)
    p_mat = isinstance(p, sympy.MatrixBase)
    if g_mat or p_mat:
        if not (g_mat and p_mat) or g.shape != p.shape:
            return False
        return all(_same(a, b, gt, pt, settings, depth + 1) for a, b in zip(list(g), list(p), strict=True))
    if not isinstance(g, sympy.Expr) or not isinstance(p, sympy.Expr):
        try:
            return bool(g == p)
        except Exception:
            return False
    return _exprs_equal(g, p, gt, pt, settings)


def _is_open_pair(x: Any) -> bool:
    import sympy

    return isinstance(x, sympy.Interval) and bool(x.left_open) and bool(x.right_open)


def _is_name_pair_distinct(a: Any, b: Any) -> bool:
    return a != b


def _match_unordered(
    ga: list[Any], pa: list[Any], gt: str, pt: str, settings: EquivalenceSettings, depth: int
) -> bool:
    if len(ga) != len(pa):
        return False
    left = list(pa)
    for a in ga:
        for k, b in enumerate(left):
            if _same(a, b, gt, pt, settings, depth + 1):
                del left[k]
                break
        else:
            return False
    return True


def _sets_equal(gs: Any, ps: Any, gt: str, pt: str, settings: EquivalenceSettings, depth: int) -> bool:
    import sympy

    if gs == ps:
        return True
    if isinstance(gs, sympy.Interval) and isinstance(ps, sympy.Interval):
        return (
            gs.left_open == ps.left_open
            and gs.right_open == ps.right_open
            and _same(gs.start, ps.start, gt, pt, settings, depth + 1)
            and _same(gs.end, ps.end, gt, pt, settings, depth + 1)
        )
    if isinstance(gs, sympy.Union) and isinstance(ps, sympy.Union):
        return _match_unordered(list(gs.args), list(ps.args), gt, pt, settings, depth)
    if isinstance(gs, sympy.FiniteSet) and isinstance(ps, sympy.FiniteSet):
        return _match_unordered(list(gs.args), list(ps.args), gt, pt, settings, depth)
    try:
        return bool(sympy.simplify(sympy.SymmetricDifference(gs, ps)) == sympy.EmptySet)
    except Exception:
        return False


def _rename_free(g: Any, p: Any) -> Any:
    gs = sorted(g.free_symbols, key=lambda s: s.name)
    ps = sorted(p.free_symbols, key=lambda s: s.name)
    if len(gs) == len(ps) and gs != ps:
        return p.subs(dict(zip(ps, gs, strict=True)), simultaneous=True)
    return p


def _exprs_equal(g: Any, p: Any, gt: str, pt: str, settings: EquivalenceSettings) -> bool:
    import sympy

    if g.has(sympy.zoo, sympy.nan) or p.has(sympy.zoo, sympy.nan):
        return False
    if g == p:
        return True
    if not settings.strict:
        p = _rename_free(g, p)
        if g == p:
            return True
    if g.is_number and p.is_number:
        return _numbers_close(g, p, gt, pt, settings)
    if g.free_symbols != p.free_symbols:
        # a symbol that appears on one side only can still cancel (x - x), so check by simplifying
        pass
    try:
        d = sympy.simplify(g - p)
    except Exception:
        return False
    if d == 0:
        return True
    if not d.free_symbols:
        return bool(d.is_number and _numbers_close(g, p, gt, pt, settings)) if d.is_number else False
    # positive reals make sqrt(1/n) == 1/sqrt(n); test with positive symbols
    pos = {s: sympy.Symbol(s.name, positive=True) for s in d.free_symbols}
    try:
        return bool(sympy.simplify(d.subs(pos)) == 0)
    except Exception:
        return False


def sympy_equivalent(gold: CleanAnswer, pred: CleanAnswer, settings: EquivalenceSettings) -> bool:
    """Full comparison; raises Unparseable('gold: ...' / 'pred: ...') when a side does not parse."""
    try:
        g = parse_latex(gold.text)
    except Unparseable as exc:
        raise Unparseable(f"gold: {exc}") from exc
    try:
        p = parse_latex(pred.text)
    except Unparseable as exc:
        raise Unparseable(f"pred: {exc}") from exc
    g_sides = [g]
    p_sides = [p]
    import sympy

    if gold.percent and settings.percent_as_fraction and isinstance(g, sympy.Expr):
        g_sides.append(g / 100)
    if pred.percent and settings.percent_as_fraction and isinstance(p, sympy.Expr):
        p_sides.append(p / 100)
    return any(_same(a, b, gold.text, pred.text, settings) for a in g_sides for b in p_sides)


def equivalent_texts(gold_text: str, pred_text: str, settings: EquivalenceSettings) -> bool:
    """Convenience for tests and the worker: clean both answers, try the fast path, then sympy."""
    gold, pred = clean_answer(gold_text), clean_answer(pred_text)
    fast = fast_equivalent(gold, pred, settings)
    if fast is not None:
        return fast
    return sympy_equivalent(gold, pred, settings)
