"""The one prompt loader: every template under ``prompts/`` goes through here.

Templates are jinja2 files rendered with ``StrictUndefined``, so a missing variable is an
error that names the template, never a silently empty field. User folders are searched
before the built-in one, so a user can override any built-in template by path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

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
        self._sources: dict[str, tuple[str, frozenset[str], bool]] = {}

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

    # -- identity: which template texts a run or a record used -----------------------------
    def source(self, name: str) -> str:
        """The text of template ``name`` as found on the search path."""
        return self._scan(name)[0]

    def references(self, name: str) -> tuple[frozenset[str], bool]:
        """The templates ``name`` includes, imports or extends by a literal name, and
        whether it also includes one by a variable (e.g. ``{% include category.guidance %}``,
        which only its caller can name)."""
        _, refs, dynamic = self._scan(name)
        return refs, dynamic

    def closure(self, names: Iterable[str]) -> list[str]:
        """``names`` and every template they reach through literal includes and imports,
        sorted; a reference that is not found raises :class:`PromptError` naming the
        template that makes it."""
        seen: set[str] = set()
        todo = [(n, "") for n in names]
        while todo:
            name, parent = todo.pop()
            if name in seen:
                continue
            try:
                refs, _ = self.references(name)
            except PromptError as exc:
                if parent:
                    raise PromptError(f"template {parent} includes {name!r}: {exc}") from exc
                raise
            seen.add(name)
            todo += [(r, name) for r in refs if r not in seen]
        return sorted(seen)

    def template_hash(self, name: str) -> str:
        """A 16-hex-digit sha256 of template ``name`` and everything it literally includes
        or imports (names and texts): it changes when any of those files does."""
        return self.chain_hash([name])

    def chain_hash(self, names: Iterable[str]) -> str:
        """One 16-hex-digit sha256 of the templates an agent chain rendered, with all they
        literally include or import. Pass the templates included by a variable (a
        sub-category's guidance) among ``names``; order and repeats do not matter."""
        digest = hashlib.sha256()
        for name in self.closure(names):
            digest.update(f"{name}\0{self.source(name)}\0".encode())
        return digest.hexdigest()[:16]

    def hashes(self, names: Iterable[str] | None = None) -> dict[str, str]:
        """Template name -> 16-hex-digit sha256 of its own text, for ``names`` (default:
        every template of the library), sorted by name."""
        chosen = self.names() if names is None else sorted(set(names))
        return {n: hashlib.sha256(self.source(n).encode()).hexdigest()[:16] for n in chosen}

    def library_hash(self) -> str:
        """One 16-hex-digit sha256 of every template of the library (names and texts)."""
        return self.chain_hash(self.names())

    def _scan(self, name: str) -> tuple[str, frozenset[str], bool]:
        if name not in self._sources:
            loader = self.env.loader
            assert loader is not None
            try:
                text, _, _ = loader.get_source(self.env, name)
            except jinja2.TemplateNotFound as exc:
                where = ", ".join(str(d) for d in self.search_path)
                raise PromptError(f"template {name!r} not found in {where}") from exc
            try:
                found = list(jinja2.meta.find_referenced_templates(self.env.parse(text, name)))
            except jinja2.TemplateSyntaxError as exc:
                raise PromptError(f"template {name}:{exc.lineno}: {exc.message}") from exc
            refs = frozenset(r for r in found if r is not None)
            self._sources[name] = (text, refs, None in found)
        return self._sources[name]

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
