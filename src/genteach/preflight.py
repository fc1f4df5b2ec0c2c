"""Checks made before the first model call: every template a skill's agents and flows will
render exists, compiles and finds what it includes.

A run that would fail on a template at its first unit must fail before it spends anything:
:class:`~genteach.Pipeline` runs :func:`check_templates` when it is built, and
``genteach taxonomy validate`` prints the same problems.

Where templates are named:

- a flow or agent with a ``templates()`` method names them there (use it for names built
  in code); otherwise every attribute whose name ends in ``_template`` and holds a string
  is one, and agents held by a flow (as attributes, or in lists or dicts) are read too;
- every agent of :class:`~genteach.agents.base.Agent` may render the repair templates;
- each sub-category's guidance (``{% include category.guidance %}``) and each entry of a
  skill's ``prompts:``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from genteach.agents.base import REPAIR_TEMPLATE, RETRY_NOTE_TEMPLATE, Agent
from genteach.flows.base import model_free
from genteach.prompts import PromptError, PromptLibrary
from genteach.taxonomy import Skill, TaxonomyError


def skill_templates(skill: Skill, flows: Sequence[Any]) -> dict[str, str]:
    """The templates a skill's run may render: name -> where it is named (a key path).

    Args:
        skill: the skill (its guidance templates and ``prompts:`` entries).
        flows: the skill's built flows, in pipeline order.
    """
    found: dict[str, str] = {}
    for kind, items in (("transformers", skill.transformers), ("task_types", skill.task_types)):
        for it in items:
            if not model_free(it.agent):
                found.setdefault(skill.guidance(kind, it), f"skills.{skill.id}.{kind}.{it.id}")  # type: ignore[arg-type]
    for key, name in skill.prompts.items():
        found.setdefault(name, f"skills.{skill.id}.prompts.{key}")
    for i, flow in enumerate(flows):
        where = f"skills.{skill.id}.pipeline[{i}] ({getattr(flow, 'name', type(flow).__name__)})"
        for name, owner in _named_by(flow, where, set(), top=True):
            found.setdefault(name, owner)
    return found


def check_templates(
    skills: Iterable[tuple[Skill, Sequence[Any]]], prompts: PromptLibrary, source: str
) -> list[str]:
    """One line per template problem (missing, not compiling, including a missing one).

    Args:
        skills: each skill with its built flows.
        prompts: the library the run renders with.
        source: the taxonomy's file (or name), the start of each line.
    """
    problems: list[str] = []
    for skill, flows in skills:
        for name, where in skill_templates(skill, flows).items():
            try:
                prompts.closure([name])
            except PromptError as exc:
                problems.append(f"{source}: {where}: {exc}")
    return problems


def run_templates(
    skills: Iterable[tuple[Skill, Sequence[Any]]], prompts: PromptLibrary
) -> list[str]:
    """Every template a run of these skills may render, with all it includes, sorted."""
    names: set[str] = set()
    for skill, flows in skills:
        names.update(skill_templates(skill, flows))
    return prompts.closure(names)


@contextmanager
def naming_file(source: str) -> Iterator[None]:
    """Start a :class:`TaxonomyError` raised inside with the taxonomy's file, unless it
    does already (building flows names the key path, e.g. ``skills.rc.pipeline[1]``)."""
    try:
        yield
    except TaxonomyError as exc:
        if not source or str(exc).startswith(source):
            raise
        raise TaxonomyError(f"{source}: {exc}") from exc


def _named_by(obj: Any, where: str, seen: set[int], *, top: bool = False) -> list[tuple[str, str]]:
    """(template, where) pairs named by a flow or agent and by the agents it holds; an
    agent's class defaults (``default_*_template``) count only through its own fields."""
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    name = getattr(obj, "name", None)
    label = f"{where} agent {name}" if not top and isinstance(name, str) else where
    out: list[tuple[str, str]] = []
    own = getattr(obj, "templates", None)
    if callable(own):
        out += [(str(n), label) for n in own()]
    else:
        for attr in dir(obj):
            if attr.endswith("_template") and not attr.startswith(("_", "default_")):
                value = getattr(obj, attr, None)
                if isinstance(value, str):
                    out.append((value, f"{label}: {attr}"))
    if isinstance(obj, Agent):
        out += [(REPAIR_TEMPLATE, label), (RETRY_NOTE_TEMPLATE, label)]
    for value in vars(obj).values() if hasattr(obj, "__dict__") else ():
        values = (
            value.values() if isinstance(value, Mapping) else value
            if isinstance(value, list | tuple) else (value,)
        )  # fmt: skip
        for v in values:
            if _is_agent_like(v):
                out += _named_by(v, where, seen)
    return out


def _is_agent_like(value: Any) -> bool:
    return isinstance(value, Agent) or (
        hasattr(value, "__dict__")
        and not isinstance(value, type)
        and (hasattr(value, "system_template") or callable(getattr(value, "templates", None)))
    )


__all__ = ["check_templates", "naming_file", "run_templates", "skill_templates"]
