"""The calculator: a parser with units, never eval. Precedence and exactness, units and
conversions, every error path, hostile inputs (each bounded by a hang guard, not a speed
assertion), written steps found and checked in Fermi text, and the teacher tool."""

from __future__ import annotations

import operator
import random
import threading
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest

from genteach.runtime.base import Action
from genteach.runtime.calculator import (
    MAX_DEPTH,
    MAX_LENGTH,
    ArithmeticStep,
    CalculatorError,
    CalculatorTool,
    Quantity,
    check_step,
    evaluate,
    find_steps,
)
from genteach.runtime.tools import Tool, ToolEnvironment, ToolError


def value(expression: str) -> int | Fraction | float:
    return evaluate(expression).value


def shown(expression: str) -> str:
    return str(evaluate(expression))


def error(expression: str) -> str:
    with pytest.raises(CalculatorError) as caught:
        evaluate(expression)
    return str(caught.value)


# --- precedence, associativity, exactness


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("64 / 4 / 2", 8),
        ("2 ^ 3 ^ 2", 512),
        ("2 ** 3 ** 2", 512),
        ("(2 ^ 3) ^ 2", 64),
        ("-2 ^ 2", -4),
        ("(-2) ^ 2", 4),
        ("2 ^ -1", Fraction(1, 2)),
        ("2 ^ -1 * 4", 2),
        ("- - 3", 3),
        ("2 * -3", -6),
        ("2 - -3", 5),
        ("+4", 4),
        ("8 ÷ 2 × 3", 12),
        ("8 / 2 * 3", 12),
        ("2 x 3", 6),
        ("3 − 5", -2),
        ("2 · 3", 6),
        ("2(3 + 4)", 14),
        ("12 / 2(3)", 2),  # juxtaposition binds tighter than / : 12 / (2*3)
        ("2^3 * 2", 16),
    ],
)
def test_precedence_and_associativity(expression: str, expected: object) -> None:
    assert value(expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0.1 + 0.2", Fraction(3, 10)),
        ("1 / 3", Fraction(1, 3)),
        ("1/3 + 1/6", Fraction(1, 2)),
        ("3e8", 300_000_000),
        ("2.5E-3", Fraction(1, 400)),
        ("1.5×10^6", 1_500_000),
        ("1.5x10^6", 1_500_000),
        ("1,200 * 3", 3600),
        ("1,234,567.5", Fraction(2469135, 2)),
        ("15% * 200", 30),
        ("30% of 350 million", 105_000_000),
        ("3 million", 3_000_000),
        ("2.7 Million", 2_700_000),
        ("1.2 billion / 4 thousand", 300_000),
        ("2 trillion", 2 * 10**12),
        ("5 hundred", 500),
        ("sqrt(16)", 4),
        ("sqrt(9/4)", Fraction(3, 2)),
        ("(-8) ^ (1/3)", -2),
        ("27 ^ (2/3)", 9),
        ("log10(1000)", 3),
        ("log2(1024)", 10),
        ("log10(0.01)", -2),
        ("ln(1)", 0),
        ("abs(-4.5)", Fraction(9, 2)),
        ("round(2.5)", 3),
        ("round(-2.5)", -3),
        ("round(3.14159, 2)", Fraction(157, 50)),
        ("round(1234, -2)", 1200),
        ("floor(2.7)", 2),
        ("ceil(2.1)", 3),
        ("floor(-2.5)", -3),
        ("min(3, 1, 2)", 1),
        ("max(1,200)", 200),  # inside a call the comma separates arguments
        ("max(1, 200)", 200),
        ("2^2000 / 2^1999", 2),
    ],
)
def test_exact_results(expression: str, expected: object) -> None:
    result = evaluate(expression)
    assert result.exact
    assert result.value == expected


def test_floats_where_exactness_ends() -> None:
    assert value("sqrt(2)") == pytest.approx(2**0.5)
    assert not evaluate("sqrt(2)").exact
    assert value("2 pi") == pytest.approx(6.283185307179586)
    assert value("e") == pytest.approx(2.718281828459045)
    assert value("π") == pytest.approx(3.141592653589793)
    assert value("exp(1)") == pytest.approx(2.718281828459045)
    assert value("ln(e)") == pytest.approx(1.0)
    assert value("log(8, 2)") == pytest.approx(3.0)
    assert value("log(100)") == pytest.approx(4.605170185988092)
    assert value("2 ^ 0.5") == pytest.approx(2**0.5)
    assert value("(-8) ^ (1/3) * 1.0") == -2
    assert value("(-32) ^ 0.6") == pytest.approx(-8.0)  # odd root of a negative: real


def test_number_display() -> None:
    assert shown("4.2") == "4.2"
    assert shown("123456") == "123456"
    assert shown("1 kWh to J") == "3.6e6 J"
    assert shown("350 million * 0.3") == "1.05e8"
    assert shown("1/3") == "0.3333333333"
    assert shown("0.00002") == "2e-5"
    assert shown("-1/8") == "-0.125"
    assert shown("0 * 5") == "0"
    assert shown("2^2000").startswith("1.148130695e602")
    assert float(evaluate("1/4")) == 0.25


def _reference(tree: Any) -> Fraction:
    """The value of a generated tree, computed with operator functions (no parser)."""
    if isinstance(tree, int):
        return Fraction(tree)
    if tree[0] == "neg":
        return -_reference(tree[1])
    op, left, right = tree
    functions: dict[str, Callable[[Any, Any], Any]] = {
        "+": operator.add,
        "-": operator.sub,
        "*": operator.mul,
        "/": operator.truediv,
        "^": operator.pow,
    }
    return Fraction(functions[op](_reference(left), _reference(right)))


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "^": 4}


def _tree(rng: random.Random, depth: int) -> Any:
    if depth == 0 or rng.random() < 0.25:
        return rng.randint(0, 9)
    kind = rng.choice(["+", "-", "*", "/", "^", "neg"])
    if kind == "neg":
        return ("neg", _tree(rng, depth - 1))
    if kind == "^":
        return ("^", _tree(rng, min(depth - 1, 1)), rng.randint(-2, 3))
    return (kind, _tree(rng, depth - 1), _tree(rng, depth - 1))


def _full(tree: Any) -> str:
    if isinstance(tree, int):
        return str(tree)
    if tree[0] == "neg":
        return f"(-{_full(tree[1])})"
    return f"({_full(tree[1])} {tree[0]} {_full(tree[2])})"


def _minimal(tree: Any) -> str:
    """The tree with only the parentheses precedence and associativity require."""
    if isinstance(tree, int):
        return str(tree)
    op = tree[0]
    if op == "neg":
        child = tree[1]
        inner = _minimal(child)
        needs = not isinstance(child, int) and _PRECEDENCE[child[0]] < _PRECEDENCE["^"]
        needs = needs and child[0] != "neg"
        return f"-({inner})" if needs else f"-{inner}"
    left, right = tree[1], tree[2]
    left_text, right_text = _minimal(left), _minimal(right)
    if not isinstance(left, int):
        lp = _PRECEDENCE[left[0]]
        if lp < _PRECEDENCE[op] or (op == "^" and lp <= _PRECEDENCE["^"]):
            left_text = f"({left_text})"
    if op == "^":
        exponent = right
        right_text = f"({exponent})" if exponent < 0 else str(exponent)
    elif not isinstance(right, int) and _PRECEDENCE[right[0]] <= _PRECEDENCE[op]:
        right_text = f"({right_text})"
    return f"{left_text} {op} {right_text}"


def test_random_expressions_match_python_arithmetic() -> None:
    rng = random.Random(12)
    checked = 0
    for _ in range(400):
        tree = _tree(rng, 4)
        try:
            expected: Fraction | None = _reference(tree)
        except ZeroDivisionError:
            expected = None
        for text in (_full(tree), _minimal(tree)):
            if expected is None:
                with pytest.raises(CalculatorError, match="division by zero"):
                    evaluate(text)
            else:
                assert evaluate(text).magnitude == expected, text
                checked += 1
    assert checked > 500


# --- units


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("3 km + 200 m", "3.2 km"),
        ("60 mph * 2 h to km", "193.12128 km"),
        ("60 mph * 2 h", "120 mile"),
        ("1 kWh to J", "3.6e6 J"),
        ("1 kWh in MJ", "3.6 MJ"),
        ("5 L / 2", "2.5 L"),
        ("100 km / 2 h", "50 km/h"),
        ("60 km per hour", "60 km/h"),
        ("50 km/h to m/s", "13.88888889 m/s"),
        ("3km", "3 km"),
        ("2 kW * 3 h", "6 kW*h"),
        ("2 kW * 3 h to kWh", "6 kWh"),
        ("1 mile to ft", "5280 ft"),
        ("12 inch to cm", "30.48 cm"),
        ("1 lb to g", "453.59237 g"),
        ("2 tonnes to kg", "2000 kg"),
        ("10 gallons to L", "37.85411784 L"),
        ("500 mL + 1 L", "1500 mL"),
        ("1 week to h", "168 h"),
        ("1 year to day", "365 day"),
        ("1 day to min", "1440 min"),
        ("5 min to s", "300 s"),
        ("5 km^2 to ha", "500 ha"),
        ("1 acre to m^2", "4046.856422 m^2"),
        ("1 hectare to m²", "10000 m^2"),
        ("(4 m^2) ^ 0.5", "2 m"),
        ("sqrt(9 km^2)", "3 km"),
        ("(3 m)^2", "9 m^2"),
        ("2 m * 3 m * 4 m to L", "24000 L"),
        ("$5 * 3", "15 USD"),
        ("$3 million / year", "3e6 USD/year"),
        ("$5 per day * 30 days", "150 USD"),
        ("20 USD + $5", "25 USD"),
        ("8 h/day * 365 days/year", "2920 h/year"),
        ("3 km / 500 m", "6"),
        ("km / m", "1000"),
        ("max(1 km, 500 m)", "1 km"),
        ("round(3.46 km, 1)", "3.5 km"),
        ("abs(-2 kg)", "2 kg"),
        ("10 kcal to kJ", "41.84 kJ"),
        ("1 kW to W", "1000 W"),
        ("9.81 m/s^2 * 2 kg to N", "19.62 N"),
        ("3 Hours + 30 minutes", "3.5 h"),
    ],
)
def test_units_and_conversions(expression: str, expected: str) -> None:
    assert shown(expression) == expected


def test_quantity_api() -> None:
    q = evaluate("3 km + 200 m")
    assert q.value == Fraction(16, 5)
    assert str(q.unit) == "km"
    assert q.dimension == "length"
    assert q.si == 3200
    assert str(q.to("m")) == "3200 m"
    assert str(evaluate("100 km / 2 h").to("m/s")) == "13.88888889 m/s"
    assert evaluate("2 kWh").dimension == "energy"
    assert evaluate("7").dimension == "plain number"
    assert Quantity(Fraction(3)).value == 3
    with pytest.raises(CalculatorError, match="cannot convert km"):
        q.to("kg")
    with pytest.raises(CalculatorError, match='unknown unit "parsecs" at 1'):
        q.to("parsecs")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("3 km + 2 kg", "cannot add km (length) and kg (mass) at 6"),
        ("3 km - 2 kg", "cannot subtract kg (mass) from km (length) at 6"),
        ("1 km + 2", "cannot add km (length) and a plain number at 6"),
        ("3 km to kg", "cannot convert km (length) to kg (mass) at 6"),
        ("1 kWh to kW", "cannot convert kWh (energy) to kW (power) at 7"),
        ("$5 + 5 h", "cannot add USD (money) and h (time) at 4"),
        ("max(1 km, 1 kg)", "max needs arguments of one kind, got km (length) and kg (mass) at 1"),
        ("2 ^ (1 m)", "the exponent needs a plain number, got m (length) at 3"),
        ("exp(2 s)", "exp needs a plain number, got s (time) at 1"),
        ("log10(5 m)", "log10 needs a plain number, got m (length) at 1"),
        ("sqrt(2 m)", "cannot raise m to the power 1/2 at 1"),
        ("2 km ^ 0.5", "cannot raise km to the power 1/2 at 6"),
        ("(2 m) ^ 21", "cannot raise m to the power 21 at 7"),
        ("(2 m) ^ pi", "cannot raise m to the power 3.14"),
        ("3 to foo", 'unknown unit "foo" at 6'),
        ("3 km to", "expected a unit at 8"),
        ("3 km to 5", "expected a unit at 9"),
        ("3 km to m/", "expected a unit at 11"),
        ("3 m to m^x", 'expected a whole power after "^" at 9'),
        ("3 m to m^99", "unit power is too large at 10"),
    ],
)
def test_unit_errors(expression: str, message: str) -> None:
    assert error(expression).startswith(message)


# --- errors: one line, naming the position


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("(1 + 2))", 'unexpected ")" at 8'),
        ("1 + * 2", 'unexpected "*" at 5'),
        ("1 +", "unexpected end of input at 4"),
        ("(1 + 2", 'missing ")" for the "(" at 1'),
        ("max(1, 2", 'missing ")" for the "(" at 4'),
        ("3 4", 'unexpected number "4" at 3'),
        ("foo + 1", 'unknown name "foo" at 1'),
        ("3 apples", 'unknown name "apples" at 3'),
        ("2 @ 3", 'unexpected character "@" at 3'),
        ("1,2", 'unexpected "," at 2'),
        ("1, 200", 'unexpected "," at 2'),
        ("1/0", "division by zero at 2"),
        ("5 / (2 - 2)", "division by zero at 3"),
        ("0 ^ -1", "division by zero at 3"),
        ("sqrt(-1)", "sqrt of a negative number at 1"),
        ("ln(0)", "ln of zero or a negative number at 1"),
        ("log(-3)", "log of zero or a negative number at 1"),
        ("log(8, 1)", "log needs a positive base other than 1 at 1"),
        ("(-8) ^ 0.5", "a negative number to a fractional power at 6"),
        ("sqrt(1, 2)", "sqrt takes 1 argument, got 2 at 1"),
        ("round(1, 2, 3)", "round takes 1 or 2 arguments, got 3 at 1"),
        ("max()", "max takes at least 1 argument, got 0 at 1"),
        ("round(2.5, 0.5)", "round takes a whole number of digits up to 30 at 1"),
        ("sqrt 4", 'expected "(" after "sqrt" at 6'),
        ("to 3", 'unexpected "to" at 1'),
        ("x", 'unexpected "x" at 1'),
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("1e5000", "number 1e5000 is out of range at 1"),
        ("exp(1000)", "result is too large at 1"),
        ("10.0 ^ 400 * pi", "result is too large"),
    ],
)
def test_error_messages(expression: str, message: str) -> None:
    text = error(expression)
    assert text.startswith(message)
    assert "\n" not in text


def test_evaluate_wants_a_string() -> None:
    with pytest.raises(TypeError):
        evaluate(3)  # type: ignore[arg-type]


# --- hostile input: rejected, and quickly (a hang guard of 10 s, not a speed check)


def _finishes(fn: Callable[[], object], seconds: float = 10.0) -> object:
    """Run ``fn`` in a daemon thread; fail if it has not finished in ``seconds``."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(fn())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the calculator did not finish"
    return outcome[0]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("9^9^9^9", "result is too large"),
        ("2^2^2^2^2^2", "result is too large"),
        ("9**9**9**9**9", "result is too large"),
        ("10^10^10", "result is too large"),
        ("(1 km)^(10^9)", "cannot raise km"),
        ("1e999999999", "out of range"),
        ("2^(-10^10) + 1e-999999", "out of range"),
        ("(" * 200 + "1" + ")" * 200, "nested too deeply"),
        ("-" * 300 + "1", "nested too deeply"),
        ("2^" * 100 + "1", "nested too deeply"),
        ("1" + "+1" * 600, "too long"),
        ("__import__('os').system('true')", 'unknown name "__import__" at 1'),
        ("().__class__.__bases__[0]", 'unexpected ")" at 2'),
        ("(1).real", 'unexpected character "."'),
        ("lambda: 0", 'unknown name "lambda" at 1'),
        ("open('/etc/passwd')", 'unknown name "open" at 1'),
        ("'a' * 10", 'unexpected character "\'" at 1'),
        ("exec", 'unknown name "exec"'),
        ("[1, 2]", 'unexpected character "["'),
        ("1; 2", 'unexpected character ";"'),
        ("round(1, 10^9)", "round takes a whole number of digits"),
        ("max(" + ",".join(["9^9"] * 200) + ")", ""),
    ],
)
def test_hostile_input_is_rejected(expression: str, message: str) -> None:
    outcome = _finishes(lambda: evaluate(expression))
    if not message:
        assert isinstance(outcome, Quantity)
        return
    assert isinstance(outcome, CalculatorError), outcome
    assert message in str(outcome)


def test_bounds_are_what_the_docs_say() -> None:
    assert evaluate("1" + "+1" * ((MAX_LENGTH - 1) // 2)).value == MAX_LENGTH // 2
    assert evaluate("(" * (MAX_DEPTH - 2) + "1" + ")" * (MAX_DEPTH - 2)).value == 1
    assert "at most" in error("x" * (MAX_LENGTH + 1))


def test_exact_results_too_big_become_floats_then_fail() -> None:
    assert evaluate("2^4000").exact
    assert error("2^4000 * 2^4000") == "result is too large at 8"
    assert error("2^5000") == "result is too large at 2"
    tiny = evaluate("(1/3)^3000")
    assert not tiny.exact and tiny.value == 0


# --- check_step and find_steps


def test_check_step_right_wrong_and_rounded() -> None:
    right = check_step("350 million * 0.3", "105 million")
    assert right.right and right.ok and right.relative_error == 0
    assert right.detail == "350 million * 0.3 = 1.05e8; claimed 105 million: right"

    wrong = check_step("350 million * 0.3", "120 million")
    assert not wrong.right and not wrong.ok
    assert wrong.relative_error == pytest.approx(0.125)
    assert "wrong (12.50% off)" in wrong.detail

    assert check_step("2/3", "0.6667").right
    assert not check_step("2/3", "0.67").right
    assert check_step("2/3", "0.67", rel_tol=0.01).right
    assert check_step("1/7", 0.142857).right
    assert check_step("6 * 7", 42).right
    assert check_step("350 million * 0.3 = 105 million").right
    assert check_step("1/3 ≈ 0.333").right
    assert check_step("350 million * 0.3", "~105 million").right
    assert check_step("350 million * 0.3", "about 1.05e8").right
    assert check_step("0 * 5", 0).relative_error == 0


def test_check_step_compares_in_one_unit() -> None:
    assert check_step("3 km + 200 m", "3200 m").ok
    assert check_step("60 mph * 2 h", "193 km").ok
    assert not check_step("60 mph * 2 h", "190 km").right
    no_unit = check_step("3 km + 200 m", "3.2")
    assert no_unit.ok and "the claim has no unit; read in km" in no_unit.detail
    assert check_step("5 * 3", "15 km").ok
    differ = check_step("365 days * 24 h", "8760 h")
    assert differ.right and not differ.units_agree and not differ.ok
    assert "units differ: day*h" in differ.detail
    assert check_step("365 days * 24 h/day", "8760 h").ok


def test_check_step_errors() -> None:
    with pytest.raises(CalculatorError, match='unknown name "people"'):
        check_step("3 people * 2", "6")
    with pytest.raises(CalculatorError, match="unexpected end"):
        check_step("3 * 2", "6 +")
    with pytest.raises(CalculatorError, match='one "="'):
        check_step("2 * 3 = 6 = 6")
    with pytest.raises(CalculatorError, match='one "="'):
        check_step("2 * 3")
    with pytest.raises(CalculatorError, match="not a finite number"):
        check_step("2 * 3", float("nan"))
    with pytest.raises(ValueError, match="rel_tol"):
        check_step("2 * 3", 6, rel_tol=-1)
    with pytest.raises(TypeError):
        check_step("2 * 3", True)


FERMI = """**How many piano tuners work in Chicago?**

1. Population: about 2.7 million people.
2. Households: 2.7 million / 2.5 = 1.08 million households.
3. Pianos: 1.08 million × 5% = 54,000 pianos.
- Tunings: 54,000 × 1 tuning per year = 54,000 tunings a year
- A tuner: 4 per day × 250 days ≈ 1,000 tunings a year.
4. Tuners: 54,000 / 1,000 = 55 tuners.
So roughly 2 * 3 = 6 * 4 = 24 hmm, and x == 5, y <= 3, z => 4.
Energy: 1 kWh to J = 3.6e6 J; a heater: 2 kW * 3 h = 6 kWh. Speed: 100 km / 2 h = 50 km/h.
- 3 * 4 = 12
Money: $2 * 3 = $6, and 30% of 350 million = 105 million people. Big: 1.5 × 10^6 * 2 = 3 × 10^6.
Rounded: 2/3 = 0.667; 7 / 3 = 2.3333.
"""


def test_find_steps_in_fermi_text() -> None:
    steps = find_steps(FERMI)
    found = [(s.expression, s.claimed) for s in steps]
    assert found == [
        ("2.7 million / 2.5", "1.08 million"),
        ("1.08 million × 5%", "54,000"),
        ("4 per day × 250 days", "1,000"),
        ("54,000 / 1,000", "55"),
        ("6 * 4", "24"),
        ("1 kWh to J", "3.6e6 J"),
        ("2 kW * 3 h", "6 kWh"),
        ("100 km / 2 h", "50 km/h"),
        ("3 * 4", "12"),
        ("$2 * 3", "$6"),
        ("30% of 350 million", "105 million"),
        ("1.5 × 10^6 * 2", "3 × 10^6"),
        ("2/3", "0.667"),
        ("7 / 3", "2.3333"),
    ]
    for step in steps:
        assert FERMI[step.start : step.end].startswith(step.expression)
        assert FERMI[step.start : step.end].endswith(step.claimed)
    verdicts = {s.expression: s.check().right for s in steps}
    assert verdicts["54,000 / 1,000"] is False  # 54, not 55
    assert [e for e, ok in verdicts.items() if not ok] == ["54,000 / 1,000"]
    assert steps[3].check(rel_tol=0.02).right  # 55 is 54 rounded at 2%


def test_find_steps_is_conservative() -> None:
    assert find_steps("The answer = 42.") == []  # no operation on the left
    assert find_steps("a = 2 * 3") == []  # the right side is an expression
    assert find_steps("2 * 3 = 6 * 4") == []  # ambiguous: the claim goes on
    assert find_steps("if x == 2 * 3 or y >= 1 + 1 then") == []
    assert find_steps("3 people * 2 = 6") == []  # unknown word: nothing parses with an op
    assert find_steps("2 trips per week * 52 weeks = 104 trips") == []  # starts at a unit word
    assert find_steps("- 3 * 2 = 6")[0].expression == "3 * 2"  # a bullet, not a minus
    assert find_steps("-3 * 2 = -6")[0].expression == "-3 * 2"
    assert find_steps("**2 * 3 = 6**")[0].claimed == "6"  # markdown bold is no operator
    assert find_steps("2 * 3\n= 6") == []  # a step lies on one line
    assert find_steps("") == []
    assert find_steps("= = =") == []
    step = find_steps("Total: (2 + 3) * 4 = 20 cars.")[0]
    assert step == ArithmeticStep(expression="(2 + 3) * 4", claimed="20", start=7, end=23)


def test_find_steps_on_long_noisy_text_finishes() -> None:
    noise = "=" * 2000 + "1 + " * 3000 + "= 5 " + "(((" * 500 + "= 7"
    assert isinstance(_finishes(lambda: find_steps(noise)), list)


# --- the tool


async def test_tool_evaluates_and_reports_errors() -> None:
    tool: Tool = CalculatorTool()  # satisfies the protocol (mypy checks the assignment)
    spec = tool.spec
    assert spec.name == "calculator"
    assert spec.parameters["required"] == ["expression"]
    assert spec.openai()["function"]["name"] == "calculator"
    assert await tool({"expression": "60 mph * 2 h to km"}) == "193.12128 km"
    with pytest.raises(ToolError, match='unexpected "\\)" at 8'):
        await tool({"expression": "(1 + 2))"})
    with pytest.raises(ToolError, match='needs an "expression" string'):
        await tool({})
    with pytest.raises(ToolError, match='needs an "expression" string'):
        await tool({"expression": 3})
    assert CalculatorTool(name="calc").spec.name == "calc"


async def test_tool_in_a_tool_environment() -> None:
    env = ToolEnvironment([CalculatorTool()])
    step = await env.step(
        Action("call", name="calculator", arguments={"expression": "3 km + 200 m"})
    )
    assert step.observation == "3.2 km" and not step.error
    failed = await env.step(
        Action("call", name="calculator", arguments={"expression": "3 km + 2 kg"})
    )
    assert failed.error and failed.observation == "cannot add km (length) and kg (mass) at 6"
