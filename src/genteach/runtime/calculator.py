"""A safe calculator: arithmetic with units, read by a small parser (never ``eval``).

The teacher may call it as a tool (:class:`CalculatorTool`), and verifiers use it to check
every ``<expression> = <result>`` step of a written estimate (:func:`find_steps`,
:func:`check_step`). Numbers stay exact (fractions) until a function or a constant makes them
floats; every input is bounded in length, nesting depth and the size of exact results, so a
hostile expression fails fast with one line that names the position (counted from 1).

Example::

    >>> str(evaluate("60 mph * 2 h to km"))
    '193.12128 km'
    >>> check_step("350 million * 0.3", "105 million").right
    True

See ``docs/calculator.md`` for the grammar and the units.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from genteach.models.base import ToolSpec
from genteach.runtime.tools import ToolError

#: The longest expression accepted, in characters.
MAX_LENGTH = 1000
#: The deepest nesting of parentheses, signs and powers.
MAX_DEPTH = 64
#: Exact results larger than this many bits (numerator or denominator) become floats.
MAX_EXACT_BITS = 4096
#: The largest power of ten a number may be written with (``1e1000``).
MAX_LITERAL_EXPONENT = 1000
#: The largest power a unit may carry (``m^20``).
MAX_UNIT_POWER = 20
#: The most digits ``round`` rounds to.
MAX_ROUND_DIGITS = 30

Number = Fraction | float
Dims = tuple[int, ...]


class CalculatorError(ValueError):
    """An expression could not be read or computed; the message is one line that names
    what was wrong and where (a character position counted from 1)."""


# ---------------------------------------------------------------------------------------
# Dimensions and units

#: The base dimensions, by their SI unit (and the currency, USD, as its own dimension).
_BASES = ("m", "kg", "s", "A", "K", "mol", "cd", "USD")


def _dims(
    L: int = 0, M: int = 0, T: int = 0, A: int = 0, K: int = 0, N: int = 0, J: int = 0, C: int = 0
) -> Dims:
    return (L, M, T, A, K, N, J, C)


_PLAIN = _dims()
_TIME = _dims(T=1)
_ENERGY = _dims(M=1, L=2, T=-2)
_POWER = _dims(M=1, L=2, T=-3)

_DIMENSION_NAMES: dict[Dims, str] = {
    _PLAIN: "plain number",
    _dims(L=1): "length",
    _dims(M=1): "mass",
    _TIME: "time",
    _dims(A=1): "current",
    _dims(K=1): "temperature",
    _dims(N=1): "amount of substance",
    _dims(J=1): "luminous intensity",
    _dims(C=1): "money",
    _dims(L=2): "area",
    _dims(L=3): "volume",
    _dims(L=1, T=-1): "speed",
    _dims(L=1, T=-2): "acceleration",
    _ENERGY: "energy",
    _POWER: "power",
    _dims(M=1, L=1, T=-2): "force",
    _dims(M=1, L=-1, T=-2): "pressure",
    _dims(T=-1): "frequency",
    _dims(C=1, T=-1): "money per time",
    _dims(M=1, L=-3): "density",
}

_PREFIXES: dict[str, Fraction] = {
    "T": Fraction(10**12),
    "G": Fraction(10**9),
    "M": Fraction(10**6),
    "k": Fraction(10**3),
    "d": Fraction(1, 10),
    "c": Fraction(1, 100),
    "m": Fraction(1, 10**3),
    "u": Fraction(1, 10**6),
    "µ": Fraction(1, 10**6),
    "μ": Fraction(1, 10**6),
    "n": Fraction(1, 10**9),
}
_MICRO = ("u", "µ", "μ")


def _atoms() -> dict[str, tuple[Fraction, Dims]]:
    """Every unit symbol the calculator knows: its size in SI base units and its dims."""
    table: dict[str, tuple[Fraction, Dims]] = {}

    def add(
        name: str, scale: Fraction | int | str, dims: Dims, prefixes: tuple[str, ...] = ()
    ) -> None:
        for prefix in ("", *prefixes):
            symbol = prefix + name
            assert symbol not in table, symbol
            table[symbol] = (Fraction(scale) * (_PREFIXES[prefix] if prefix else 1), dims)

    year = 365 * 86400
    add("m", 1, _dims(L=1), ("k", "c", "m", "n", *_MICRO))
    add("g", Fraction(1, 1000), _dims(M=1), ("k", "m", *_MICRO))
    add("s", 1, _TIME, ("m", "n", *_MICRO))
    add("A", 1, _dims(A=1), ("k", "m"))
    add("K", 1, _dims(K=1))
    add("mol", 1, _dims(N=1), ("k", "m"))
    add("cd", 1, _dims(J=1))
    add("USD", 1, _dims(C=1))
    add("L", Fraction(1, 1000), _dims(L=3), ("m", "c", "d"))
    add("J", 1, _ENERGY, ("k", "M", "G", "T"))
    add("Wh", 3600, _ENERGY, ("k", "M", "G", "T"))
    add("cal", "4.184", _ENERGY, ("k",))
    add("W", 1, _POWER, ("m", "k", "M", "G", "T"))
    add("N", 1, _dims(M=1, L=1, T=-2), ("k",))
    add("Pa", 1, _dims(M=1, L=-1, T=-2), ("k", "M"))
    add("Hz", 1, _dims(T=-1), ("k", "M", "G"))
    add("min", 60, _TIME)
    add("h", 3600, _TIME)
    add("day", 86400, _TIME)
    add("week", 7 * 86400, _TIME)
    add("year", year, _TIME)
    add("month", Fraction(year, 12), _TIME)
    add("mile", "1609.344", _dims(L=1))
    add("yd", "0.9144", _dims(L=1))
    add("ft", "0.3048", _dims(L=1))
    add("inch", "0.0254", _dims(L=1))
    add("t", 1000, _dims(M=1))
    add("lb", "0.45359237", _dims(M=1))
    add("oz", Fraction("0.45359237") / 16, _dims(M=1))
    add("gal", Fraction("3.785411784") / 1000, _dims(L=3))
    add("acre", "4046.8564224", _dims(L=2))
    add("ha", 10000, _dims(L=2))
    return table


_ATOMS = _atoms()


def _words(canonical: str, *names: str) -> dict[str, str]:
    return dict.fromkeys(names, canonical)


#: Unit words (matched without regard to case) and the symbol each stands for.
_UNIT_WORDS: dict[str, str] = {
    **_words("m", "meter", "meters", "metre", "metres"),
    **_words("km", "kilometer", "kilometers", "kilometre", "kilometres"),
    **_words("cm", "centimeter", "centimeters", "centimetre", "centimetres"),
    **_words("mm", "millimeter", "millimeters", "millimetre", "millimetres"),
    **_words("g", "gram", "grams"),
    **_words("kg", "kilogram", "kilograms", "kilo", "kilos"),
    **_words("s", "sec", "secs", "second", "seconds"),
    **_words("min", "mins", "minute", "minutes"),
    **_words("h", "hr", "hrs", "hour", "hours"),
    **_words("day", "days"),
    **_words("week", "weeks"),
    **_words("month", "months"),
    **_words("year", "years", "yr", "yrs"),
    **_words("mile", "miles", "mi"),
    **_words("yd", "yard", "yards"),
    **_words("ft", "foot", "feet"),
    **_words("inch", "inches"),
    **_words("t", "tonne", "tonnes"),
    **_words("lb", "lbs", "pound", "pounds"),
    **_words("oz", "ounce", "ounces"),
    **_words("L", "l", "liter", "liters", "litre", "litres"),
    **_words("mL", "ml", "milliliter", "milliliters", "millilitre", "millilitres"),
    **_words("gal", "gallon", "gallons"),
    **_words("J", "joule", "joules"),
    **_words("W", "watt", "watts"),
    **_words("kW", "kilowatt", "kilowatts"),
    **_words("MW", "megawatt", "megawatts"),
    **_words("kWh", "kwh"),
    **_words("cal", "calorie", "calories"),
    **_words("kcal", "kilocalorie", "kilocalories"),
    **_words("N", "newton", "newtons"),
    **_words("Pa", "pascal", "pascals"),
    **_words("Hz", "hertz"),
    **_words("acre", "acres"),
    **_words("ha", "hectare", "hectares"),
    **_words("USD", "usd", "dollar", "dollars"),
    **_words("A", "amp", "amps", "ampere", "amperes"),
    **_words("K", "kelvin"),
    **_words("mol", "mole", "moles"),
    **_words("cd", "candela"),
}

#: Names that stand for a unit made of several (matched without regard to case).
_COMPOSED: dict[str, tuple[tuple[str, int], ...]] = {
    "mph": (("mile", 1), ("h", -1)),
    "kph": (("km", 1), ("h", -1)),
    "kmh": (("km", 1), ("h", -1)),
}


@dataclass(frozen=True)
class Unit:
    """A product of named units with whole powers, e.g. ``km/h`` is
    ``(("km", 1), ("h", -1))``; no terms is a plain number.

    Attributes:
        terms: (unit symbol, power) pairs, in the order they were written.
    """

    terms: tuple[tuple[str, int], ...] = ()

    @property
    def scale(self) -> Fraction:
        """The size of one of this unit in SI base units (exact)."""
        scale = Fraction(1)
        for name, power in self.terms:
            scale *= _ATOMS[name][0] ** power
        return scale

    @property
    def dims(self) -> Dims:
        """The exponents of the base dimensions (m, kg, s, A, K, mol, cd, USD)."""
        total = [0] * len(_BASES)
        for name, power in self.terms:
            for i, d in enumerate(_ATOMS[name][1]):
                total[i] += d * power
        return tuple(total)

    @property
    def dimension(self) -> str:
        """A name for the dimension (``length``, ``energy``) or its SI formula."""
        dims = self.dims
        return _DIMENSION_NAMES.get(dims) or _formula(
            tuple((b, p) for b, p in zip(_BASES, dims, strict=True))
        )

    def __str__(self) -> str:
        return _formula(self.terms)

    def _times(self, other: Unit, sign: int) -> Unit:
        powers = dict(self.terms)
        for name, power in other.terms:
            powers[name] = powers.get(name, 0) + sign * power
        return Unit(tuple((n, p) for n, p in powers.items() if p))

    def _raised(self, power: int) -> Unit:
        return Unit(tuple((n, p * power) for n, p in self.terms))


def _formula(terms: tuple[tuple[str, int], ...]) -> str:
    def term(name: str, power: int) -> str:
        return name if power == 1 else f"{name}^{power}"

    above = [term(n, p) for n, p in terms if p > 0]
    below = [term(n, -p) for n, p in terms if p < 0]
    if not above:
        return "*".join(term(n, p) for n, p in terms if p)
    return "*".join(above) + "".join("/" + t for t in below)


_ONE = Unit()
_USD = Unit((("USD", 1),))


def _unit_named(name: str) -> Unit | None:
    """The unit a name stands for; symbols match case, words do not."""
    if name in _ATOMS:
        return Unit(((name, 1),))
    lower = name.lower()
    if lower in _COMPOSED:
        return Unit(_COMPOSED[lower])
    symbol = _UNIT_WORDS.get(lower)
    return Unit(((symbol, 1),)) if symbol else None


def _describe(unit: Unit) -> str:
    return f"{unit} ({unit.dimension})" if unit.terms else "a plain number"


# ---------------------------------------------------------------------------------------
# Numbers


def _too_large(pos: int) -> CalculatorError:
    return CalculatorError(f"result is too large at {pos}")


def _finite(x: float, pos: int) -> float:
    if math.isinf(x) or math.isnan(x):
        raise _too_large(pos)
    return x


def _to_float(x: Number, pos: int) -> float:
    try:
        return _finite(float(x), pos)
    except OverflowError:
        raise _too_large(pos) from None


def _bounded(x: Number, pos: int) -> Number:
    """``x``, as a float when an exact value has grown past :data:`MAX_EXACT_BITS`."""
    if isinstance(x, Fraction):
        if max(x.numerator.bit_length(), x.denominator.bit_length()) > MAX_EXACT_BITS:
            return _to_float(x, pos)
        return x
    return _finite(x, pos)


def _arith(op: Callable[[], Number], pos: int) -> Number:
    try:
        return _bounded(op(), pos)
    except ZeroDivisionError:
        raise CalculatorError(f"division by zero at {pos}") from None
    except OverflowError:
        raise _too_large(pos) from None


def _abs(x: Number) -> Number:
    return -x if x < 0 else x


def _iroot(n: int, k: int) -> int:
    """The integer ``k``-th root of ``n >= 0``, rounded down (Newton's method)."""
    if n < 2:
        return n
    x = 1 << -(-n.bit_length() // k)
    while True:
        y = ((k - 1) * x + n // x ** (k - 1)) // k
        if y >= x:
            return x
        x = y


def _exact_root(x: Fraction, k: int) -> Fraction | None:
    if x < 0 and k % 2 == 0:
        return None
    num, den = abs(x.numerator), x.denominator
    rn, rd = _iroot(num, k), _iroot(den, k)
    if rn**k != num or rd**k != den:
        return None
    return Fraction(-rn if x < 0 else rn, rd)


def _float_pow(base: float, exponent: Number, pos: int) -> float:
    try:
        return _finite(math.pow(base, float(exponent)), pos)
    except OverflowError:
        raise _too_large(pos) from None
    except ValueError:
        raise CalculatorError(f"power is not a real number at {pos}") from None


def _pow_number(base: Number, exponent: Number, pos: int) -> Number:
    if base == 0 and exponent < 0:
        raise CalculatorError(f"division by zero at {pos}")
    if isinstance(exponent, Fraction) and exponent.denominator == 1:
        n = exponent.numerator
        if isinstance(base, Fraction):
            bits = max(abs(base.numerator).bit_length(), base.denominator.bit_length()) - 1
            if bits * abs(n) <= MAX_EXACT_BITS:  # so the exact power has at most twice the bound
                return _bounded(base**n, pos)
        return _float_pow(_to_float(base, pos), n, pos)
    if isinstance(exponent, Fraction) and isinstance(base, Fraction) and exponent.denominator <= 64:
        root = _exact_root(base, exponent.denominator)
        if root is not None:
            return _pow_number(root, Fraction(exponent.numerator), pos)
    if base < 0:
        if isinstance(exponent, Fraction) and exponent.denominator % 2 == 1:
            magnitude = _float_pow(-_to_float(base, pos), exponent, pos)
            return -magnitude if exponent.numerator % 2 else magnitude
        raise CalculatorError(f"a negative number to a fractional power at {pos}")
    return _float_pow(_to_float(base, pos), exponent, pos)


def _format_number(x: Number) -> str:
    """Up to 10 significant digits; scientific (``3.6e6``) from a million up and below
    0.0001; exact integers under a million in full."""
    if isinstance(x, Fraction) and x.denominator == 1 and abs(x.numerator) < 10**6:
        return str(x.numerator)
    if x == 0:
        return "0"
    with localcontext() as ctx:
        ctx.prec = 10
        if isinstance(x, Fraction):
            d = Decimal(x.numerator) / Decimal(x.denominator)
        else:
            d = +Decimal(x)
    exponent = d.adjusted()
    if -4 <= exponent < 6:
        return _trim(format(d, "f"))
    return f"{_trim(format(d.scaleb(-exponent), 'f'))}e{exponent}"


def _trim(digits: str) -> str:
    return digits.rstrip("0").rstrip(".") if "." in digits else digits


# ---------------------------------------------------------------------------------------
# Quantities


@dataclass(frozen=True)
class Quantity:
    """A result: a number in a unit.

    Attributes:
        magnitude: the number, in ``unit`` (a :class:`~fractions.Fraction` while exact, a
            float after a function or a constant made it inexact).
        unit: the unit it is shown in (no terms for a plain number).
    """

    magnitude: Number
    unit: Unit = _ONE

    @property
    def value(self) -> int | Fraction | float:
        """The number in :attr:`unit`: an int when it is a whole exact number."""
        m = self.magnitude
        return m.numerator if isinstance(m, Fraction) and m.denominator == 1 else m

    @property
    def exact(self) -> bool:
        """Whether the number is exact (no float step on the way)."""
        return isinstance(self.magnitude, Fraction)

    @property
    def si(self) -> Number:
        """The number in SI base units (m, kg, s, ..., USD)."""
        return self.magnitude * self.unit.scale if self.unit.terms else self.magnitude

    @property
    def dimension(self) -> str:
        """The name of its dimension (``length``, ``plain number``)."""
        return self.unit.dimension

    def to(self, unit: str) -> Quantity:
        """This quantity in another unit (``"km/h"``, ``"m^2"``).

        Raises:
            CalculatorError: the unit is unknown or of another dimension.
        """
        parser = _Parser(unit)
        target = parser.unit_only()
        return _convert(self, target, 1)

    def __float__(self) -> float:
        return float(self.magnitude)

    def __str__(self) -> str:
        number = _format_number(self.magnitude)
        return f"{number} {self.unit}" if self.unit.terms else number


def _collapse(magnitude: Number, unit: Unit, pos: int) -> Quantity:
    """A ratio of like units becomes a plain number (km/m is 1000); ratios of times
    (h/day) stay as written, since they read as rates."""
    rate = all(_ATOMS[name][1] == _TIME for name, _ in unit.terms)
    if unit.terms and not any(unit.dims) and not rate:
        return Quantity(_arith(lambda: magnitude * unit.scale, pos))
    return Quantity(magnitude, unit)


def _multiply(a: Quantity, b: Quantity, sign: int, pos: int) -> Quantity:
    if sign > 0:
        magnitude = _arith(lambda: a.magnitude * b.magnitude, pos)
    else:
        magnitude = _arith(lambda: a.magnitude / b.magnitude, pos)
    return _collapse(magnitude, a.unit._times(b.unit, sign), pos)


def _in_unit(q: Quantity, unit: Unit, pos: int) -> Number:
    if q.unit == unit:
        return q.magnitude
    return _arith(lambda: q.magnitude * (q.unit.scale / unit.scale), pos)


def _add(a: Quantity, b: Quantity, sign: int, pos: int) -> Quantity:
    if a.unit.dims != b.unit.dims:
        if sign > 0:
            raise CalculatorError(
                f"cannot add {_describe(a.unit)} and {_describe(b.unit)} at {pos}"
            )
        raise CalculatorError(
            f"cannot subtract {_describe(b.unit)} from {_describe(a.unit)} at {pos}"
        )
    other = _in_unit(b, a.unit, pos)
    return Quantity(_arith(lambda: a.magnitude + sign * other, pos), a.unit)


def _negate(q: Quantity) -> Quantity:
    return Quantity(-q.magnitude, q.unit)


def _convert(q: Quantity, unit: Unit, pos: int) -> Quantity:
    if q.unit.dims != unit.dims:
        raise CalculatorError(f"cannot convert {_describe(q.unit)} to {_describe(unit)} at {pos}")
    return Quantity(_in_unit(q, unit, pos), unit)


def _plain_number(q: Quantity, what: str, pos: int) -> Number:
    """The value of a quantity that must be a plain number (an exponent, a log's argument)."""
    if any(q.unit.dims):
        raise CalculatorError(f"{what} needs a plain number, got {_describe(q.unit)} at {pos}")
    return _bounded(q.si, pos)


def _power(base: Quantity, exponent: Quantity, pos: int) -> Quantity:
    e = _plain_number(exponent, "the exponent", pos)
    if not base.unit.terms:
        return Quantity(_pow_number(base.magnitude, e, pos))
    if e == 0:
        return Quantity(Fraction(1))
    if isinstance(e, float):
        if not e.is_integer():
            raise CalculatorError(f"cannot raise {base.unit} to the power {e} at {pos}")
        e = Fraction(int(e))
    powers = [p * e for _, p in base.unit.terms]
    if any(p.denominator != 1 or abs(p) > MAX_UNIT_POWER for p in powers):
        raise CalculatorError(f"cannot raise {base.unit} to the power {e} at {pos}")
    unit = Unit(tuple((n, int(p)) for (n, _), p in zip(base.unit.terms, powers, strict=True)))
    return Quantity(_pow_number(base.magnitude, e, pos), unit)


# ---------------------------------------------------------------------------------------
# Functions


def _log(x: Number, log: Callable[[float], float], base: int = 0) -> Number:
    """``log(x)`` for ``x > 0`` (big exact fractions need no float conversion); exact
    when ``x`` is a whole power of ``base``."""
    if isinstance(x, Fraction):
        value = log(x.numerator) - log(x.denominator)
        n = round(value)
        if base and abs(n) <= MAX_EXACT_BITS and Fraction(base) ** n == x:
            return Fraction(n)
        return value
    return log(x)


def _round_half_away(x: Number, digits: int) -> Fraction:
    exact = Fraction(x)
    scale = Fraction(10) ** digits
    rounded = math.floor(abs(exact) * scale + Fraction(1, 2))
    return (rounded if exact >= 0 else -rounded) / scale


_ARITY: dict[str, tuple[int, int | None]] = {
    "sqrt": (1, 1),
    "ln": (1, 1),
    "log": (1, 2),
    "log10": (1, 1),
    "log2": (1, 1),
    "exp": (1, 1),
    "abs": (1, 1),
    "round": (1, 2),
    "floor": (1, 1),
    "ceil": (1, 1),
    "min": (1, None),
    "max": (1, None),
}


def _call(name: str, args: list[Quantity], pos: int) -> Quantity:
    low, high = _ARITY[name]
    if len(args) < low or (high is not None and len(args) > high):
        wanted = f"{low}" if low == high else f"{low} or {high}" if high else f"at least {low}"
        noun = "argument" if wanted in ("1", "at least 1") else "arguments"
        raise CalculatorError(f"{name} takes {wanted} {noun}, got {len(args)} at {pos}")
    x = args[0]
    if name == "sqrt":
        if x.magnitude < 0:
            raise CalculatorError(f"sqrt of a negative number at {pos}")
        return _power(x, Quantity(Fraction(1, 2)), pos)
    if name in ("ln", "log", "log10", "log2"):
        v = _plain_number(x, name, pos)
        if v <= 0:
            raise CalculatorError(f"{name} of zero or a negative number at {pos}")
        if name == "log" and len(args) == 2:
            b = _plain_number(args[1], "the base of log", pos)
            if b <= 0 or b == 1:
                raise CalculatorError(f"log needs a positive base other than 1 at {pos}")
            return Quantity(_finite(float(_log(v, math.log)) / float(_log(b, math.log)), pos))
        if name == "log10":
            return Quantity(_log(v, math.log10, 10))
        if name == "log2":
            return Quantity(_log(v, math.log2, 2))
        return Quantity(Fraction(0) if v == 1 else _log(v, math.log))
    if name == "exp":
        v = _plain_number(x, name, pos)
        if v == 0:
            return Quantity(Fraction(1))
        try:
            return Quantity(_finite(math.exp(_to_float(v, pos)), pos))
        except OverflowError:
            raise _too_large(pos) from None
    if name == "abs":
        return Quantity(_abs(x.magnitude), x.unit)
    if name in ("floor", "ceil"):
        whole = math.floor(x.magnitude) if name == "floor" else math.ceil(x.magnitude)
        return Quantity(Fraction(whole), x.unit)
    if name == "round":
        digits = 0
        if len(args) == 2:
            d = _plain_number(args[1], "the digits of round", pos)
            if d != int(d) or _abs(d) > MAX_ROUND_DIGITS:
                raise CalculatorError(
                    f"round takes a whole number of digits up to {MAX_ROUND_DIGITS} at {pos}"
                )
            digits = int(d)
        return Quantity(_round_half_away(x.magnitude, digits), x.unit)
    # min, max: of quantities of one dimension, compared in SI units
    for other in args[1:]:
        if other.unit.dims != x.unit.dims:
            raise CalculatorError(
                f"{name} needs arguments of one kind, got {_describe(x.unit)} "
                f"and {_describe(other.unit)} at {pos}"
            )
    pick = min if name == "min" else max
    return pick(args, key=lambda q: q.si)


# ---------------------------------------------------------------------------------------
# Tokens

_FUNCTIONS = frozenset(_ARITY)
_CONSTANTS: dict[str, float] = {"pi": math.pi, "π": math.pi, "e": math.e}
_NUMBER_WORDS: dict[str, int] = {
    "hundred": 100,
    "thousand": 10**3,
    "million": 10**6,
    "billion": 10**9,
    "trillion": 10**12,
}
#: Words with a grammatical role: conversion (to, in) and multiplication (x, of, per).
_KEYWORDS = frozenset({"to", "in", "x", "of", "per"})

_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NAME = re.compile(r"[A-Za-z_µμπ][A-Za-z0-9_µμπ]*")
_TIMES_DIGITS = re.compile(r"x[0-9]")
_SYMBOLS = {
    "+": "+",
    "-": "-",
    "−": "-",
    "*": "*",
    "×": "*",
    "·": "*",
    "⋅": "*",
    "/": "/",
    "÷": "/",
    "^": "^",
    "%": "%",
    "$": "$",
}
_SUPERSCRIPTS = {"²": 2, "³": 3}


@dataclass(frozen=True)
class _Token:
    """kind: num, huge (a number out of range), name, op (text normalised: + - * / ^ % $),
    sup (², ³), ( ) , bad (an unknown character), end."""

    kind: str
    text: str
    pos: int
    end: int
    value: Fraction = Fraction(0)


def _number(text: str) -> Fraction:
    """The exact value of a number token.

    Raises:
        ValueError: its power of ten is past :data:`MAX_LITERAL_EXPONENT`.
    """
    mantissa, _, exponent = text.replace(",", "").lower().partition("e")
    value = Fraction(mantissa)
    if exponent:
        power = int(exponent)
        if abs(power) > MAX_LITERAL_EXPONENT:
            raise ValueError(text)
        value *= Fraction(10) ** power
    return value


def _tokenize(text: str) -> list[_Token]:
    """The tokens of ``text``; an unknown character is a ``bad`` token (the parser
    rejects it where it matters), so tokenizing never fails."""
    tokens: list[_Token] = []
    calls: list[bool] = []  # for each open parenthesis: is it a function call's?
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if "0" <= c <= "9" or (c == "." and i + 1 < n and "0" <= text[i + 1] <= "9"):
            grouped = None if calls and calls[-1] else _GROUPED.match(text, i)
            match = grouped or _NUMBER.match(text, i)
            assert match is not None
            try:
                tokens.append(_Token("num", match.group(), i, match.end(), _number(match.group())))
            except ValueError:
                tokens.append(_Token("huge", match.group(), i, match.end()))
            i = match.end()
            continue
        name = _NAME.match(text, i)
        if name:
            end = i + 1 if _TIMES_DIGITS.fullmatch(name.group()[:2]) else name.end()
            tokens.append(_Token("name", text[i:end], i, end))
            i = end
            continue
        if text.startswith("**", i):
            tokens.append(_Token("op", "^", i, i + 2))
            i += 2
            continue
        if c in _SYMBOLS:
            tokens.append(_Token("op", _SYMBOLS[c], i, i + 1))
        elif c in _SUPERSCRIPTS:
            tokens.append(_Token("sup", c, i, i + 1, Fraction(_SUPERSCRIPTS[c])))
        elif c == "(":
            previous = tokens[-1] if tokens else None
            calls.append(
                previous is not None and previous.kind == "name" and previous.text in _FUNCTIONS
            )
            tokens.append(_Token("(", c, i, i + 1))
        elif c == ")":
            if calls:
                calls.pop()
            tokens.append(_Token(")", c, i, i + 1))
        elif c == ",":
            tokens.append(_Token(",", c, i, i + 1))
        else:
            tokens.append(_Token("bad", c, i, i + 1))
        i += 1
    tokens.append(_Token("end", "", n, n))
    return tokens


# ---------------------------------------------------------------------------------------
# Parser (Pratt): binding powers, loosest first

_CONVERT = 5
_ADD = 10
_MUL = 20
_UNARY = 30
_CURRENCY = 34
_JUXTAPOSE = 35
_POW = 40
_POSTFIX = 45


def _known_name(name: str) -> bool:
    return (
        name in _FUNCTIONS
        or name in _CONSTANTS
        or name.lower() in _NUMBER_WORDS
        or _unit_named(name) is not None
    )


class _Parser:
    """Reads one expression; ``operations`` counts the explicit operations read (binary
    operators, calls, conversions, powers), so a bare number can be told from a step."""

    def __init__(self, text: str) -> None:
        if len(text) > MAX_LENGTH:
            raise CalculatorError(
                f"expression is too long ({len(text)} characters; at most {MAX_LENGTH})"
            )
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0
        self.operations = 0

    # -- token helpers

    def _peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def _advance(self) -> _Token:
        token = self.tokens[self.i]
        if token.kind != "end":
            self.i += 1
        return token

    def _unexpected(self, token: _Token) -> CalculatorError:
        at = token.pos + 1
        if token.kind == "end":
            return CalculatorError(f"unexpected end of input at {at}")
        if token.kind == "bad":
            return CalculatorError(f'unexpected character "{token.text}" at {at}')
        if token.kind == "huge":
            return CalculatorError(f"number {token.text} is out of range at {at}")
        if token.kind == "name" and token.text not in _KEYWORDS and not _known_name(token.text):
            return CalculatorError(f'unknown name "{token.text}" at {at}')
        if token.kind == "num":
            return CalculatorError(f'unexpected number "{token.text}" at {at}')
        return CalculatorError(f'unexpected "{token.text}" at {at}')

    def _close(self, opener: _Token) -> None:
        token = self._peek()
        if token.kind == ")":
            self._advance()
        elif token.kind == "end":
            raise CalculatorError(f'missing ")" for the "(" at {opener.pos + 1}')
        else:
            raise self._unexpected(token)

    # -- entry points

    def expression(self) -> Quantity:
        """The whole text as one expression."""
        if not self.text.strip():
            raise CalculatorError("empty expression")
        result = self._expr(0)
        if self._peek().kind != "end":
            raise self._unexpected(self._peek())
        return result

    def unit_only(self) -> Unit:
        """The whole text as a unit (``km/h``)."""
        unit = self._unit(strict=True)
        assert unit is not None
        if self._peek().kind != "end":
            raise self._unexpected(self._peek())
        return unit

    def claim(self) -> tuple[Quantity, int]:
        """A claimed result at the start of the text: a signed number, written plainly,
        with ``$``, ``%``, ``× 10^k``, number words and units; returns it and where it
        ends. The rest of the text is not read."""
        sign = self._peek()
        negative = sign.kind == "op" and sign.text in "+-"
        if negative:
            self._advance()
            negative = sign.text == "-"
        dollar = self._peek().kind == "op" and self._peek().text == "$"
        if dollar:
            self._advance()
        value = self._claim_power()
        times = self._peek()
        if (times.kind == "op" and times.text == "*") or (
            times.kind == "name" and times.text == "x"
        ):
            ten = self._peek(1)
            if ten.kind == "num" and ten.text == "10" and self._power_follows(2):
                self._advance()
                value *= self._claim_power()
        if self._peek().kind == "op" and self._peek().text == "%":
            self._advance()
            value /= 100
        while self._peek().kind == "name" and self._peek().text.lower() in _NUMBER_WORDS:
            value *= _NUMBER_WORDS[self._advance().text.lower()]
        pos = self._peek().pos + 1
        result = Quantity(_bounded(-value if negative else value, pos))
        unit = self._unit_tail(_USD, strict=False) if dollar else self._unit(strict=False)
        if unit is not None:
            result = _multiply(result, Quantity(Fraction(1), unit), 1, pos)
        return result, self.tokens[self.i - 1].end

    def _power_follows(self, ahead: int) -> bool:
        caret = self._peek(ahead)
        if caret.kind != "op" or caret.text != "^":
            return False
        sign = self._peek(ahead + 1)
        number = self._peek(ahead + 2) if sign.kind == "op" and sign.text in "+-" else sign
        return number.kind == "num" and number.value.denominator == 1

    def _claim_power(self) -> Number:
        token = self._advance()
        if token.kind != "num":
            raise self._unexpected(token)
        if not self._power_follows(0):
            return token.value
        self._advance()
        negative = self._peek().kind == "op" and self._advance().text == "-"
        power = self._advance().value.numerator
        return _pow_number(token.value, Fraction(-power if negative else power), token.pos + 1)

    # -- expressions

    def _expr(self, rbp: int) -> Quantity:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                at = self._peek().pos + 1
                raise CalculatorError(
                    f"expression is nested too deeply at {at} (at most {MAX_DEPTH} levels)"
                )
            left = self._nud(self._advance())
            while rbp < self._lbp(self._peek()):
                token = self._peek()
                if token.kind == "(" or (token.kind == "name" and token.text not in _KEYWORDS):
                    if token.kind == "(":
                        self.operations += 1
                    right = self._expr(_JUXTAPOSE)
                    left = _multiply(left, right, 1, token.pos + 1)
                else:
                    left = self._led(self._advance(), left)
            return left
        finally:
            self.depth -= 1

    def _lbp(self, token: _Token) -> int:
        if token.kind == "op":
            return {"+": _ADD, "-": _ADD, "*": _MUL, "/": _MUL, "^": _POW, "%": _POSTFIX}.get(
                token.text, 0
            )
        if token.kind == "sup":
            return _POSTFIX
        if token.kind == "(":
            return _JUXTAPOSE
        if token.kind == "name":
            if token.text in ("to", "in"):
                return _CONVERT
            if token.text in _KEYWORDS:
                return _MUL
            return _JUXTAPOSE if _known_name(token.text) else 0
        return 0

    def _nud(self, token: _Token) -> Quantity:
        if token.kind == "num":
            return Quantity(_bounded(token.value, token.pos + 1))
        if token.kind == "(":
            inner = self._expr(0)
            self._close(token)
            return inner
        if token.kind == "op" and token.text in "+-":
            operand = self._expr(_UNARY)
            return _negate(operand) if token.text == "-" else operand
        if token.kind == "op" and token.text == "$":
            return _multiply(self._expr(_CURRENCY), Quantity(Fraction(1), _USD), 1, token.pos + 1)
        if token.kind == "name" and token.text not in _KEYWORDS:
            return self._name(token)
        raise self._unexpected(token)

    def _name(self, token: _Token) -> Quantity:
        name = token.text
        if name in _FUNCTIONS and (name != "min" or self._peek().kind == "("):
            return self._call(token)
        if name in _CONSTANTS:
            return Quantity(_CONSTANTS[name])
        if name.lower() in _NUMBER_WORDS:
            return Quantity(Fraction(_NUMBER_WORDS[name.lower()]))
        unit = _unit_named(name)
        if unit is None:
            raise self._unexpected(token)
        return Quantity(Fraction(1), unit)

    def _call(self, token: _Token) -> Quantity:
        opener = self._peek()
        if opener.kind != "(":
            raise CalculatorError(f'expected "(" after "{token.text}" at {opener.pos + 1}')
        self._advance()
        args: list[Quantity] = []
        if self._peek().kind != ")":
            args.append(self._expr(0))
            while self._peek().kind == ",":
                self._advance()
                args.append(self._expr(0))
        self._close(opener)
        self.operations += 1
        return _call(token.text, args, token.pos + 1)

    def _led(self, token: _Token, left: Quantity) -> Quantity:
        at = token.pos + 1
        if token.text == "%":
            return _multiply(left, Quantity(Fraction(1, 100)), 1, at)
        self.operations += 1
        if token.kind == "sup":
            return _power(left, Quantity(token.value), at)
        text = token.text
        if text in ("+", "-"):
            return _add(left, self._expr(_ADD), 1 if text == "+" else -1, at)
        if text in ("*", "/", "x", "of", "per"):
            sign = -1 if text in ("/", "per") else 1
            return _multiply(left, self._expr(_MUL), sign, at)
        if text == "^":
            return _power(left, self._expr(_POW - 1), at)
        # to, in
        unit = self._unit(strict=True)
        assert unit is not None
        return _convert(left, unit, at)

    # -- units (after "to", in claims and in Quantity.to)

    def _unit_start(self, token: _Token) -> bool:
        if token.kind == "op":
            return token.text == "$"
        return (
            token.kind == "name"
            and token.text not in _KEYWORDS
            and (token.text not in _FUNCTIONS or token.text == "min")
            and _unit_named(token.text) is not None
        )

    def _unit(self, *, strict: bool) -> Unit | None:
        first = self._unit_factor(strict=strict)
        return None if first is None else self._unit_tail(first, strict=strict)

    def _unit_tail(self, unit: Unit, *, strict: bool) -> Unit:
        while True:
            token = self._peek()
            divides = (token.kind == "op" and token.text in ("*", "/")) or (
                token.kind == "name" and token.text == "per"
            )
            if divides:
                if not self._unit_start(self._peek(1)):
                    if strict:
                        self._advance()
                        self._unit_factor(strict=True)
                    return unit
                self._advance()
            elif not self._unit_start(token):
                return unit
            factor = self._unit_factor(strict=strict)
            assert factor is not None
            unit = unit._times(factor, -1 if token.text in ("/", "per") else 1)

    def _unit_factor(self, *, strict: bool) -> Unit | None:
        token = self._peek()
        if not self._unit_start(token):
            if not strict:
                return None
            if token.kind == "name" and not _known_name(token.text):
                raise CalculatorError(f'unknown unit "{token.text}" at {token.pos + 1}')
            raise CalculatorError(f"expected a unit at {token.pos + 1}")
        self._advance()
        unit = _USD if token.text == "$" else _unit_named(token.text)
        assert unit is not None
        after = self._peek()
        if after.kind == "sup":
            self._advance()
            return unit._raised(int(after.value))
        if after.kind == "op" and after.text == "^":
            sign = self._peek(1)
            number = self._peek(2) if sign.kind == "op" and sign.text in "+-" else sign
            if number.kind == "num" and number.value.denominator == 1:
                if number.value > MAX_UNIT_POWER:
                    raise CalculatorError(f"unit power is too large at {number.pos + 1}")
                self._advance()
                if number is not sign:
                    self._advance()
                self._advance()
                negative = sign.kind == "op" and sign.text == "-"
                return unit._raised(-int(number.value) if negative else int(number.value))
            if strict:
                raise CalculatorError(f'expected a whole power after "^" at {after.pos + 1}')
        return unit


def _evaluate(expression: str) -> tuple[Quantity, int]:
    """The value of ``expression`` and the number of explicit operations in it."""
    parser = _Parser(expression)
    result = parser.expression()
    return result, parser.operations


def evaluate(expression: str) -> Quantity:
    """Compute an arithmetic expression, with units.

    Args:
        expression: e.g. ``"3 km + 200 m"``, ``"1.5×10^6 * 15%"``, ``"1 kWh to J"``
            (grammar in ``docs/calculator.md``; at most :data:`MAX_LENGTH` characters).

    Returns:
        The result, in the unit of the expression (or of its ``to`` / ``in`` conversion).

    Raises:
        CalculatorError: the expression is malformed, mixes incompatible units, divides
            by zero or goes past a bound; the message names the position.
        TypeError: ``expression`` is not a string.
    """
    if not isinstance(expression, str):
        raise TypeError(f"expression must be a string, not {type(expression).__name__}")
    return _evaluate(expression)[0]


# ---------------------------------------------------------------------------------------
# Checking written steps

_EQUALS = re.compile(r"(?<![<>!=:])(?:=|≈)(?![=>])")
_HEDGE = re.compile(r"\s*(?:(?:~|≈|about\b|approximately\b|approx\.|roughly\b|around\b)\s*)?", re.I)
_FOLLOWING_OPERATOR = re.compile(r"\s*(?:\*\*|[*/×÷·^+x]|[-−])\s*[0-9(.$]")
#: How far before an "=" a step's expression may start (characters).
_STEP_WINDOW = 300


@dataclass(frozen=True)
class StepCheck:
    """The verdict on one written arithmetic step.

    Attributes:
        expression: the left side, as written.
        claimed: the claimed result, as written.
        computed: the left side's value.
        claimed_value: the claimed result's value.
        relative_error: ``|computed - claimed| / max(|computed|, |claimed|)``, compared in
            one unit (0 when both are 0).
        right: the relative error is within the tolerance.
        units_agree: false only when both sides carry units of different dimensions (the
            numbers as written were then compared).
        detail: one line saying what was compared and the verdict.
    """

    expression: str
    claimed: str
    computed: Quantity
    claimed_value: Quantity
    relative_error: float
    right: bool
    units_agree: bool
    detail: str

    @property
    def ok(self) -> bool:
        """The arithmetic is right and the units agree."""
        return self.right and self.units_agree


def _relative_error(a: Number, b: Number) -> float:
    if a == b:
        return 0.0
    try:
        return float(_abs(a - b) / max(_abs(a), _abs(b)))
    except OverflowError:
        return math.inf


def _claimed_quantity(claimed: str | float) -> tuple[str, Quantity]:
    if isinstance(claimed, bool):
        raise TypeError("claimed must be a string or a number, not bool")
    if isinstance(claimed, str):
        hedge = _HEDGE.match(claimed)
        text = claimed[hedge.end() if hedge else 0 :].strip()
        return text, evaluate(text)
    if isinstance(claimed, int):
        return str(claimed), Quantity(Fraction(claimed))
    if isinstance(claimed, float):
        if not math.isfinite(claimed):
            raise CalculatorError(f"the claimed result {claimed} is not a finite number")
        return repr(claimed), Quantity(claimed)
    raise TypeError(f"claimed must be a string or a number, not {type(claimed).__name__}")


def check_step(
    expression: str, claimed: str | float | None = None, *, rel_tol: float = 1e-3
) -> StepCheck:
    """Check one written arithmetic step: compute ``expression`` and compare it with the
    claimed result, within a relative tolerance (models round).

    Values are compared in one unit: converted when both sides carry compatible units; a
    claim without a unit is read in the computed result's unit (and the reverse); when
    both carry units of different dimensions, the numbers as written are compared and
    ``units_agree`` is false.

    Args:
        expression: the left side (``"350 million * 0.3"``); or the whole step
            (``"350 million * 0.3 = 105 million"``) when ``claimed`` is None.
        claimed: the claimed result, as text (``"105 million"``, ``"~1.05e8"``) or a number.
        rel_tol: the largest relative difference still counted right.

    Returns:
        The verdict; ``check.right`` is the arithmetic, ``check.ok`` adds the units.

    Raises:
        CalculatorError: a side does not parse (or the whole step has no single "=").
        ValueError: ``rel_tol`` is negative.
    """
    if rel_tol < 0:
        raise ValueError(f"rel_tol must be at least 0, got {rel_tol}")
    if claimed is None:
        sides = _EQUALS.split(expression)
        if len(sides) != 2:
            raise CalculatorError('a step needs one "=" between the expression and its result')
        expression, claimed = sides[0], sides[1]
    expression = expression.strip()
    computed = evaluate(expression)
    claim_text, claim = _claimed_quantity(claimed)
    units_agree, note = True, ""
    if computed.unit.dims == claim.unit.dims:
        a, b = computed.si, claim.si
    else:
        a, b = computed.magnitude, claim.magnitude
        if not claim.unit.terms:
            note = f" (the claim has no unit; read in {computed.unit})"
        elif not computed.unit.terms:
            note = f" (the expression has no unit; read in {claim.unit})"
        else:
            units_agree = False
            note = f"; units differ: {_describe(computed.unit)} vs {_describe(claim.unit)}"
    error = _relative_error(a, b)
    right = error <= rel_tol
    verdict = "right" if right else f"wrong ({error:.2%} off)"
    detail = f"{expression} = {computed}; claimed {claim_text}: {verdict}{note}"
    return StepCheck(
        expression=expression,
        claimed=claim_text,
        computed=computed,
        claimed_value=claim,
        relative_error=error,
        right=right,
        units_agree=units_agree,
        detail=detail,
    )


@dataclass(frozen=True)
class ArithmeticStep:
    """An ``<expression> = <result>`` step found in text.

    Attributes:
        expression: the left side (it parses and holds at least one operation).
        claimed: the claimed result (a number with its words and units).
        start / end: where the step lies in the text (``text[start:end]``).
    """

    expression: str
    claimed: str
    start: int
    end: int

    def check(self, *, rel_tol: float = 1e-3) -> StepCheck:
        """This step's verdict (:func:`check_step`)."""
        return check_step(self.expression, self.claimed, rel_tol=rel_tol)


def _may_start(tokens: list[_Token], k: int) -> bool:
    """Whether an expression may start at token ``k``: a number, a parenthesis, ``$``, a
    sign written against its number (``-3``, not a bullet's ``- 3``), a call or pi."""
    token, after = tokens[k], tokens[k + 1]
    if token.kind in ("num", "("):
        return True
    if token.kind == "op":
        if token.text == "$":
            return True
        return (
            token.text in ("+", "-")
            and after.pos == token.end
            and (after.kind in ("num", "(") or (after.kind == "op" and after.text == "$"))
        )
    if token.kind == "name":
        return token.text in ("pi", "π") or (token.text in _FUNCTIONS and after.kind == "(")
    return False


def _expression_before(text: str, start: int, end: int) -> tuple[int, str] | None:
    """The longest expression with an operation that ends at ``end`` (after ``start``)."""
    segment = text[start:end]
    tokens = _tokenize(segment)
    for k in range(len(tokens) - 1):
        if not _may_start(tokens, k):
            continue
        candidate = segment[tokens[k].pos :].strip()
        try:
            _, operations = _evaluate(candidate)
        except CalculatorError:
            continue
        if operations:
            return start + tokens[k].pos, candidate
    return None


def _claim_after(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Where the claimed result after an "=" lies, or None when there is none or the
    right side goes on as an expression."""
    segment = text[start:end]
    hedge = _HEDGE.match(segment)
    offset = hedge.end() if hedge else 0
    try:
        _, length = _Parser(segment[offset:]).claim()
    except CalculatorError:
        return None
    if _FOLLOWING_OPERATOR.match(segment, offset + length):
        return None
    return start + offset, start + offset + length


def find_steps(text: str) -> list[ArithmeticStep]:
    """Find the ``<expression> = <result>`` steps in free text, conservatively: a step
    is kept only when its left side parses and holds an operation, and its right side
    starts with a number (``≈`` counts as ``=``; ``==``, ``<=``, ``=>`` do not).

    A chain ``a = b = c`` gives the steps whose right side is a plain result. Bullets
    (``- 3 * 4``), list numbers and words before the expression are left out.

    Args:
        text: e.g. an answer with a Fermi estimate.

    Returns:
        The steps, in order.
    """
    steps: list[ArithmeticStep] = []
    equals = list(_EQUALS.finditer(text))
    for k, match in enumerate(equals):
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.end())
        line_end = len(text) if line_end < 0 else line_end
        left_from = max(line_start, match.start() - _STEP_WINDOW)
        if k and equals[k - 1].end() > left_from:
            left_from = equals[k - 1].end()
        right_to = min(line_end, match.end() + _STEP_WINDOW)
        if k + 1 < len(equals) and equals[k + 1].start() < right_to:
            right_to = equals[k + 1].start()
        left = _expression_before(text, left_from, match.start())
        if left is None:
            continue
        claim = _claim_after(text, match.end(), right_to)
        if claim is None:
            continue
        steps.append(
            ArithmeticStep(
                expression=left[1],
                claimed=text[claim[0] : claim[1]],
                start=left[0],
                end=claim[1],
            )
        )
    return steps


# ---------------------------------------------------------------------------------------
# The tool


class CalculatorTool:
    """The calculator as a teacher tool: ``{"expression": "..."}`` in, the result out
    (``"193.12128 km"``); a bad expression raises :class:`ToolError` with the reason.

    Args:
        name: the tool's name in the model's tool list.
    """

    def __init__(self, name: str = "calculator") -> None:
        self.name = name

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(
            name=self.name,
            description=(
                "Compute arithmetic exactly, with units and conversions, e.g. "
                "'350 million * 0.3' or '60 mph * 2 h to km'."
            ),
            parameters={
                "type": "object",
                "properties": {
                    "expression": {
                        "type": "string",
                        "description": "The expression, e.g. '3 km + 200 m' or '1 kWh to J'.",
                    }
                },
                "required": ["expression"],
            },
        )

    async def __call__(self, arguments: Mapping[str, Any]) -> str:
        expression = arguments.get("expression")
        if not isinstance(expression, str):
            raise ToolError(f'{self.name} needs an "expression" string')
        try:
            return str(evaluate(expression))
        except CalculatorError as exc:
            raise ToolError(str(exc)) from None


__all__ = [
    "MAX_DEPTH",
    "MAX_EXACT_BITS",
    "MAX_LENGTH",
    "ArithmeticStep",
    "CalculatorError",
    "CalculatorTool",
    "Quantity",
    "StepCheck",
    "Unit",
    "check_step",
    "evaluate",
    "find_steps",
]
