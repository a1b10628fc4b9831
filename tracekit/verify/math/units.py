"""Units written after a value: what they are, and the exact SI conversions between common ones.

Policy (docs/verification.md): a bare number matches a number with a unit (the unit was omitted); the
same number with a different unit is wrong, unless an exact conversion between common SI units (with
their prefixes, litres, minutes/hours/days, degrees/radians) makes the two quantities equal. Words that
are not known units ("apples", "dollars") only match the same word (singular or plural); "units" and
"square units" are placeholders that mean no unit.

Example:
    >>> parse_unit("cm^2").factors
    (('cm', 2),)
    >>> si_scale(parse_unit("km/h")) == si_scale(parse_unit("m/s"))
    False
    >>> si_scale(parse_unit("km"))[1]
    Fraction(1000, 1)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

# dimensions: metre, kilogram, second, ampere, kelvin, mole, candela, angle (radian)
Dims = tuple[int, int, int, int, int, int, int, int]


def _d(
    m: int = 0, kg: int = 0, s: int = 0, a: int = 0, k: int = 0, mol: int = 0, cd: int = 0, rad: int = 0
) -> Dims:
    return (m, kg, s, a, k, mol, cd, rad)


_PREFIX = {
    "k": Fraction(1000), "c": Fraction(1, 100), "m": Fraction(1, 1000), "µ": Fraction(1, 10**6),
    "u": Fraction(1, 10**6), "n": Fraction(1, 10**9), "M": Fraction(10**6), "G": Fraction(10**9),
    "d": Fraction(1, 10), "p": Fraction(1, 10**12),
}  # fmt: skip

# symbol -> (dimensions, scale to SI, power of pi in the scale)
_BASE: dict[str, tuple[Dims, Fraction, int]] = {
    "m": (_d(m=1), Fraction(1), 0),
    "g": (_d(kg=1), Fraction(1, 1000), 0),
    "s": (_d(s=1), Fraction(1), 0),
    "A": (_d(a=1), Fraction(1), 0),
    "K": (_d(k=1), Fraction(1), 0),
    "mol": (_d(mol=1), Fraction(1), 0),
    "L": (_d(m=3), Fraction(1, 1000), 0),
    "N": (_d(m=1, kg=1, s=-2), Fraction(1), 0),
    "J": (_d(m=2, kg=1, s=-2), Fraction(1), 0),
    "W": (_d(m=2, kg=1, s=-3), Fraction(1), 0),
    "Pa": (_d(m=-1, kg=1, s=-2), Fraction(1), 0),
    "Hz": (_d(s=-1), Fraction(1), 0),
    "V": (_d(m=2, kg=1, s=-3, a=-1), Fraction(1), 0),
    "Ω": (_d(m=2, kg=1, s=-3, a=-2), Fraction(1), 0),
}
_PREFIXABLE = {"m", "g", "s", "A", "L", "N", "J", "W", "Pa", "Hz", "V", "Ω", "mol"}
_OTHER: dict[str, tuple[Dims, Fraction, int]] = {
    "min": (_d(s=1), Fraction(60), 0),
    "h": (_d(s=1), Fraction(3600), 0),
    "day": (_d(s=1), Fraction(86400), 0),
    "°": (_d(rad=1), Fraction(1, 180), 1),
    "rad": (_d(rad=1), Fraction(1), 0),
}
_ALIASES = {
    "meter": "m", "metre": "m", "kilometer": "km", "kilometre": "km", "centimeter": "cm", "centimetre": "cm",
    "millimeter": "mm", "millimetre": "mm", "micrometer": "µm", "nanometer": "nm", "gram": "g",
    "kilogram": "kg", "milligram": "mg", "second": "s", "sec": "s", "minute": "min", "hour": "h", "hr": "h",
    "liter": "L", "litre": "L", "l": "L", "milliliter": "mL", "millilitre": "mL", "ml": "mL", "newton": "N",
    "joule": "J", "kilojoule": "kJ", "watt": "W", "kilowatt": "kW", "pascal": "Pa", "hertz": "Hz",
    "kelvin": "K", "degree": "°", "deg": "°", "radian": "rad", "ampere": "A", "amp": "A", "volt": "V",
    "ohm": "Ω", "mole": "mol", "days": "day", "d": "day", "um": "µm", "μm": "µm", "msec": "ms", "mins": "min",
    "hrs": "h", "secs": "s", "kph": "km/h",
}  # fmt: skip
_PLACEHOLDERS = {"unit", "units", "u"}
_POWER_WORDS = {"square": 2, "sq": 2, "cubic": 3, "cu": 3}


def _known(sym: str) -> tuple[Dims, Fraction, int] | None:
    if sym in _BASE:
        return _BASE[sym]
    if sym in _OTHER:
        return _OTHER[sym]
    for p, scale in _PREFIX.items():
        rest = sym[len(p) :]
        if sym.startswith(p) and rest in _PREFIXABLE:
            dims, base, pi = _BASE[rest]
            return dims, base * scale, pi
    return None


def _canonical_symbol(word: str) -> str | None:
    """The unit symbol a word or symbol stands for (meters -> m, kg -> kg), else None."""
    if _known(word) is not None:
        return word
    low = word.lower()
    for w in (low, low[:-1] if low.endswith("s") else low, low[:-2] if low.endswith("es") else low):
        if w in _ALIASES:
            return _ALIASES[w]
    if low in ("kph",):
        return None
    return None


def is_unit_symbol(word: str) -> bool:
    """A known unit symbol or unit word (`cm`, `kg`, `meters`; not a one-letter variable)."""
    return (
        len(word) > 1 and _canonical_symbol(word) is not None and "/" not in (_canonical_symbol(word) or "")
    )


def looks_like_word(word: str) -> bool:
    """An English-looking word (three letters or more with a vowel): `miles`, `apples`, not `xyz`."""
    return len(word) >= 3 and re.search(r"[aeiouy]", word.lower()) is not None


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit: `text` as written (normalised), `factors` = canonical symbols (or `word:...`) with powers."""

    text: str
    factors: tuple[tuple[str, int], ...]

    @property
    def is_placeholder(self) -> bool:
        """ "units", "square units": no unit at all."""
        return not self.factors


_TOKEN_RE = re.compile(r"(°\s*[CF]\b|[^\W\d_]+|[µμΩ°Å]+)\s*(?:\^\s*\{?\s*([-+]?\d+)\s*\}?)?|(/|\bper\b)|(\*)")


def _clean(text: str) -> str:
    t = re.sub(r"\\(?:text|mathrm|textrm|mbox|mathit|textit|operatorname)\s*", "", text)
    t = re.sub(r"\\[,;:! ]|~|\$|\\cdot|\\times|·", " ", t)
    t = (
        t.replace("\\mu", "µ")
        .replace("\\Omega", "Ω")
        .replace("\\circ", "°")
        .replace("{", "")
        .replace("}", "")
    )
    t = t.replace("μ", "µ")
    return re.sub(r"\s+", " ", t).strip(" .,")


def parse_unit(text: str) -> Unit | None:
    """The unit written in `text` (`cm^2`, `km/h`, `square meters`, `\\text{ apples}`), or None."""
    t = _clean(text)
    if not t or len(t) > 40:
        return None
    factors: dict[str, int] = {}
    sign = 1
    pending_power = 1
    pos = 0
    words: list[str] = []
    for m in _TOKEN_RE.finditer(t):
        if t[pos : m.start()].strip():
            return None  # something that is not a unit (digits, symbols)
        pos = m.end()
        if m.group(3):
            sign = -1
            continue
        if m.group(4):
            continue
        raw = re.sub(r"\s+", "", m.group(1))
        power = int(m.group(2)) if m.group(2) else 1
        low = raw.lower()
        if low in _POWER_WORDS:
            pending_power = _POWER_WORDS[low]
            continue
        if low in _PLACEHOLDERS:
            pending_power = 1
            continue
        sym = _canonical_symbol(raw)
        if sym == "km/h":
            for s, pw in (("km", 1), ("h", -1)):
                factors[s] = factors.get(s, 0) + sign * pw * power * pending_power
            pending_power = 1
            continue
        if sym is None:
            if raw in ("°C", "°F") or raw.startswith("°"):
                sym = "word:" + raw.replace(" ", "").lower()
            elif not re.fullmatch(r"[^\W\d_]+", raw):
                return None
            else:
                w = low[:-1] if low.endswith("s") and len(low) > 3 and not low.endswith("ss") else low
                sym = "word:" + w
                words.append(w)
        factors[sym] = factors.get(sym, 0) + sign * power * pending_power
        pending_power = 1
    if t[pos:].strip():
        return None
    fs = tuple(sorted((k, v) for k, v in factors.items() if v != 0))
    return Unit(text=t, factors=fs)


def si_scale(unit: Unit) -> tuple[Dims, Fraction, int] | None:
    """(dimensions, exact factor to SI, power of pi in the factor), or None when a factor is not an SI unit."""
    dims = [0] * 8
    scale = Fraction(1)
    pi = 0
    for sym, power in unit.factors:
        known = _known(sym)
        if known is None:
            return None
        d, s, p = known
        for k in range(8):
            dims[k] += d[k] * power
        scale *= s**power
        pi += p * power
    return tuple(dims), scale, pi  # type: ignore[return-value]
