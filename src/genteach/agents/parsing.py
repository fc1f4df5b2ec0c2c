"""Pure parsing helpers shared by the agents: find the JSON in a model's answer and
validate it against the agent's output model, with reasons a human can read."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from genteach.errors import ParseError, SkipItem

T = TypeVar("T", bound=BaseModel)


def extract_json_object(text: str) -> dict[str, Any]:
    """Return the first complete top-level JSON object in ``text``.

    Accepts a bare object, one inside a ```json fence, or one preceded by a few words.
    Raises :class:`ParseError` for no object, a truncated object, or invalid JSON.
    """
    stripped = text.strip()
    if not stripped:
        raise ParseError("empty answer")
    start = stripped.find("{")
    if start < 0:
        raise ParseError("no JSON object in the answer")
    decoder = json.JSONDecoder()
    try:
        obj, _ = decoder.raw_decode(stripped, start)
    except json.JSONDecodeError as exc:
        depth = 0
        in_str = esc = False
        for ch in stripped[start:]:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = not in_str
            elif not in_str and ch == "{":
                depth += 1
            elif not in_str and ch == "}":
                depth -= 1
        if depth > 0 or in_str:
            raise ParseError("truncated JSON object (the answer stops before it closes)") from exc
        raise ParseError(
            f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    if not isinstance(obj, dict):
        raise ParseError("the JSON value is not an object")
    return obj


#: The delimiters genteach's templates put around material (``<<<SEED`` ... ``SEED>>>``).
_MARKER = re.compile(r"<<<[A-Z_]{3,}|\b[A-Z_]{3,}>>>")


#: A whole value that is a placeholder shape, not content: ``<the answer>``, ``...``.
_SHAPE_ONLY = re.compile(r"\s*(<[^<>\n]{2,200}>|\.\.\.|…)\s*")


def check_no_markers(obj: Any, path: str = "") -> None:
    """Raise :class:`ParseError` if any string in ``obj`` contains genteach's input markers
    (the model echoed its input framing instead of writing new content) or is only a
    placeholder shape (``<...>`` or ``...``, copied from a format's shape). ``path`` is
    where ``obj`` sits in the answer (``tasks[0].key``), named in the message."""
    if isinstance(obj, str):
        where = f"field {path}" if path else "the answer"
        m = _MARKER.search(obj)
        if m:
            raise ParseError(
                f"{where} contains the input marker {m.group(0)!r}: write the "
                "content itself, without the <<<NAME ... NAME>>> delimiters"
            )
        if _SHAPE_ONLY.fullmatch(obj):
            raise ParseError(
                f"{where} is {obj.strip()!r}, a placeholder of the format's "
                "shape: write the real content in its place"
            )
    elif isinstance(obj, dict):
        for key, value in obj.items():
            check_no_markers(value, f"{path}.{key}" if path else str(key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            check_no_markers(value, f"{path}[{i}]")


#: A placeholder of a template's format example: ``<the rewritten request ...>``, at least
#: two lowercase words between angle brackets (not a tag with attributes, not a generic
#: type such as ``Map<String, Integer>``).
_PLACEHOLDER = re.compile(r"<[^<>=\"/\n]{3,160}>")
_MARKED = re.compile(r"<<<([A-Z_]{3,})\b.*?\b\1>>>", re.DOTALL)


def format_placeholders(texts: Iterable[str]) -> set[str]:
    """The placeholders in prompt ``texts``, outside the material they delimit with
    ``<<<NAME ... NAME>>>`` (a seed's own ``<...>`` is content, not a placeholder)."""
    found: set[str] = set()
    for text in texts:
        for p in _PLACEHOLDER.findall(_MARKED.sub(" ", text)):
            if len(re.findall(r"\b[a-z]{2,}\b", p)) >= 2:
                found.add(p)
    return found


def check_no_placeholders(answer: str, placeholders: Iterable[str]) -> None:
    """Raise :class:`ParseError` if ``answer`` contains one of the prompt's format
    placeholders: the model copied the example's shape instead of filling it in."""
    for p in sorted(placeholders):
        if p in answer:
            raise ParseError(
                f"the answer contains {p!r}, a placeholder of the format example: write the "
                "real content in its place"
            )


def shares_words(text: str, other: str, n: int = 6) -> bool:
    """Whether ``text`` repeats a run of ``n`` consecutive words of ``other`` (case and
    punctuation ignored); an ``other`` shorter than ``n`` words never matches."""
    a = re.findall(r"\w+", text.lower())
    b = re.findall(r"\w+", other.lower())
    grams = {tuple(a[i : i + n]) for i in range(len(a) - n + 1)}
    return any(tuple(b[i : i + n]) in grams for i in range(len(b) - n + 1))


def parse_json_as(text: str, model: type[T]) -> T:
    """Extract the JSON object from ``text`` and validate it as ``model``.

    A ``"skip": true`` object raises :class:`SkipItem` with its ``reason`` before
    validation, so a declined input is never mistaken for a malformed one.
    """
    obj = extract_json_object(text)
    if obj.get("skip") is True:
        reason = str(obj.get("reason") or "no reason given").strip()
        raise SkipItem(reason)
    check_no_markers(obj)
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "<root>"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ParseError(f"field {loc}: {first['msg']}{more}") from exc


__all__ = [
    "ParseError",
    "SkipItem",
    "check_no_markers",
    "check_no_placeholders",
    "extract_json_object",
    "format_placeholders",
    "parse_json_as",
    "shares_words",
]
