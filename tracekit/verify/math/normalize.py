"""Turn an extracted answer into a clean LaTeX string, and plain numbers into exact values.

Normalisation removes what never changes the value: math delimiters, `\\left`/`\\right`, spacing
commands, `\\dfrac`-style variants, currency, degree signs, units written as text, trailing periods. A
percent sign is removed but remembered (28% matches 28 and 0.28).

Example:
    >>> clean_answer(r"$\\dfrac{1}{2}\\text{ m}$").text
    '\\\\frac{1}{2}'
    >>> parse_plain_number("7,425,000").value
    Fraction(7425000, 1)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

_UNIT_TEXT_RE = re.compile(
    r"\\(?:text|textnormal|mbox|mathrm|textrm|textit|textbf|mathbf|operatorname)\s*\{([^{}]*)\}"
)
_SPACING_RE = re.compile(
    r"(?<!\\)\\(?:quad|qquad|;|:|,| |displaystyle|textstyle|limits|nolimits)(?![A-Za-z])|~"
)
_DEGREE_RE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|°|\\degree(?![A-Za-z])|\^\s*\{\s*o\s*\}")
_PERCENT_RE = re.compile(r"\s*(?:\\%|%|\\text\{\s*\\?%\s*\}|\bpercentage\b|\bpercent\b|\bpct\b)\s*$")
_UNITS_TAIL_RE = re.compile(r"^(?P<num>.*?\d\}?)\s+(?:[a-zA-Z]{2,}\.?(?:\^\{?\d\}?)?\s*){1,3}$")
_CONNECTOR_RE = re.compile(r"\\text\{\s*(?:and|or|,)\s*\}|(?<![A-Za-z\\])(?:and|or)(?![A-Za-z])")


@dataclass(frozen=True, slots=True)
class CleanAnswer:
    text: str
    percent: bool = False
    is_text: bool = False  # the whole answer was \text{...}: compare as words


def _strip_delims(s: str) -> str:
    s = s.strip()
    changed = True
    while changed:
        changed = False
        for a, b in (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)")):
            if s.startswith(a) and s.endswith(b) and len(s) >= len(a) + len(b):
                s = s[len(a) : len(s) - len(b)].strip()
                changed = True
    return s


def _remove_left_right(s: str) -> str:
    s = re.sub(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big)\s*\.", "", s)
    return re.sub(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big)(?![A-Za-z])\s*", "", s)


def clean_answer(raw: str) -> CleanAnswer:
    """Normalise one extracted answer (see the module docstring)."""
    s = raw.strip().replace("**", "")
    s = (
        s.replace("\u2212", "-")
        .replace("\\dfrac", "\\frac")
        .replace("\\tfrac", "\\frac")
        .replace("\\cfrac", "\\frac")
    )
    s = s.replace("\\dbinom", "\\binom").replace("\\tbinom", "\\binom")
    s = re.sub(r",\\!\s*", ",", s)  # 11,\! 111 is one number
    s = s.replace("{,}", ",").replace("\\!", "")
    s = _strip_delims(s)
    s = s.replace("$", " ").replace("\\$", " ") if "$" in s else s
    s = re.sub(r"(?<!\\)\\ ", " ", s)
    s = re.sub(r"\\(?:euro|pounds?|yen)(?![A-Za-z])|€|£|¥", " ", s)
    s = _remove_left_right(s)
    s = re.sub(r"\\begin\{(?:bmatrix|Bmatrix|vmatrix|matrix|smallmatrix)\}", r"\\begin{pmatrix}", s)
    s = re.sub(r"\\end\{(?:bmatrix|Bmatrix|vmatrix|matrix|smallmatrix)\}", r"\\end{pmatrix}", s)
    s = re.sub(r"\\begin\{array\}\{[^{}]*\}", r"\\begin{pmatrix}", s).replace(
        "\\end{array}", "\\end{pmatrix}"
    )
    s = re.sub(r"^[(\[]\s*(\\begin\{pmatrix\}.*\\end\{pmatrix\})\s*[)\]]$", r"\1", s.strip(), flags=re.S)
    s = re.sub(r"(?:\\\\\s*)+\\end\{pmatrix\}", r"\\end{pmatrix}", s)
    s = _SPACING_RE.sub(" ", s)
    s = s.replace("\\le ", "\\leq ").replace("\\ge ", "\\geq ")
    s = re.sub(r"\\le(?![a-zA-Z])", r"\\leq", s)
    s = re.sub(r"\\ge(?![a-zA-Z])", r"\\geq", s)
    s = s.replace(">=", "\\geq ").replace("<=", "\\leq ").replace("!=", "\\neq ")
    s = s.replace("\\lt", "<").replace("\\gt", ">")
    s = _DEGREE_RE.sub("", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = s.rstrip("\\").strip()
    s = re.sub(r"[.。]+$", "", s).strip()
    # the whole answer written as text: \text{Evelyn}, \textbf{A}
    m = re.fullmatch(r"\\(?:text|textbf|mathrm|textnormal|mbox|mathbf|textit)\s*\{([^{}]*)\}", s)
    if m:
        inner = m.group(1).strip()
        if not re.fullmatch(r"[-+]?\d+(?:\.\d+)?", inner):
            return CleanAnswer(text=inner, is_text=True)
        s = inner
    s = _CONNECTOR_RE.sub(",", s)
    percent = False
    pm = _PERCENT_RE.search(s)
    if pm:
        percent = True
        s = s[: pm.start()].strip()
    # units written as text after the value: 15\mbox{ cm}^2, 10\text{ units}, 125 miles
    braces = re.fullmatch(r"(\\?\{)(.*?)(\\?\})", s)
    if braces and "," in s:
        s = braces.group(2)
    if "," in s and "\\begin" not in s and re.search(r"\d\s*[a-zA-Z\\]", s):
        items = [_strip_units(x) for x in s.split(",")]
        s = ",".join(x for x, _ in items)
        percent = percent or all(pc for _, pc in items)
    elif re.search(r"\d", s):
        s, pc = _strip_units(s)
        percent = percent or pc
    if braces and "," in braces.group(2):
        s = "\\{" + s + "\\}"
    s = re.sub(r"^\s*,|,\s*$", "", s).strip()
    s = re.sub(r"\s*,\s*,\s*", ", ", s)
    return CleanAnswer(text=s, percent=percent)


def _strip_units(s: str) -> tuple[str, bool]:
    s = s.strip()
    s2 = re.sub(r"\s*" + _UNIT_TEXT_RE.pattern + r"(?:\s*\^\s*\{?\d\}?)?", "", s).strip()
    if s2 and re.search(r"\d\}?\s*$", s2):
        s = s2
    m2 = _UNITS_TAIL_RE.match(s) if len(s) <= 200 else None
    if m2 and not re.search(r"\\[A-Za-z]+\s*$", s) and re.fullmatch(r"[-\d.,/\s]+", m2.group("num")):
        s = m2.group("num").strip()
    pm = _PERCENT_RE.search(s)
    if pm:
        return s[: pm.start()].strip(), True
    return s, False


@dataclass(frozen=True, slots=True)
class PlainNumber:
    """An exact value; `decimals` is the number of places when it was written as a decimal."""

    value: Fraction
    decimals: int | None = None


_INT = r"(?:\d{1,3}(?:,\d{3})+|\d{1,3}(?: \d{3})+|\d+)"
_NUM_RE = re.compile(rf"^(?P<sign>[-+]?)\s*(?P<int>{_INT})?(?:\.(?P<frac>\d+))?$")
_DECIMAL_COMMA_RE = re.compile(r"^(?P<sign>[-+]?)(?P<int>\d+),(?P<frac>\d{1,2}|0*\d{4,})$")
_ZERO_COMMA_RE = re.compile(r"^(?P<sign>[-+]?)0,(?P<frac>\d{3})$")
_SCI_RE = re.compile(
    r"^(?P<m>[-+]?[\d.]+)\s*(?:\\times|\\cdot|\*|x)\s*10\s*\^\s*\{?\s*(?P<e>[-+]?\d+)\s*\}?$"
)
_E_RE = re.compile(r"^(?P<m>[-+]?\d+(?:\.\d+)?)[eE](?P<e>[-+]?\d+)$")
_FRAC_RE = re.compile(
    r"^(?P<sign>[-+]?)\s*\\frac\s*(?:\{(?P<a>[^{}]+)\}|(?P<a1>\d))\s*(?:\{(?P<b>[^{}]+)\}|(?P<b1>\d))$"
)
_SLASH_RE = re.compile(r"^(?P<a>[-+]?[\d.]+)\s*/\s*(?P<b>[-+]?[\d.]+)$")
_MIXED_RE = re.compile(r"^(?P<sign>-?)(?P<w>\d+)\s*\\frac\s*\{(?P<a>\d+)\}\s*\{(?P<b>\d+)\}$")


def _decimal(s: str) -> PlainNumber | None:
    s = s.strip()
    if s.startswith("(") and s.endswith(")") and "," not in s:
        s = s[1:-1].strip()
    m = _ZERO_COMMA_RE.match(s)
    if m:
        fp = m.group("frac")
        val = Fraction(int(fp), 10 ** len(fp))
        return PlainNumber(-val if m.group("sign") == "-" else val, len(fp))
    m = _NUM_RE.match(s)
    if m and (m.group("int") or m.group("frac")):
        ip = (m.group("int") or "0").replace(",", "").replace(" ", "")
        fp = m.group("frac")
        val = Fraction(int(ip)) + (Fraction(int(fp), 10 ** len(fp)) if fp else 0)
        return PlainNumber(-val if m.group("sign") == "-" else val, len(fp) if fp else None)
    m = _DECIMAL_COMMA_RE.match(s) or _ZERO_COMMA_RE.match(s)
    if m:
        ip = m.groupdict().get("int") or "0"
        fp = m.group("frac")
        val = Fraction(int(ip)) + Fraction(int(fp), 10 ** len(fp))
        return PlainNumber(-val if m.group("sign") == "-" else val, len(fp))
    return None


def parse_plain_number(s: str) -> PlainNumber | None:
    """An exact value for integers, decimals, fractions, mixed numbers and scientific notation, else None."""
    s = s.strip().replace("{,}", ",")
    if not s or len(s) > 60:
        return None
    n = _decimal(s)
    if n is not None:
        return n
    m = _FRAC_RE.match(s)
    if m:
        a = _decimal(m.group("a") or m.group("a1"))
        b = _decimal(m.group("b") or m.group("b1"))
        if a is not None and b is not None and b.value != 0:
            v = a.value / b.value
            return PlainNumber(-v if m.group("sign") == "-" else v)
        return None
    m = _MIXED_RE.match(s)
    if m:
        if not int(m.group("b")):
            return None
        v = int(m.group("w")) + Fraction(int(m.group("a")), int(m.group("b")))
        return PlainNumber(-v if m.group("sign") else v)
    m = _SLASH_RE.match(s)
    if m:
        a, b = _decimal(m.group("a")), _decimal(m.group("b"))
        if a is not None and b is not None and b.value != 0:
            return PlainNumber(a.value / b.value)
        return None
    m = _SCI_RE.match(s) or _E_RE.match(s)
    if m:
        mant = _decimal(m.group("m"))
        e = int(m.group("e"))
        if mant is not None and abs(e) <= 400:
            places = (mant.decimals or 0) - e
            return PlainNumber(mant.value * Fraction(10) ** e, places if places > 0 else None)
    return None
