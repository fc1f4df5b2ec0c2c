"""The one prompt loader: every template under ``prompts/`` goes through here.

Templates are jinja2 files rendered with ``StrictUndefined``, so a missing variable is an
error that names the template, never a silently empty field. User folders are searched
before the built-in one, so a user can override any built-in template by path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from genteach._resources import builtin_dir


class PromptError(Exception):
    """A template is missing, malformed, or was rendered without a variable it needs."""


class PromptLibrary:
    """Loads and renders prompt templates.

    Args:
        search_path: extra folders searched before the built-in ``prompts/``.
        include_builtin: set False to use only ``search_path``.

    Example:
        >>> lib = PromptLibrary()
        >>> text = lib.render("common/repair.j2", reason="not JSON", format_hint="JSON")
    """

    def __init__(
        self, search_path: Sequence[str | Path] = (), *, include_builtin: bool = True
    ) -> None:
        dirs = [Path(p) for p in search_path]
        for d in dirs:
            if not d.is_dir():
                raise PromptError(f"prompt folder {d} does not exist")
        if include_builtin:
            dirs.append(builtin_dir("prompts"))
        self.search_path: tuple[Path, ...] = tuple(dirs)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=False,
        )
        # JSON for prompts: readable (no \u escapes of quotes or non-ASCII), key order kept.
        self.env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False)

    def exists(self, name: str) -> bool:
        """True when template ``name`` is found on the search path."""
        try:
            self.env.get_template(name)
        except jinja2.TemplateNotFound:
            return False
        return True

    def check(self, name: str) -> None:
        """Raise :class:`PromptError` unless ``name`` exists and compiles."""
        self._get(name)

    def render(self, name: str, /, **variables: Any) -> str:
        """Render template ``name`` with ``variables``; surrounding blank space is trimmed."""
        template = self._get(name)
        try:
            return template.render(**variables).strip()
        except jinja2.UndefinedError as exc:
            raise PromptError(f"template {name}: {exc.message}") from exc
        except jinja2.TemplateNotFound as exc:
            raise PromptError(
                f"template {name} includes {exc.name!r}, which is not in "
                f"{', '.join(map(str, self.search_path))}"
            ) from exc
        except jinja2.TemplateError as exc:
            raise PromptError(f"template {name}: {exc}") from exc
        except TypeError as exc:  # e.g. range() over a missing (StrictUndefined) variable
            raise PromptError(f"template {name}: {exc} (a variable is missing?)") from exc

    def names(self) -> list[str]:
        """All template names on the search path (``*.j2``)."""
        return sorted(n for n in self.env.list_templates() if n.endswith(".j2"))

    def _get(self, name: str) -> jinja2.Template:
        try:
            return self.env.get_template(name)
        except jinja2.TemplateNotFound as exc:
            where = ", ".join(str(d) for d in self.search_path)
            raise PromptError(f"template {name!r} not found in {where}") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise PromptError(
                f"template {exc.filename or name}:{exc.lineno}: {exc.message}"
            ) from exc


__all__ = ["PromptError", "PromptLibrary"]
