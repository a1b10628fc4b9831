"""Parse a cleaned answer into a tree that keeps every grouping the way TeX reads it.

The tree is what both comparison stages work on (the exact fast path and sympy), so an answer has one
meaning everywhere. TeX rules that change values are kept: a macro argument without braces is one
token (`\\frac112` is `\\frac{1}{1}2` = 2, `x^23` is `x^{2}3`, `a_n+1` is `a_{n}+1`), and a group
`{...}` is one operand (`\\sqrt{x+1}` is not `\\sqrt{x}+1`). Units after a value, a percent sign and
degree signs become part of the tree instead of being deleted.

Conventions (docs/verification.md lists them): `e` is Euler's number, `i` the imaginary unit (except as
a subscript), `\\log` without a base is base 10, implicit multiplication binds tighter than `/`
(`1/2x` = 1/(2x), as latex2sympy reads it), an integer right before `\\frac{a}{b}` with integer `a`, `b`
is a mixed number (`2\\frac{1}{2}` = 5/2), `\\sin^{-1}` is `\\arcsin`.

Example:
    >>> parse_answer(r"\\frac112")
    Mul(factors=(Div(num=Num(text='1', value=Fraction(1, 1), decimals=None), den=Num(text='1', value=Fraction(1, 1), decimals=None)), Num(text='2', value=Fraction(2, 1), decimals=None)))
    >>> parse_answer(r"5\\text{ cm}").unit.text
    'cm'
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from tracekit.verify.math.units import Unit, is_unit_symbol, looks_like_word, parse_unit


class LatexError(ValueError):
    """The text is not an answer this parser understands."""


# ------------------------------------------------------------------------------------------- the tree


class Node:
    """Base of every tree node (frozen dataclasses: hashable, comparable, picklable)."""

    __slots__ = ()

    def children(self) -> tuple[Any, ...]:
        """The values of the fields, in order."""
        return tuple(getattr(self, f) for f in _field_names(type(self)))

    def rebuilt(self, values: Iterable[Any]) -> Node:
        """The same kind of node with these field values."""
        return type(self)(*values)


_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


@dataclass(frozen=True, slots=True)
class Num(Node):
    """A number literal. `decimals`: digits after the point when written as a decimal, else None."""

    text: str
    value: Fraction
    decimals: int | None = None


@dataclass(frozen=True, slots=True)
class Sym(Node):
    """A variable: a letter, a Greek letter, a decorated name (`\\vec{v}`, `x'`, `\\overline{AB}`)."""

    name: str


@dataclass(frozen=True, slots=True)
class Const(Node):
    """pi, e, i (imaginary unit) or inf."""

    name: str


@dataclass(frozen=True, slots=True)
class Sub(Node):
    """A subscripted name: `a_{n+1}`, `x_1`; a number in base b: `204_5`."""

    base: Node
    index: Node


@dataclass(frozen=True, slots=True)
class Add(Node):
    terms: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Neg(Node):
    arg: Node


@dataclass(frozen=True, slots=True)
class Mul(Node):
    factors: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Div(Node):
    """`num / den`; `frac` when written with \\frac (an integer before it makes a mixed number)."""

    num: Node
    den: Node
    frac: bool = field(default=False, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Pow(Node):
    base: Node
    exp: Node


@dataclass(frozen=True, slots=True)
class PlusMinus(Node):
    """`a \\pm b` (a may be None: `\\pm b`); `minus_first` for `\\mp`."""

    a: Node | None
    b: Node
    minus_first: bool = False


@dataclass(frozen=True, slots=True)
class Func(Node):
    """sin, cos, ..., ln, log (with `base`), exp, sqrt is Root, abs/floor/ceil/factorial/binom too."""

    name: str
    args: tuple[Node, ...]
    base: Node | None = None


@dataclass(frozen=True, slots=True)
class Root(Node):
    arg: Node
    index: Node | None = None


# answer-level structure


@dataclass(frozen=True, slots=True)
class Seq(Node):
    """A bare list `a, b, c` (several answers); `sep` is how it was joined: `,` `;` `and` `or`."""

    items: tuple[Node, ...]
    sep: str = field(default=",", compare=False)


@dataclass(frozen=True, slots=True)
class Tup(Node):
    """A bracketed list: `(a, b)`, `[a, b)`, `(1, 2, 3)`; with two items it may be an interval."""

    items: tuple[Node, ...]
    open: str
    close: str


@dataclass(frozen=True, slots=True)
class SetLit(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class EmptySet(Node):
    pass


@dataclass(frozen=True, slots=True)
class Reals(Node):
    """`\\mathbb{R}`: the interval (-inf, inf)."""


@dataclass(frozen=True, slots=True)
class SetOp(Node):
    op: str  # cup, cap, setminus
    a: Node
    b: Node


@dataclass(frozen=True, slots=True)
class Rel(Node):
    """A relation chain: parts[0] ops[0] parts[1] ops[1] ... with ops in = < > <= >= != approx in."""

    ops: tuple[str, ...]
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Matrix(Node):
    rows: tuple[tuple[Node, ...], ...]


@dataclass(frozen=True, slots=True)
class Text(Node):
    """Words (`\\text{Evelyn}`, odd): compared as words."""

    words: str


@dataclass(frozen=True, slots=True)
class Quantity(Node):
    """A value with a unit: `5 \\text{ cm}`, `90^\\circ`, `10 kg`."""

    value: Node
    unit: Unit


@dataclass(frozen=True, slots=True)
class Percent(Node):
    value: Node


# ------------------------------------------------------------------------------------------ tokenizer


@dataclass(frozen=True, slots=True)
class Tok:
    kind: str  # num word cmd op text end
    text: str
    space: bool = False  # whitespace right before this token


_GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta",
    "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "varrho", "sigma", "varsigma", "tau", "upsilon",
    "phi", "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma",
    "Upsilon", "Phi", "Psi", "Omega", "ell", "hbar",
}  # fmt: skip
FUNCS = {
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "arccot", "arcsec", "arccsc",
    "sinh", "cosh", "tanh", "coth", "ln", "log", "exp", "lg", "gcd", "lcm", "max", "min", "det",
    "sgn", "arg", "deg",
}  # fmt: skip
_TRIG_INVERSE = {
    "sin": "arcsin",
    "cos": "arccos",
    "tan": "arctan",
    "cot": "arccot",
    "sec": "arcsec",
    "csc": "arccsc",
}
_TEXT_CMDS = {
    "text", "textrm", "textnormal", "textbf", "textit", "textsf", "texttt", "mbox", "mathrm", "mathbf",
    "mathit", "mathsf", "mathtt", "boldsymbol", "bm", "operatorname", "hbox",
}  # fmt: skip
_DECOR_CMDS = {
    "vec",
    "overrightarrow",
    "overline",
    "hat",
    "bar",
    "tilde",
    "widehat",
    "widetilde",
    "dot",
    "ddot",
    "overleftrightarrow",
    "underline",
}
_SPACE_CMDS = {
    "quad",
    "qquad",
    ",",
    ";",
    ":",
    "!",
    " ",
    "displaystyle",
    "textstyle",
    "scriptstyle",
    "limits",
    "nolimits",
    "left.",
    "right.",
    "enspace",
    "thinspace",
    "medspace",
    "thickspace",
    "negthinspace",
    "mathstrut",
    "strut",
    "phantom",
    "hphantom",
    "vphantom",
    "$",
    "#",
}
_SIZE_CMDS = {
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
    "biggl",
    "biggr",
    "Biggl",
    "Biggr",
    "middle",
}
_OP_CMDS = {
    "cdot": "*", "times": "*", "ast": "*", "div": "/", "pm": "pm", "mp": "mp",
    "le": "<=", "leq": "<=", "leqslant": "<=", "ge": ">=", "geq": ">=", "geqslant": ">=", "ne": "!=",
    "neq": "!=", "lt": "<", "gt": ">", "approx": "approx", "simeq": "approx", "doteq": "approx",
    "thickapprox": "approx", "cup": "cup", "cap": "cap", "setminus": "setminus", "backslash": "setminus",
    "in": "in", "lbrace": "\\{", "rbrace": "\\}", "{": "\\{", "}": "\\}", "vert": "|", "lvert": "|",
    "rvert": "|", "mid": "|", "lfloor": "lfloor", "rfloor": "rfloor", "lceil": "lceil", "rceil": "rceil",
    "langle": "(", "rangle": ")", "%": "%", "circ": "circ", "degree": "circ", "to": "to", "rightarrow": "to",
    "infty": "inf", "infin": "inf", "emptyset": "empty", "varnothing": "empty", "O": "empty",
    "prime": "'", "lor": "or", "vee": "or", "land": "and", "wedge": "and", "colon": ":", "|": "|",
}  # fmt: skip
_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u00d7": "\\times ", "\u00b7": "\\cdot ", "\u22c5": "\\cdot ",
    "\u00f7": "\\div ", "\u2264": "\\leq ", "\u2265": "\\geq ", "\u2260": "\\neq ", "\u2248": "\\approx ",
    "\u03c0": "\\pi ", "\u221e": "\\infty ", "\u221a": "\\sqrt", "\u2205": "\\emptyset ", "\u00b0": "^\\circ ",
    "\u222a": "\\cup ", "\u2229": "\\cap ", "\u2208": "\\in ", "\u00b2": "^2", "\u00b3": "^3", "\u00b9": "^1",
    "\u00b1": "\\pm ", "\u2213": "\\mp ", "\u03b8": "\\theta ", "\u03b1": "\\alpha ", "\u03b2": "\\beta ",
    "\u2009": " ", "\u00a0": " ", "\u202f": " ", "\u2032": "'", "\u00bd": "\\frac{1}{2}", "\u00bc": "\\frac{1}{4}",
    "\u00be": "\\frac{3}{4}", "\u2205\ufe0e": "\\emptyset ", "\u2102": "\\mathbb{C}", "\u211d": "\\mathbb{R}",
}  # fmt: skip
_UNICODE_RE = re.compile("|".join(re.escape(k) for k in sorted(_UNICODE, key=len, reverse=True)))
_CMD_RE = re.compile(r"\\([A-Za-z]+|.)")
_NUM_RE = re.compile(r"\d+\.(?=\\overline)|(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+(?![\d.]))?")
_WORD_RE = re.compile(r"[A-Za-z]+")
_OPS = set("+-*/^_!=<>,;()[]{}|&':")
_DIGITS = set("0123456789")


def _read_braced(s: str, i: int) -> tuple[str, int]:
    """Content of the group opening at s[i] == '{' and the index after it."""
    depth = 0
    j = i
    while j < len(s):
        c = s[j]
        if c == "\\":
            j += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return s[i + 1 : j], j + 1
        j += 1
    raise LatexError("unbalanced braces")


def tokenize(s: str) -> list[Tok]:
    s = _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], s)
    out: list[Tok] = []
    i, n = 0, len(s)
    space = False
    while i < n:
        c = s[i]
        if c.isspace() or c == "~" or c == "$":
            space = True
            i += 1
            continue
        if c == "\\":
            m = _CMD_RE.match(s, i)
            if m is None:
                raise LatexError("dangling backslash")
            name = m.group(1)
            i = m.end()
            if name in _SPACE_CMDS or name in ("left", "right") and s.startswith(".", i):
                if name in ("left", "right"):
                    i += 1
                elif name in ("phantom", "hphantom", "vphantom") and s.startswith("{", i):
                    _, i = _read_braced(s, i)
                space = True
                continue
            if name in ("left", "right", "bigl", "bigr", "Bigl", "Bigr") and s.startswith("|", i):
                out.append(Tok("op", "|<" if name in ("left", "bigl", "Bigl") else "|>", space))
                i += 1
                space = False
                continue
            if name in ("left", "right") and s.startswith("\\vert", i):
                out.append(Tok("op", "|<" if name == "left" else "|>", space))
                i += 5
                space = False
                continue
            if name in ("lvert", "rvert"):
                out.append(Tok("op", "|<" if name == "lvert" else "|>", space))
                space = False
                continue
            if name in _SIZE_CMDS:
                continue
            glued = next((c for c in ("qquad", "quad") if name.startswith(c) and name != c), None)
            if glued is not None:  # \quadx_2: a space, then x_2
                i -= len(name) - len(glued)
                space = True
                continue
            if name in _TEXT_CMDS or name in ("mathbb", "mathcal", "mathfrak", "mathscr", "begin", "end"):
                while i < n and s[i] == " ":
                    i += 1
                if i < n and s[i] == "{":
                    content, i = _read_braced(s, i)
                elif i < n:
                    content, i = s[i], i + 1
                else:
                    raise LatexError(f"\\{name} without argument")
                out.append(Tok("text", f"{name}:{content}", space))
                space = False
                continue
            out.append(Tok("cmd", name, space))
            space = False
            continue
        if c in _DIGITS or (c == "." and i + 1 < n and s[i + 1] in _DIGITS):
            m = _NUM_RE.match(s, i)
            if m is None:
                raise LatexError(f"bad number at {s[i : i + 10]!r}")
            out.append(Tok("num", m.group(0), space))
            i = m.end()
            space = False
            continue
        if c.isascii() and c.isalpha():
            m = _WORD_RE.match(s, i)
            if m is None:
                raise LatexError(f"bad word at {s[i : i + 10]!r}")
            out.append(Tok("word", m.group(0), space))
            i = m.end()
            space = False
            continue
        if c in _OPS or c == "%":
            out.append(Tok("op", c, space))
            i += 1
            space = False
            continue
        if c == "\u2019" or c == "`":
            out.append(Tok("op", "'", space))
            i += 1
            continue
        raise LatexError(f"unexpected character {c!r}")
    out.append(Tok("end", "", space))
    return out


# --------------------------------------------------------------------------------------------- parser

_REL_OPS = {"=": "=", "<": "<", ">": ">", "<=": "<=", ">=": ">=", "!=": "!=", "approx": "approx", "in": "in"}
_UNSUPPORTED = {
    "sum", "prod", "int", "iint", "oint", "lim", "limsup", "liminf", "sup", "inf", "ldots", "cdots", "dots",
    "vdots", "ddots", "over", "choose", "partial", "nabla", "forall", "exists", "implies", "iff", "Rightarrow",
    "Leftrightarrow", "rightarrow", "to", "mapsto", "not", "neg", "subset", "subseteq", "supset", "perp",
    "parallel", "angle", "triangle", "square", "cong", "sim", "equiv", "pmod", "bmod", "mod", "hline",
    "overset", "underset", "stackrel", "xrightarrow", "color", "textcolor", "label", "tag", "notin", "ni",
}  # fmt: skip
_MATRIX_ENVS = {"pmatrix", "bmatrix", "Bmatrix", "vmatrix", "Vmatrix", "matrix", "smallmatrix", "array"}
_ONE = Num("1", Fraction(1))
_CONNECT_WORDS = {"and", "or"}


def _num(text: str) -> Num:
    if "e" in text or "E" in text:  # scientific notation: 1.5e-4
        mant, _, exp = text.replace("E", "e").partition("e")
        m = _num(mant)
        e = int(exp)
        if abs(e) > 400:
            raise LatexError("exponent out of range")
        places = (m.decimals or 0) - e
        return Num(text, m.value * Fraction(10) ** e, places)
    if "." in text and not text.endswith("."):
        ip, fp = text.split(".")
        return Num(text, Fraction(int(ip or "0")) + Fraction(int(fp), 10 ** len(fp)), len(fp))
    return Num(text, Fraction(int(text.rstrip("."))))


class _Parser:
    def __init__(self, toks: list[Tok]) -> None:
        self.toks = toks
        self.i = 0
        self.abs_depth = 0
        self.in_function = 0
        self.sub_depth = 0  # inside a subscript group, \\text{red} is a name

    # -- token helpers
    def peek(self, k: int = 0) -> Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> Tok:
        t = self.toks[self.i]
        if t.kind != "end":
            self.i += 1
        return t

    def at(self, kind: str, text: str | None = None) -> bool:
        t = self.peek()
        return t.kind == kind and (text is None or t.text == text)

    def at_op(self, *texts: str) -> bool:
        return _op_text(self.peek()) in texts

    def expect_op(self, text: str) -> None:
        t = self.next()
        if _op_text(t) != text:
            raise LatexError(f"expected {text!r}, got {t.text or 'end'!r}")

    def push_back(self, tok: Tok) -> None:
        self.toks.insert(self.i, tok)

    # -- answer level: items, relations, tails
    def relop(self) -> str | None:
        o = _op_text(self.peek())
        if o in ("<", ">", "!") and _op_text(self.peek(1)) == "=" and not self.peek(1).space:
            return {"<": "<=", ">": ">=", "!": "!="}[o]
        if o == "!":
            return None
        return _REL_OPS.get(o or "")

    def take_relop(self) -> str:
        o = self.relop()
        assert o is not None
        t = self.next()
        if _op_text(t) in ("<", ">", "!") and o in ("<=", ">=", "!="):
            self.next()
        return o

    def at_separator(self) -> bool:
        t = self.peek()
        if _op_text(t) in (",", ";"):
            return True
        if t.kind == "word" and t.text.lower() in _CONNECT_WORDS:
            return True
        return t.kind == "text" and _text_content(t.text).strip(" ,.").lower() in _CONNECT_WORDS

    def items(self, closers: tuple[str, ...]) -> list[Node]:
        """Items separated by commas, `and`, `or` up to a closer (not consumed); `;` groups them."""
        return self.items_sep(closers)[0]

    def items_sep(self, closers: tuple[str, ...]) -> tuple[list[Node], str]:
        groups: list[list[Node]] = [[self.item()]]
        last_sep = ","
        while self.at_separator():
            t = self.next()
            sep = (
                _op_text(t)
                or (t.text if t.kind == "word" else _text_content(t.text)).strip(" ,.").lower()
                or ","
            )
            while self.at_separator() and _op_text(self.peek()) != ";":
                t = self.next()  # ", and"
                if _op_text(t) is None:
                    sep = (t.text if t.kind == "word" else _text_content(t.text)).strip(" ,.").lower() or sep
            if self.at("end") or _op_text(self.peek()) in closers:
                break  # a trailing separator
            if sep == ";":
                groups.append([])
            elif sep in ("and", "or"):
                last_sep = sep
            groups[-1].append(self.item())
        if len(groups) == 1:
            return groups[0], last_sep
        return [g[0] if len(g) == 1 else Seq(tuple(g)) for g in groups], ";"

    def seq(self, closers: tuple[str, ...]) -> Node:
        items, sep = self.items_sep(closers)
        return items[0] if len(items) == 1 else Seq(tuple(items), sep)

    def item(self) -> Node:
        parts = [self.ratio()]
        ops: list[str] = []
        while self.relop() is not None:
            ops.append(self.take_relop())
            parts.append(self.ratio())
        node: Node = parts[0] if not ops else Rel(tuple(ops), tuple(parts))
        return self.tail(node)

    def ratio(self) -> Node:
        """A value, or a ratio / time `7:32`, `12:00`, `A:B`."""
        first = self.setexpr()
        if not self.at_op(":"):
            return first
        parts = [first]
        while self.at_op(":"):
            self.next()
            parts.append(self.setexpr())
        return Tup(tuple(parts), ":", ":")

    def tail(self, node: Node) -> Node:
        """A percent sign, a degree sign or a unit after the value (the last part of a relation)."""
        found = self.scan_unit(self.i)
        if self.at_op("%"):
            self.next()
            node = _wrap_last(node, Percent)
        elif found is not None:
            unit, self.i = found
            node = _wrap_last(node, lambda v: Quantity(v, unit))
        return node

    def scan_unit(self, j: int) -> tuple[Unit, int] | None:
        """A unit running from token j to the end of the item: \\text{} groups, unit words, powers."""
        pieces: list[str] = []
        wordy = False  # a \text group, a known unit word or a spaced word: not a product of variables
        toks = self.toks
        while True:
            t = toks[j]
            o = _op_text(t)
            if t.kind == "text":
                name, content = t.text.split(":", 1)
                if name in ("mathbb", "mathcal", "begin", "end"):
                    return None
                c = content.strip(" ~")
                if c.strip(" ,.").lower() in _CONNECT_WORDS:
                    break
                if c:
                    pieces.append(c)
                    wordy = True
                j += 1
            elif t.kind == "word":
                if t.text.lower() in _CONNECT_WORDS:
                    break
                if not pieces and not t.space and not is_unit_symbol(t.text):
                    return None  # 2x, 3ab: variables
                if not pieces and len(t.text) == 1 and t.text != "°":
                    return None  # 5 m: a lone letter outside \text is a variable
                pieces.append(t.text)
                wordy = wordy or is_unit_symbol(t.text) or (t.space and looks_like_word(t.text))
                j += 1
            elif o == "^" and _op_text(toks[j + 1]) == "circ":
                pieces.append("°")
                wordy = True
                j += 2
            elif (
                o == "^"
                and _op_text(toks[j + 1]) == "{"
                and _op_text(toks[j + 2]) == "circ"
                and _op_text(toks[j + 3]) == "}"
            ):
                pieces.append("°")
                wordy = True
                j += 4
            elif o == "circ" and (pieces or toks[j].space):
                pieces.append("°")
                wordy = True
                j += 1
            elif o == "^" and pieces:
                nt = toks[j + 1]
                if nt.kind == "num":
                    pieces.append("^" + nt.text[0])
                    j += 2
                elif _op_text(nt) == "{":
                    k = j + 2
                    body = []
                    while toks[k].kind != "end" and _op_text(toks[k]) != "}":
                        body.append(toks[k].text)
                        k += 1
                    pieces.append("^" + "".join(body))
                    j = k + 1
                elif _op_text(nt) == "-" and toks[j + 2].kind == "num":
                    pieces.append("^-" + toks[j + 2].text)
                    j += 3
                else:
                    return None
            elif o == "/" and pieces:
                pieces.append("/")
                j += 1
            elif o == "*" and pieces:
                pieces.append("*")
                j += 1
            elif t.kind == "cmd" and t.text in ("mu", "Omega"):
                pieces.append({"mu": "µ", "Omega": "Ω"}[t.text])
                j += 1
            else:
                break
        end = toks[j]
        if not pieces or not wordy:
            return None
        if not (
            end.kind == "end"
            or _op_text(end) in (",", ";", ")", "]", "\\}", "}", "%")
            or self._connector(end)
        ):
            return None
        unit = parse_unit(" ".join(pieces))
        return None if unit is None else (unit, j)

    @staticmethod
    def _connector(t: Tok) -> bool:
        if t.kind == "word":
            return t.text.lower() in _CONNECT_WORDS
        return t.kind == "text" and _text_content(t.text).strip(" ,.").lower() in _CONNECT_WORDS

    # -- arithmetic
    def setexpr(self) -> Node:
        left = self.arith()
        while _op_text(self.peek()) in ("cup", "cap", "setminus"):
            o = _op_text(self.next())
            assert o is not None
            left = SetOp(o, left, self.arith())
        return left

    def arith(self) -> Node:
        terms: list[Node] = [self.term()]
        while True:
            o = _op_text(self.peek())
            if o == "+":
                self.next()
                terms.append(self.term())
            elif o == "-":
                self.next()
                terms.append(Neg(self.term()))
            elif o in ("pm", "mp"):
                self.next()
                terms = [PlusMinus(_add(terms), self.term(), o == "mp")]
            else:
                return _add(terms)

    def starts_factor(self) -> bool:
        t = self.peek()
        if t.kind == "num":
            return True
        if t.kind == "word":
            return t.text.lower() not in _CONNECT_WORDS
        if t.kind == "text":
            name, content = t.text.split(":", 1)
            return (
                name in ("mathbb", "begin")
                or _text_symbol(name, content) is not None
                or (name == "operatorname" and content.strip() in FUNCS)
            )
        if t.kind == "cmd":
            o = _OP_CMDS.get(t.text)
            if o is None:
                return t.text not in ("\\", "to")
            return o in ("inf", "lfloor", "lceil", "\\{", "empty") or (o == "|" and self.abs_depth == 0)
        if t.kind == "op":
            return t.text in ("(", "[", "{", "|<") or (t.text == "|" and self.abs_depth == 0)
        return False

    def unit_ahead(self) -> bool:
        t = self.peek()
        if t.kind in ("word", "text") or (t.kind == "cmd" and t.text in ("mu", "Omega", "circ")):
            return self.scan_unit(self.i) is not None
        return False

    def term(self) -> Node:
        factors: list[Node] = [self.unary()]
        while True:
            o = _op_text(self.peek())
            if o == "*":
                self.next()
                factors.append(self.unary())
            elif o == "/":
                self.next()
                factors = [Div(_mul(factors), self.implicit_product())]
            elif self.starts_factor() and not self.unit_ahead():
                nxt = self.power()
                prev = factors[-1]
                if (
                    isinstance(prev, Num)
                    and prev.decimals is None
                    and isinstance(nxt, Div)
                    and nxt.frac
                    and isinstance(nxt.num, Num)
                    and nxt.num.decimals is None
                    and isinstance(nxt.den, Num)
                    and nxt.den.decimals is None
                    and nxt.den.value != 0
                    and len(factors) == 1
                ):  # a mixed number: 2\frac{1}{2}
                    text = f"{prev.text}\\frac{{{nxt.num.text}}}{{{nxt.den.text}}}"
                    factors[-1] = Num(text, prev.value + nxt.num.value / nxt.den.value)
                else:
                    factors.append(nxt)
            else:
                return _mul(factors)

    def implicit_product(self) -> Node:
        """The operand after `/`: a power and what juxtaposition multiplies to it (1/2x = 1/(2x))."""
        factors = [self.unary()]
        while self.starts_factor() and not self.unit_ahead():
            factors.append(self.power())
        return _mul(factors)

    def unary(self) -> Node:
        o = _op_text(self.peek())
        if o == "-":
            self.next()
            return Neg(self.unary())
        if o == "+":
            self.next()
            return self.unary()
        if o in ("pm", "mp"):
            self.next()
            return PlusMinus(None, self.unary(), o == "mp")
        return self.power()

    def at_degree(self) -> int:
        """Tokens of a degree sign here (`^\\circ`, `^{\\circ}`), else 0."""
        if not self.at_op("^"):
            return 0
        if _op_text(self.peek(1)) == "circ":
            return 2
        if (
            _op_text(self.peek(1)) == "{"
            and _op_text(self.peek(2)) == "circ"
            and _op_text(self.peek(3)) == "}"
        ):
            return 4
        return 0

    def power(self) -> Node:
        base = self.postfix(self.primary())
        while self.at_op("^"):
            k = self.at_degree()
            if k:
                if not self.in_function and self.scan_unit(self.i) is not None:
                    return base  # the unit tail reads it
                self.i += k  # an angle inside an expression: degrees are pi/180
                return Mul((base, Div(Const("pi"), Num("180", Fraction(180)))))
            self.next()
            base = self.postfix(Pow(base, self.tex_arg(allow_sign=True)))
        return base

    def postfix(self, node: Node) -> Node:
        while True:
            o = _op_text(self.peek())
            if o == "!" and _op_text(self.peek(1)) != "=":
                self.next()
                node = Func("factorial", (node,))
            elif o == "_" and not isinstance(node, Num):
                self.next()
                node = Sub(node, self.tex_arg(subscript=True))
            elif o == "'" and isinstance(node, Sym | Sub):
                self.next()
                node = Sym(_name(node) + "'")
            else:
                return node

    def tex_arg(self, *, allow_sign: bool = False, subscript: bool = False) -> Node:
        """One TeX argument: a group, or a single token (one digit of a number, one letter)."""
        t = self.peek()
        if t.kind == "op" and t.text == "{":
            self.next()
            self.sub_depth += subscript
            inner = self.group_body("}")
            self.sub_depth -= subscript
            self.expect_op("}")
            return inner
        if t.kind == "num":
            self.next()
            if len(t.text) > 1:
                if t.text[0] == ".":
                    raise LatexError("a decimal point as a TeX argument")
                self.push_back(Tok("num", t.text[1:]))
                return _num(t.text[0])
            return _num(t.text)
        if t.kind == "word":
            self.next()
            if len(t.text) > 1:
                self.push_back(Tok("word", t.text[1:]))
            return self.letter(t.text[0], subscript=subscript)
        o = _op_text(t)
        if allow_sign and o in ("-", "+"):
            self.next()
            inner = self.tex_arg()
            return Neg(inner) if o == "-" else inner
        if t.kind == "text" and subscript:
            self.next()
            return Sym(_text_content(t.text).strip())  # \\lambda_{\\text{red}}
        if t.kind in ("cmd", "text") and o is None:
            return self.primary()
        if o in ("inf",):
            self.next()
            return Const("inf")
        if allow_sign and o == "(":
            return self.primary()
        raise LatexError(f"missing argument at {t.text or 'end'!r}")

    def group_body(self, closer: str) -> Node:
        if self.at_op(closer):
            raise LatexError("empty group")
        return self.seq((closer,))

    def letter(self, ch: str, *, subscript: bool = False) -> Node:
        if not subscript and ch in ("e", "i"):
            return Const(ch)
        return Sym(ch)

    # -- primaries
    def primary(self) -> Node:
        t = self.peek()
        if t.kind == "num":
            return self.number()
        if t.kind == "word":
            return self.word()
        if t.kind == "text":
            return self.text_primary()
        o = _op_text(t)
        if t.kind == "op":
            if o in ("(", "["):
                return self.bracket(o)
            if o == "{":
                self.next()
                if self.at_op("}"):
                    self.next()
                    return EmptySet()
                inner = self.group_body("}")
                self.expect_op("}")
                return inner
            if o == "|":
                return self.abs_bars()
            if o == "|<":
                self.next()
                saved, self.abs_depth = self.abs_depth, 0
                inner = self.arith()
                self.abs_depth = saved
                if _op_text(self.next()) != "|>":
                    raise LatexError("unclosed \\left|")
                return Func("abs", (inner,))
        if t.kind == "cmd":
            return self.command()
        raise LatexError(f"unexpected {t.text or 'end of answer'!r}")

    def number(self) -> Node:
        t = self.next()
        if self.at("cmd", "overline") and _op_text(self.peek(1)) == "{" and "." in t.text:
            self.next()
            self.next()
            digits = self.next()
            self.expect_op("}")
            if digits.kind != "num" or not digits.text.isdigit():
                raise LatexError("bad repeating decimal")
            return _repeating(t.text, digits.text)
        node: Node = _num(t.text)
        if (
            t.text.isdigit()
            and self.at_op("_")
            and (self.peek(1).kind == "num" or _op_text(self.peek(1)) == "{")
        ):
            self.next()
            node = Sub(node, self.tex_arg(subscript=True))  # a number in base b: 204_5
        return node

    def abs_bars(self) -> Node:
        self.next()
        saved, self.abs_depth = self.abs_depth, self.abs_depth + 1
        inner = self.arith()
        self.abs_depth = saved
        if _op_text(self.peek()) != "|":
            raise LatexError("unclosed |")
        self.next()
        return Func("abs", (inner,))

    def bracket(self, opener: str) -> Node:
        self.next()
        saved, self.abs_depth = self.abs_depth, 0
        items = self.items((")", "]"))
        self.abs_depth = saved
        close = _op_text(self.next())
        if close not in (")", "]"):
            raise LatexError(f"unclosed {opener}")
        if len(items) == 1:
            if (opener == "(") != (close == ")"):
                raise LatexError("mismatched brackets")
            return items[0]
        return Tup(tuple(items), opener, close)

    def text_primary(self) -> Node:
        t = self.next()
        name, content = t.text.split(":", 1)
        c = content.strip()
        if name == "mathbb":
            return Reals() if c == "R" else Sym("mathbb(" + c + ")")
        if name == "begin":
            return self.environment(c)
        if name == "operatorname" and c in FUNCS:
            return self.function(c)
        sym = _text_symbol(name, content)
        if sym is None and self.sub_depth and re.fullmatch(r"[A-Za-z ]+", c):
            return Sym(c)
        if sym is None:
            raise LatexError(f"text inside an expression: {content!r}")
        return sym

    def environment(self, env: str) -> Node:
        env = env.rstrip("*")
        if env not in _MATRIX_ENVS:
            raise LatexError(f"environment {env}")
        if env == "array" and self.at_op("{"):  # the column spec
            while not self.at_op("}"):
                if self.at("end"):
                    raise LatexError("bad array")
                self.next()
            self.next()
        rows: list[list[Node]] = [[]]
        while True:
            t = self.peek()
            if t.kind == "text" and t.text.startswith("end:"):
                self.next()
                break
            if t.kind == "end":
                raise LatexError("unclosed environment")
            if t.kind == "cmd" and t.text == "\\":
                self.next()
                rows.append([])
            elif _op_text(t) == "&":
                self.next()
            else:
                rows[-1].append(self.arith())
        full = [r for r in rows if r]
        if not full or len({len(r) for r in full}) != 1:
            raise LatexError("ragged matrix")
        return Matrix(tuple(tuple(r) for r in full))

    def word(self) -> Node:
        w = self.next().text
        if w in FUNCS:
            return self.function(w)
        if w == "sqrt":
            return self.sqrt()
        if w == "pi":
            return Const("pi")
        if w in ("inf", "infty", "infinity", "oo"):
            return Const("inf")
        if w.lower() in _CONNECT_WORDS:
            raise LatexError("a connector inside an expression")
        if len(w) > 1:  # a run of letters is a product of one-letter variables: xy = x*y
            self.push_back(Tok("word", w[1:]))
        return self.letter(w[0])

    def command(self) -> Node:
        t = self.next()
        name = t.text
        o = _OP_CMDS.get(name)
        if name in ("frac", "dfrac", "tfrac", "cfrac"):
            num = self.tex_arg()
            return Div(num, self.tex_arg(), frac=True)
        if name in ("binom", "dbinom", "tbinom"):
            n = self.tex_arg()
            return Func("binom", (n, self.tex_arg()))
        if name == "sqrt":
            return self.sqrt()
        if name in FUNCS:
            return self.function(name)
        if name in ("pi", "uppi"):
            return Const("pi")
        if name == "imath":
            return Const("i")
        if name in _GREEK:
            return Sym(name)
        if name in _DECOR_CMDS:
            arg = self.tex_arg()
            return Sym(name + "(" + _name(arg) + ")")
        if o in ("lfloor", "lceil"):
            inner = self.arith()
            if _op_text(self.next()) != ("rfloor" if o == "lfloor" else "rceil"):
                raise LatexError(f"unclosed \\{name}")
            return Func("floor" if o == "lfloor" else "ceil", (inner,))
        if o == "|":
            self.i -= 1
            return self.abs_bars()
        if o == "\\{":
            if _op_text(self.peek()) == "\\}":
                self.next()
                return EmptySet()
            items = self.items(("\\}",))
            if _op_text(self.next()) != "\\}":
                raise LatexError("unclosed \\{")
            return SetLit(tuple(items))
        if o == "inf":
            return Const("inf")
        if o == "empty":
            return EmptySet()
        if name in ("boxed", "fbox"):
            return self.tex_arg()
        if name in _UNSUPPORTED or not name.isalpha():
            raise LatexError(f"unsupported command \\{name}")
        return Sym(name)  # an unknown name (\\zeta_3, \\aleph): a symbol of its own

    def sqrt(self) -> Node:
        index: Node | None = None
        if self.at_op("["):
            self.next()
            index = self.arith()
            self.expect_op("]")
        return Root(self.tex_arg(), index)

    def function(self, name: str) -> Node:
        power: Node | None = None
        base: Node | None = None
        while (self.at_op("^") and power is None) or (self.at_op("_") and base is None):
            if _op_text(self.next()) == "^":
                power = self.tex_arg(allow_sign=True)
            else:
                base = self.tex_arg(subscript=True)
        if name == "lg":
            name, base = "log", base or Num("10", Fraction(10))
        if name in ("gcd", "lcm", "max", "min"):
            if not self.at_op("("):
                return Sym(name)  # m_{\\max}: a name
            self.expect_op("(")
            items = self.items((")",))
            self.expect_op(")")
            return Func(name, tuple(items))
        self.in_function += 1
        if self.at_op("("):
            self.next()
            arg = self.arith()
            self.expect_op(")")
        else:  # no parentheses: the argument is the juxtaposed factors (\sin 2x = sin(2x))
            factors = [self.power()]
            while self._plain_factor_ahead():
                factors.append(self.power())
            arg = _mul(factors)
        self.in_function -= 1
        if isinstance(power, Neg) and power.arg == _ONE and name in _TRIG_INVERSE:
            return Func(_TRIG_INVERSE[name], (arg,))
        node: Node = Func(name, (arg,), base)
        if power is not None:
            node = Pow(node, power)
        while self.at_op("^") and not self.at_degree():
            self.next()
            node = Pow(node, self.tex_arg(allow_sign=True))
        return node

    def _plain_factor_ahead(self) -> bool:
        t = self.peek()
        if t.kind == "num":
            return True
        if t.kind == "word":
            return t.text not in FUNCS and t.text.lower() not in _CONNECT_WORDS and not self.unit_ahead()
        return t.kind == "cmd" and (t.text in _GREEK or t.text == "pi")


def _repeating(head: str, rep: str) -> Num:
    ip, _, fp = head.partition(".")
    fixed = Fraction(int(ip or "0")) + (Fraction(int(fp), 10 ** len(fp)) if fp else 0)
    period = Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(fp))
    return Num(head + "\\overline{" + rep + "}", fixed + period)


def _op_text(t: Tok) -> str | None:
    if t.kind == "op":
        return t.text
    if t.kind == "cmd":
        return _OP_CMDS.get(t.text)
    return None


def _wrap_last(node: Node, wrap: Callable[[Node], Node]) -> Node:
    """Wrap the value of an item, or the last part of a relation (x = 5 cm)."""
    if isinstance(node, Rel):
        return Rel(node.ops, (*node.parts[:-1], wrap(node.parts[-1])))
    return wrap(node)


def _text_content(tok_text: str) -> str:
    return tok_text.split(":", 1)[1]


_LETTER_CMDS = {
    "mathbf",
    "boldsymbol",
    "bm",
    "mathit",
    "textbf",
    "mathrm",
    "mathsf",
    "text",
    "textrm",
    "textnormal",
    "mbox",
}


def _text_symbol(name: str, content: str) -> Node | None:
    """What a \\text/\\mathrm/\\mathbf group means inside an expression: a symbol or a number, else None."""
    c = content.strip()
    if re.fullmatch(r"[A-Za-z]", c) and name in _LETTER_CMDS:
        if name in ("mathrm", "text", "textrm", "textnormal", "mbox"):
            return Const(c) if c in ("e", "i") else Sym(c)
        return Sym(c if name == "mathit" else f"vec({c})")
    if re.fullmatch(r"\d+(?:\.\d+)?", c):
        return _num(c)
    return None


def _name(n: Node) -> str:
    if isinstance(n, Sym):
        return n.name
    if isinstance(n, Const):
        return n.name
    if isinstance(n, Num):
        return n.text
    if isinstance(n, Sub):
        return _name(n.base) + "_" + _name(n.index)
    if isinstance(n, Mul):
        return "".join(_name(f) for f in n.factors)
    raise LatexError("a decoration over an expression")


def _add(terms: list[Node]) -> Node:
    return terms[0] if len(terms) == 1 else Add(tuple(terms))


def _mul(factors: list[Node]) -> Node:
    return factors[0] if len(factors) == 1 else Mul(tuple(factors))


# ------------------------------------------------------------------------------------------ entry points

_THOUSANDS_RE = re.compile(r"[-+]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?")
_SPACED_THOUSANDS_RE = re.compile(r"[-+]?\d{1,3}(?:[ \u2009\u202f]\d{3})+(?:\.\d+)?")
_DECIMAL_COMMA_RE = re.compile(r"[-+]?(?:\d+,(?:\d{1,2}|\d{4,})|0,\d+)")


def is_decimal_comma(text: str) -> bool:
    """`1,22` or `0,111`: a decimal comma when the other answer is one number."""
    return _DECIMAL_COMMA_RE.fullmatch(text.strip()) is not None


def parse_answer(text: str, *, decimal_comma: bool = False) -> Node:
    """The tree of one cleaned answer; raises LatexError.

    `decimal_comma`: read a lone `3,5` as 3.5 (used when the other answer is a single number).
    """
    s = text.strip()
    if not s:
        raise LatexError("empty")
    if _THOUSANDS_RE.fullmatch(s) or _SPACED_THOUSANDS_RE.fullmatch(s):
        s = re.sub(r"[, \u2009\u202f]", "", s)
    elif decimal_comma and _DECIMAL_COMMA_RE.fullmatch(s):
        s = s.replace(",", ".")
    p = _Parser(tokenize(s))
    node = p.seq(())
    if not p.at("end"):
        raise LatexError(f"unexpected {p.peek().text!r}")
    return node


def parse_expression(text: str) -> Node:
    node = parse_answer(text)
    if isinstance(node, Seq):
        raise LatexError("a list where one value was expected")
    return node
