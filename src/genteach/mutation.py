"""Code-made mutants of one function, for checking tests that a student wrote.

A mutant is the function with exactly one small change: ``<`` became ``<=``, ``+`` became
``-``, a ``2`` became ``3``, ``min`` became ``max``, a ``not`` was dropped. Tests that pass on
the reference solution and fail on a mutant *detect* that change. A mutant can also be
*equivalent* to the original (it behaves the same on every input, like ``i < n`` and
``i <= n - 1``); no test can detect it, which is why the caller keeps only the mutants that
the task's own key tests detect before asking whether the student's tests detect them too.

Everything here reads code with :mod:`ast` and writes it with :func:`ast.unparse`; nothing
is executed. A mutant's source is the whole mutated definition (comments lost); appended
after the original module (:func:`mutant_program`), it rebinds the name at module level, so
callers that look the name up at call time (the tests, recursive calls) reach the mutant.
Names bound before it (``HANDLERS = {"f": f}``) keep the original.

Example::

    >>> code = "def cap(xs, n=3):\\n    return min(len(xs), n)\\n"
    >>> [m.description for m in mutants(code, "cap", limit=2)]
    ['line 1: `3` became `4`', 'line 2: `min` became `max`']
"""

from __future__ import annotations

import ast
import copy
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

#: The operator ids, in the order the docs list them.
OPERATORS = ("compare", "arith", "constant", "boolean", "negate", "return", "slice", "minmax")

_COMPARE_SWAP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_ARITH_SWAP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mod,
    ast.Mod: ast.FloorDiv,
}
_SYMBOLS: dict[type[ast.AST], str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.And: "and",
    ast.Or: "or",
}
#: Calls whose result is a bool, so ``return <call>`` can be flipped with ``not``.
_BOOL_FUNCTIONS = frozenset(
    {"all", "any", "bool", "callable", "hasattr", "isinstance", "issubclass"}
)
_BOOL_METHODS = frozenset(
    {
        "endswith",
        "isalnum",
        "isalpha",
        "isdecimal",
        "isdigit",
        "isdisjoint",
        "isidentifier",
        "islower",
        "isnumeric",
        "isspace",
        "issubset",
        "issuperset",
        "istitle",
        "isupper",
        "startswith",
    }
)
#: Fields never mutated: decorators and type annotations configure code, they are not logic.
_SKIPPED_FIELDS = frozenset(
    {"decorator_list", "annotation", "returns", "type_comment", "type_params"}
)
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_LINE_BREAK = re.compile(r"\r\n?|\n")
_SNIPPET = 60

#: One step from a node to a child: the field's name and, for list fields, the position.
_Step = tuple[str, int | None]


@dataclass(frozen=True)
class Mutant:
    """One first-order mutant of a function: the original with exactly one node changed.

    Tests that pass on the original and fail when ``code`` replaces it detect this change.
    A mutant may be equivalent to the original (no input tells them apart), so a mutant
    that survives a test suite proves nothing by itself.

    Attributes:
        code: The complete mutated definition (``ast.unparse`` output, decorators
            included), to be appended after the original module so that it rebinds the name.
        operator: Which kind of change, one of :data:`OPERATORS`.
        line: The changed line, counted from 1 at the first line of
            :func:`function_source` (its first decorator, else its ``def``/``class``).
        description: One line for people and prompts: "line 4: `<` became `<=`".
    """

    code: str
    operator: str
    line: int
    description: str


@dataclass(frozen=True)
class _Point:
    """A place where one mutation applies, found in the original tree."""

    path: tuple[_Step, ...]
    operator: str
    line: int
    change: str
    arg: int | str | None = None


@dataclass(frozen=True)
class _Context:
    in_format: bool = False
    returns_bool: bool = False
    #: The node is a slice bound (the slice operator shifts it) or the number under a minus.
    no_literal: bool = False


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _definition(tree: ast.Module, name: str) -> ast.stmt | None:
    """The top-level ``def``/``class`` that binds ``name`` last (the one that wins)."""
    found: ast.stmt | None = None
    for node in tree.body:
        if isinstance(node, _DEFINITIONS) and node.name == name:
            found = node
    return found


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


def function_source(code: str, name: str) -> str | None:
    """The source of the top-level function or class ``name`` in ``code``, decorators
    included, as written (comments kept).

    Args:
        code: A Python module.
        name: The function's or class's name. A method is not top-level: give its class.

    Returns:
        The definition's lines, or None when ``code`` does not parse or defines no
        top-level ``name`` (the last definition wins when there are several).
    """
    tree = _parse(code)
    node = _definition(tree, name) if tree is not None else None
    if node is None or node.end_lineno is None:
        return None
    lines = _LINE_BREAK.split(code)
    return "\n".join(lines[_first_line(node) - 1 : node.end_lineno]).rstrip()


def mutants(code: str, name: str, *, limit: int = 5, seed: int = 0) -> list[Mutant]:
    """First-order mutants of the top-level function (or class) ``name`` in ``code``.

    Mutation points, each changing one node (decorators and annotations never change):
    ``compare`` swaps ``<``/``<=``, ``>``/``>=``, ``==``/``!=``, ``in``/``not in``,
    ``is``/``is not``; ``arith`` swaps ``+``/``-``, ``*``/``/``, ``//``/``%`` (not on
    strings, augmented assignments included); ``constant`` turns an integer ``n`` into
    ``n + 1`` and ``n - 1`` (not inside string formatting) and ``True``/``False`` into the
    other; ``boolean`` swaps ``and``/``or``; ``negate`` drops a ``not``; ``minmax`` swaps
    ``min``/``max``; ``slice`` shifts a slice bound by one either way; ``return`` flips
    ``return <expr>`` with ``not`` when the expression is a bool (a comparison, a
    ``bool``-returning call, or any value of a function annotated ``-> bool``). For a class,
    every method (and the class body) holds mutation points.

    Mutants whose source equals the original's, duplicates and any that would not compile
    are dropped. The order spreads over operators: a round-robin over the operators, each
    operator's points taken round-robin over its lines, operators and lines shuffled with
    ``random.Random(seed)``; the first ``limit`` mutants of that order are returned, so the
    same ``(code, name, seed)`` always gives the same list.

    Args:
        code: A Python module holding the function.
        name: The top-level function's or class's name.
        limit: The most mutants to return.
        seed: Seed of the draw when there are more points than ``limit``.

    Returns:
        Up to ``limit`` mutants; empty when the code does not parse, ``name`` is not a
        top-level definition or it offers no mutation point.

    Raises:
        ValueError: ``limit`` is negative.
    """
    if limit < 0:
        raise ValueError(f"limit must be 0 or more, got {limit}")
    tree = _parse(code)
    node = _definition(tree, name) if tree is not None else None
    if node is None or limit == 0:
        return []
    try:
        original = ast.unparse(node)
        points = list(_points(node, (), _Context()))
    except RecursionError:
        return []
    first = _first_line(node)
    seen = {original}
    found: list[Mutant] = []
    for point in _spread(points, random.Random(seed)):
        mutant = _make(node, point, first)
        if mutant is None or mutant.code in seen:
            continue
        seen.add(mutant.code)
        found.append(mutant)
        if len(found) == limit:
            break
    return found


def mutant_program(solution: str, mutant: Mutant) -> str:
    """What the sandbox runs as ``solution.py`` to check tests against ``mutant``: the
    solution unchanged, then a comment naming the change, then the mutated definition, which
    rebinds the function's name at module level.

    Args:
        solution: The reference solution (the module the mutant was made from).
        mutant: One of :func:`mutants` of that module.

    Returns:
        The program text, ending with a newline.
    """
    note = mutant.description.replace("\n", " ")
    return (
        f"{solution.rstrip()}\n\n\n"
        f"# genteach mutant ({mutant.operator}), replaces the definition above: {note}\n"
        f"{mutant.code.rstrip()}\n"
    )


# ---------------------------------------------------------------------------------------
# Finding mutation points


def _points(node: ast.AST, path: tuple[_Step, ...], ctx: _Context) -> Iterator[_Point]:
    """Every mutation point under ``node`` in a fixed (pre-order, field) order."""
    yield from _here(node, path, ctx)
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        ctx = _Context(ctx.in_format, _is_bool_annotation(node.returns))
    elif isinstance(node, ast.Lambda):
        ctx = _Context(ctx.in_format, False)
    for field, value in ast.iter_fields(node):
        if field in _SKIPPED_FIELDS:
            continue
        children: Sequence[object] = value if isinstance(value, list) else [value]
        for index, child in enumerate(children):
            if isinstance(child, ast.AST):
                step = (field, index if isinstance(value, list) else None)
                yield from _points(child, (*path, step), _child_context(node, field, ctx))


def _child_context(node: ast.AST, field: str, ctx: _Context) -> _Context:
    in_format = ctx.in_format or isinstance(node, ast.JoinedStr) or _formats(node, field)
    no_literal = (isinstance(node, ast.Slice) and field in ("lower", "upper")) or (
        _int_literal(node) is not None
    )
    return _Context(in_format, ctx.returns_bool, no_literal)


def _formats(node: ast.AST, field: str) -> bool:
    """Whether ``field`` of ``node`` holds the arguments of string formatting."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return field == "right" and _is_text(node.left)
    if isinstance(node, ast.Call) and field in ("args", "keywords"):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id == "format"
        return isinstance(func, ast.Attribute) and func.attr == "format" and _is_text(func.value)
    return False


def _here(node: ast.AST, path: tuple[_Step, ...], ctx: _Context) -> Iterator[_Point]:
    line = getattr(node, "lineno", 0)
    if _int_literal(node) is not None:
        if not (ctx.in_format or ctx.no_literal):
            yield _Point(path, "constant", line, "int", 1)
            yield _Point(path, "constant", line, "int", -1)
    elif isinstance(node, ast.Compare):
        for index, op in enumerate(node.ops):
            if type(op) in _COMPARE_SWAP:
                yield _Point(path, "compare", line, "compare", index)
    elif isinstance(node, ast.BinOp):
        if type(node.op) in _ARITH_SWAP and not (_is_text(node.left) or _is_text(node.right)):
            yield _Point(path, "arith", line, "arith")
    elif isinstance(node, ast.AugAssign):
        if type(node.op) in _ARITH_SWAP and not _is_text(node.value):
            yield _Point(path, "arith", line, "arith")
    elif isinstance(node, ast.BoolOp):
        yield _Point(path, "boolean", line, "boolean")
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield _Point(path, "negate", line, "negate")
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield _Point(path, "constant", line, "bool")
    elif isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id in ("min", "max"):
            yield _Point(path, "minmax", line, "minmax")
    elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
        for bound in ("lower", "upper"):
            if getattr(node.slice, bound) is not None:
                yield _Point(path, "slice", line, bound, 1)
                yield _Point(path, "slice", line, bound, -1)
    elif isinstance(node, ast.Return) and node.value is not None:
        value = node.value
        plain = isinstance(value, ast.Constant) or (
            isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.Not)
        )
        if not plain and (ctx.returns_bool or _is_boolish(value)):
            yield _Point(path, "return", line, "return")


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str | bytes)
    )


def _is_boolish(node: ast.expr) -> bool:
    if isinstance(node, ast.Compare):
        return True
    if isinstance(node, ast.BoolOp):
        return all(_is_boolish(value) for value in node.values)
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id in _BOOL_FUNCTIONS
        return isinstance(func, ast.Attribute) and func.attr in _BOOL_METHODS
    return False


def _is_bool_annotation(node: ast.expr | None) -> bool:
    return (isinstance(node, ast.Name) and node.id == "bool") or (
        isinstance(node, ast.Constant) and node.value == "bool"
    )


def _spread(points: list[_Point], rng: random.Random) -> list[_Point]:
    """The points in drawing order: round-robin over operators, each over its lines."""
    by_operator: dict[str, dict[int, list[_Point]]] = {}
    for point in points:
        by_operator.setdefault(point.operator, {}).setdefault(point.line, []).append(point)
    queues: list[list[_Point]] = []
    for operator in sorted(by_operator):
        by_line = by_operator[operator]
        lines = sorted(by_line)
        rng.shuffle(lines)
        for line in lines:
            rng.shuffle(by_line[line])
        queues.append(_round_robin([by_line[line] for line in lines]))
    rng.shuffle(queues)
    return _round_robin(queues)


def _round_robin(queues: list[list[_Point]]) -> list[_Point]:
    order: list[_Point] = []
    for turn in range(max((len(q) for q in queues), default=0)):
        order.extend(q[turn] for q in queues if turn < len(q))
    return order


# ---------------------------------------------------------------------------------------
# Applying one mutation


def _make(definition: ast.stmt, point: _Point, first: int) -> Mutant | None:
    """The mutant for ``point`` on a copy of ``definition``, or None if it does not compile."""
    try:
        tree = copy.deepcopy(definition)
        before, after = _apply(tree, point)
        code = ast.unparse(tree)
        compile(code, "<mutant>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError):
        return None
    line = max(point.line - first + 1, 1)
    return Mutant(
        code=code,
        operator=point.operator,
        line=line,
        description=f"line {line}: `{_short(before)}` became `{_short(after)}`",
    )


def _apply(tree: ast.AST, point: _Point) -> tuple[str, str]:
    """Change the node at ``point.path`` in ``tree``; the text before and after."""
    parent: ast.AST | None = None
    step: _Step = ("", None)
    node = tree
    for step in point.path:
        parent = node
        field, index = step
        child = getattr(node, field)
        node = child[index] if index is not None else child
    change = point.change
    if change == "compare":
        assert isinstance(node, ast.Compare) and isinstance(point.arg, int)
        old = node.ops[point.arg]
        node.ops[point.arg] = _COMPARE_SWAP[type(old)]()
        return _SYMBOLS[type(old)], _SYMBOLS[type(node.ops[point.arg])]
    if change == "arith":
        assert isinstance(node, ast.BinOp | ast.AugAssign)
        old_op = node.op
        node.op = _ARITH_SWAP[type(old_op)]()
        suffix = "=" if isinstance(node, ast.AugAssign) else ""
        return _SYMBOLS[type(old_op)] + suffix, _SYMBOLS[type(node.op)] + suffix
    if change == "boolean":
        assert isinstance(node, ast.BoolOp)
        old_bool = node.op
        node.op = ast.Or() if isinstance(old_bool, ast.And) else ast.And()
        return _SYMBOLS[type(old_bool)], _SYMBOLS[type(node.op)]
    if change == "minmax":
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        before = node.func.id
        node.func.id = "max" if before == "min" else "min"
        return before, node.func.id
    if change == "bool":
        assert isinstance(node, ast.Constant)
        before = ast.unparse(node)
        node.value = not node.value
        return before, ast.unparse(node)
    if change in ("lower", "upper"):
        assert isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice)
        before = ast.unparse(node)
        bound = getattr(node.slice, change)
        assert isinstance(bound, ast.expr) and isinstance(point.arg, int)
        setattr(node.slice, change, _shifted(bound, point.arg))
        return before, ast.unparse(node)
    if change == "return":
        assert isinstance(node, ast.Return) and node.value is not None
        before = ast.unparse(node)
        node.value = ast.UnaryOp(op=ast.Not(), operand=node.value)
        return before, ast.unparse(node)
    if change == "int":
        value = _int_literal(node)
        assert value is not None and isinstance(point.arg, int)
        new = _int_node(value + point.arg)
    else:
        assert change == "negate" and isinstance(node, ast.UnaryOp)
        new = node.operand
    assert parent is not None
    field, index = step
    if index is None:
        setattr(parent, field, new)
    else:
        getattr(parent, field)[index] = new
    return ast.unparse(node), ast.unparse(new)


def _int_literal(node: ast.AST) -> int | None:
    """The value of an integer literal (``3``, ``-3``; not a bool), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int_literal(node.operand)
        return None if inner is None or isinstance(node.operand, ast.UnaryOp) else -inner
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


def _int_node(value: int) -> ast.expr:
    """A literal for ``value``; negative ones as a unary minus, so precedence stays right."""
    if value < 0:
        return ast.UnaryOp(op=ast.USub(), operand=ast.Constant(-value))
    return ast.Constant(value)


def _shifted(bound: ast.expr, delta: int) -> ast.expr:
    """``bound`` moved by ``delta``: a literal becomes the next literal, else ``bound ± 1``."""
    value = _int_literal(bound)
    if value is not None:
        return _int_node(value + delta)
    op: ast.operator = ast.Add() if delta > 0 else ast.Sub()
    return ast.BinOp(left=bound, op=op, right=ast.Constant(abs(delta)))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 3] + "..."


__all__ = ["OPERATORS", "Mutant", "function_source", "mutant_program", "mutants"]
