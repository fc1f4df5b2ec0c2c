"""Code-made mutants: one node changed per mutant, read and written with ``ast`` only (the
tests compile mutants to prove they are valid Python, and never run them)."""

from __future__ import annotations

import ast

import pytest

from genteach.mutation import OPERATORS, Mutant, function_source, mutant_program, mutants


def every(code: str, name: str = "f") -> list[Mutant]:
    """All mutants of ``name``, each compiled (never run) to prove it is valid Python."""
    found = mutants(code, name, limit=1000)
    for mutant in found:
        compile(mutant.code, "<mutant>", "exec", dont_inherit=True)
    return found


def bodies(code: str, name: str = "f") -> set[str]:
    """The mutated bodies (everything after the ``def`` line), one string per mutant."""
    return {m.code.split("\n", 1)[1].strip() for m in every(code, name)}


def descriptions(code: str, name: str = "f") -> set[str]:
    return {m.description for m in every(code, name)}


# ---------------------------------------------------------------------------------------
# function_source


MODULE = '''import functools

CONSTANT = 3


@functools.lru_cache(maxsize=None)
def fib(n: int) -> int:
    """The n-th Fibonacci number."""
    # the base case
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


class Box:
    def area(self) -> int:
        return 1


def fib(n):
    return n
'''


def test_function_source_keeps_decorators_and_comments() -> None:
    text = "@functools.lru_cache(maxsize=None)\ndef fib(n: int) -> int:\n"
    source = function_source(MODULE.replace("def fib(n):\n    return n\n", ""), "fib")
    assert source is not None and source.startswith(text)
    assert "# the base case" in source and source.endswith("return fib(n - 1) + fib(n - 2)")


def test_function_source_gives_the_last_definition_and_classes() -> None:
    assert function_source(MODULE, "fib") == "def fib(n):\n    return n"
    assert (
        function_source(MODULE, "Box") == "class Box:\n    def area(self) -> int:\n        return 1"
    )


def test_function_source_is_none_when_absent_not_top_level_or_broken() -> None:
    assert function_source(MODULE, "missing") is None
    assert function_source(MODULE, "area") is None  # a method: give its class
    assert function_source(MODULE, "CONSTANT") is None  # an assignment is no definition
    assert function_source("def f(:\n    pass\n", "f") is None
    assert function_source("x = '\0'\n", "f") is None


def test_function_source_counts_lines_as_python_does() -> None:
    code = "x = 1  # \f form feed is no line break\r\ndef f():\r\n    return 1\r\n"
    assert function_source(code, "f") == "def f():\n    return 1"


# ---------------------------------------------------------------------------------------
# Each operator


def test_compare_swaps() -> None:
    code = (
        "def f(a, b, c):\n"
        "    return a < b, a <= b, a > b, a >= b, a == b, a != b, a in c, a not in c,"
        " a is None, a is not None\n"
    )
    found = descriptions(code)
    for before, after in [
        ("<", "<="),
        ("<=", "<"),
        (">", ">="),
        (">=", ">"),
        ("==", "!="),
        ("!=", "=="),
        ("in", "not in"),
        ("not in", "in"),
        ("is", "is not"),
        ("is not", "is"),
    ]:
        assert f"line 2: `{before}` became `{after}`" in found
    assert {m.operator for m in every(code)} == {"compare"}


def test_each_operator_of_a_chained_comparison_is_its_own_point() -> None:
    assert bodies("def f(a, b, c):\n    return a < b < c\n") >= {
        "return a <= b < c",
        "return a < b <= c",
    }


def test_arith_swaps_including_augmented_assignment() -> None:
    code = "def f(a, b):\n    a += b\n    return (a + b, a - b, a * b, a / b, a // b, a % b)\n"
    found = descriptions(code)
    assert "line 2: `+=` became `-=`" in found
    for before, after in [("+", "-"), ("-", "+"), ("*", "/"), ("/", "*"), ("//", "%"), ("%", "//")]:
        assert f"line 3: `{before}` became `{after}`" in found
    assert {m.operator for m in every(code)} == {"arith"}


def test_arith_leaves_strings_and_other_operators_alone() -> None:
    code = "def f(s, a, b):\n    return ('<' + s, s + f'{a}', '-' * a, '%s' % s, a ** b, a @ b)\n"
    assert every(code) == []


def test_integer_constants_move_by_one_either_way() -> None:
    code = "def f(x):\n    return x * 3 - -2\n"
    assert bodies(code) >= {
        "return x * 4 - -2",
        "return x * 2 - -2",
        "return x * 3 - -1",
        "return x * 3 - -3",
    }
    assert "line 2: `-2` became `-1`" in descriptions(code)


def test_zero_minus_one_keeps_its_precedence() -> None:
    assert "y = (-1) ** 2\n    return y" in bodies("def f():\n    y = 0 ** 2\n    return y\n")


def test_constants_inside_string_formatting_are_not_mutated() -> None:
    code = (
        "def f(x):\n"
        "    a = f'{x:>10} {x + 2}'\n"
        "    b = '%d of %d' % (x, 7)\n"
        "    c = '{} {}'.format(x, 8)\n"
        "    d = format(x, '>5')\n"
        "    return a, b, c, d\n"
    )
    found = every(code)
    assert {m.operator for m in found} == {"arith"}  # only `x + 2` inside the f-string
    assert [m.description for m in found] == ["line 2: `+` became `-`"]


def test_true_and_false_swap() -> None:
    code = "def f(x):\n    if x:\n        return True\n    return False\n"
    found = every(code)
    assert {m.description for m in found} == {
        "line 3: `True` became `False`",
        "line 4: `False` became `True`",
    }
    assert {m.operator for m in found} == {"constant"}


def test_and_or_swap() -> None:
    code = "def f(a, b, c):\n    return (a and b) or c\n"
    assert bodies(code) == {"return (a and b) and c", "return (a or b) or c"}
    assert descriptions(code) == {"line 2: `or` became `and`", "line 2: `and` became `or`"}


def test_a_not_is_removed() -> None:
    code = "def f(xs, x):\n    if not xs:\n        return []\n    return [x]\n"
    found = every(code)
    assert [m.description for m in found] == ["line 2: `not xs` became `xs`"]
    assert found[0].operator == "negate"
    assert "if xs:" in found[0].code


def test_min_and_max_swap() -> None:
    code = "def f(a, b):\n    return min(a, max(b, 0))\n"
    found = {m.description for m in every(code) if m.operator == "minmax"}
    assert found == {"line 2: `min` became `max`", "line 2: `max` became `min`"}


def test_a_shadowed_attribute_min_is_no_builtin() -> None:
    assert every("def f(s):\n    return s.min(s.max)\n") == []


def test_slice_bounds_shift_by_one() -> None:
    code = "def f(xs, n):\n    return xs[1:n]\n"
    assert bodies(code) == {
        "return xs[2:n]",
        "return xs[0:n]",
        "return xs[1:n + 1]",
        "return xs[1:n - 1]",
    }
    assert {m.operator for m in every(code)} == {"slice"}


def test_negative_slice_bounds_and_steps() -> None:
    code = "def f(xs):\n    return xs[:-1:2]\n"
    assert bodies(code) == {
        "return xs[:0:2]",
        "return xs[:-2:2]",
        "return xs[:-1:3]",  # the step is a plain constant
        "return xs[:-1:1]",
    }


def test_a_bool_return_is_flipped() -> None:
    code = "def f(s, n):\n    return s.startswith('a') and n > 0\n"
    found = [m for m in every(code) if m.operator == "return"]
    assert [m.description for m in found] == [
        "line 2: `return s.startswith('a') and n > 0` became "
        "`return not (s.startswith('a') and n > 0)`"
    ]


def test_any_return_of_a_bool_function_is_flipped_and_others_are_not() -> None:
    annotated = "def f(x) -> bool:\n    return x\n"
    assert bodies(annotated) == {"return not x"}
    assert every("def f(x):\n    return x\n") == []
    assert every("def f(x) -> bool:\n    return not x\n")[0].operator == "negate"


def test_a_nested_function_has_its_own_return_type() -> None:
    code = "def f(x) -> bool:\n    def g(y) -> int:\n        return y\n    return g(x)\n"
    assert bodies(code) == {"def g(y) -> int:\n        return y\n    return not g(x)"}


def test_decorators_and_annotations_are_not_mutation_points() -> None:
    code = (
        "@functools.lru_cache(maxsize=128)\n"
        "def f(x: Annotated[int, 3]) -> tuple[int, 2]:\n"
        "    y: Literal[5] = x\n"
        "    return y\n"
    )
    assert every(code) == []


def test_default_arguments_are_mutation_points() -> None:
    assert {m.code.split("\n", 1)[0] for m in every("def f(x, n=2):\n    return x\n")} == {
        "def f(x, n=3):",
        "def f(x, n=1):",
    }


# ---------------------------------------------------------------------------------------
# Choice, order and limits

MANY = """def grade(score, bonus=0):
    total = score + bonus
    if total >= 90:
        return 'A'
    if total >= 80:
        return 'B'
    if total > 70 and total < 75:
        return 'C-'
    if total == 70 or not bonus:
        return 'C'
    return 'F'[:max(1, total)]
"""


def test_mutants_are_deterministic() -> None:
    assert mutants(MANY, "grade") == mutants(MANY, "grade")
    assert mutants(MANY, "grade", seed=7, limit=9) == mutants(MANY, "grade", seed=7, limit=9)


def test_the_seed_changes_the_draw() -> None:
    draws = {tuple(m.code for m in mutants(MANY, "grade", seed=seed)) for seed in range(8)}
    assert len(draws) > 1


def test_the_limit_spreads_over_operators() -> None:
    for seed in range(5):
        found = mutants(MANY, "grade", limit=6, seed=seed)
        assert len(found) == 6
        assert len({m.operator for m in found}) == 6


def test_each_operator_spreads_over_lines() -> None:
    code = "def f(a):\n" + "".join(f"    a = a < {i}\n" for i in range(6)) + "    return a\n"
    found = [m for m in mutants(code, "f", limit=12) if m.operator == "compare"]
    assert len({m.line for m in found}) == len(found) == 6


def test_a_large_limit_gives_every_mutant_once() -> None:
    found = mutants(MANY, "grade", limit=1000)
    assert len({m.code for m in found}) == len(found)
    assert {m.operator for m in found} == set(OPERATORS) - {"return"}
    assert mutants(MANY, "grade", limit=len(found) + 1) == found


def test_limit_zero_and_negative() -> None:
    assert mutants(MANY, "grade", limit=0) == []
    with pytest.raises(ValueError, match="limit must be 0 or more, got -1"):
        mutants(MANY, "grade", limit=-1)


def test_no_mutants_without_a_function_or_a_mutation_point() -> None:
    assert mutants(MANY, "missing") == []
    assert mutants("def grade(:\n", "grade") == []
    assert mutants("def f(x):\n    return x\n", "f") == []
    assert mutants("f = lambda x: x + 1\n", "f") == []


# ---------------------------------------------------------------------------------------
# Classes

SHAPES = """class Rect:
    sides = 4

    def __init__(self, w, h):
        self.w = w
        self.h = h

    @property
    def area(self):
        return self.w * self.h

    @staticmethod
    def unit(n=1):
        return Rect(n, n)


def area(shape):
    return shape.w * shape.h
"""


def test_a_method_name_mutates_the_function_of_that_name_only() -> None:
    found = every(SHAPES, "area")
    assert [m.code for m in found] == ["def area(shape):\n    return shape.w / shape.h"]
    assert mutants(SHAPES, "__init__") == []


def test_a_class_name_makes_its_methods_mutation_points() -> None:
    found = every(SHAPES, "Rect")
    assert all(m.code.startswith("class Rect:") for m in found)
    assert {m.description for m in found} == {
        "line 2: `4` became `5`",
        "line 2: `4` became `3`",
        "line 10: `*` became `/`",
        "line 13: `1` became `2`",
        "line 13: `1` became `0`",
    }
    assert all("@property" in m.code and "@staticmethod" in m.code for m in found)


# ---------------------------------------------------------------------------------------
# Round trip and the program the sandbox runs


def test_each_mutant_is_an_unparse_round_trip_one_line_away() -> None:
    original = ast.unparse(ast.parse(MANY))
    for mutant in mutants(MANY, "grade", limit=1000):
        assert ast.unparse(ast.parse(mutant.code)) == mutant.code
        assert mutant.code != original
        changed = [
            (a, b)
            for a, b in zip(original.splitlines(), mutant.code.splitlines(), strict=True)
            if a != b
        ]
        assert len(changed) == 1
        assert MANY.splitlines()[mutant.line - 1] == changed[0][0]


def test_the_line_counts_from_the_first_decorator() -> None:
    code = "import x\n\n@x.deco\ndef f(a):\n    return a + 1\n"
    assert [m.line for m in mutants(code, "f", limit=10)] == [3, 3, 3]


def test_the_mutant_program_rebinds_the_function_after_the_solution() -> None:
    solution = "import math\n\n\ndef f(a, b):\n    return a < b\n\n\nprint(f(1, 2))\n"
    mutant = mutants(solution, "f", limit=1)[0]
    program = mutant_program(solution, mutant)
    assert program.startswith(solution.rstrip() + "\n\n\n# genteach mutant (")
    assert f": {mutant.description}\n" in program
    assert program.endswith(mutant.code + "\n")
    assert function_source(program, "f") == mutant.code
    compile(program, "solution.py", "exec", dont_inherit=True)


def test_code_that_would_fail_when_run_is_only_read() -> None:
    code = "raise SystemExit('never run')\n\ndef f(x):\n    return x + 1 / 0\n"
    assert len(mutants(code, "f", limit=10)) == 6  # + and /, 1 -> 2 or 0, 0 -> 1 or -1
