"""Abstract shapes of JSON answers, generated from the pydantic models that parse them.

An agent's answer format lives in one place, its output model: the prompt's format
section shows :func:`json_shape` of that model (placeholders from the fields'
descriptions, never concrete content a model could copy), the parser validates against
the same model, and constrained decoding uses its JSON schema.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from genteach.keys import code_set_fields

_SCALARS = {str: "text", int: "an integer", float: "a number", bool: "true or false"}


def json_shape(
    model: type[BaseModel],
    *,
    overrides: dict[str, str] | None = None,
    skip: frozenset[str] = frozenset(),
) -> str:
    """One line showing the shape of ``model``'s JSON, e.g.
    ``{"title": "<a short, specific title>", "tags": ["<one tag>", ...]}``. A model's
    ``shape_first`` (a class attribute) names fields to show first: the order a model
    should write them in (JSON objects are unordered, so parsing does not depend on it).

    Args:
        model: the pydantic model.
        overrides: field name -> text shown instead of the field's own shape (any depth).
        skip: field names left out (fields that code sets; fields hidden from the JSON
            schema with ``SkipJsonSchema`` are always left out).
    """
    return _model(model, overrides or {}, skip)


def _model(model: type[BaseModel], overrides: dict[str, str], skip: frozenset[str]) -> str:
    parts = []
    hidden = code_set_fields(model)
    first = [n for n in getattr(model, "shape_first", ()) if n in model.model_fields]
    names = [*first, *(n for n in model.model_fields if n not in first)]
    for name in names:
        info = model.model_fields[name]
        if name in skip or info.exclude or name in hidden:
            continue
        shown = overrides.get(name)
        if shown is None:
            shown = _value(info.annotation, info, overrides, skip)
        parts.append(f'"{info.alias or name}": {shown}')
    return "{" + ", ".join(parts) + "}"


def _placeholder(info: FieldInfo | None, fallback: str) -> str:
    text = (info.description if info is not None else None) or fallback
    return f"<{text}>"


def _value(
    annotation: Any, info: FieldInfo | None, overrides: dict[str, str], skip: frozenset[str]
) -> str:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is typing.Annotated:
        return _value(args[0], info, overrides, skip)
    if origin is Literal:
        if len(args) == 1:
            return _json_literal(args[0])
        choices = " or ".join(str(a) for a in args)
        desc = info.description if info is not None and info.description else ""
        return f'"<{desc}: {choices}>"' if desc else f'"<one of {choices}>"'
    if origin in (Union, types.UnionType):
        real = [a for a in args if a is not type(None)]
        inner = (
            _value(real[0], info, overrides, skip)
            if len(real) == 1
            else _placeholder(info, "a value")
        )
        return f"{inner} or null" if len(real) < len(args) else inner
    if origin in (list, tuple, set, frozenset):
        item = _value(args[0], None, overrides, skip) if args else "<an item>"
        if info is not None and info.description and item.startswith(('"<', "<")):
            item = _quote_like(item, _placeholder(info, ""))
        return f"[{item}, ...]"
    if origin is dict:
        return _placeholder(info, "a JSON object")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _model(annotation, overrides, skip)
    if annotation in _SCALARS:
        placeholder = _placeholder(info, _SCALARS[annotation])
        return f'"{placeholder}"' if annotation is str else placeholder
    return _placeholder(info, "a JSON value")


def _quote_like(item: str, placeholder: str) -> str:
    """The list's own description as its item's placeholder, keeping the item's quoting."""
    return f'"{placeholder}"' if item.startswith('"') else placeholder


def _json_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


__all__ = ["json_shape"]
