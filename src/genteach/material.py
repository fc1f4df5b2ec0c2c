"""Typed material: what content transformation makes of a seed, and what tasks are about.

A material is a small typed object (a passage, an API list; later a document set, code
with tests, a table, a web page, a database). Generic flows know it only through the
:class:`Material` protocol: its ``kind``, its ``title`` and how it is rendered for the
agents that write and refine tasks and for the student. Materials whose text can be
edited in place (passage-editing refinement goals) also implement :class:`Editable`.

Add a material by writing a class with these members (a pydantic model is easiest) and a
transformer agent whose output's ``material()`` returns it: see docs/adding-a-skill.md.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from genteach.errors import ParseError

if TYPE_CHECKING:
    from genteach.prompts import PromptLibrary

#: Who a material is rendered for: the agents that write and refine tasks, or the student.
Audience = Literal["agent", "student"]


@runtime_checkable
class Material(Protocol):
    """What tasks are written about."""

    @property
    def kind(self) -> str:
        """A short name of the material type (``passage``, ``api_list``)."""
        ...

    @property
    def title(self) -> str:
        """A title, or ``""``."""
        ...

    def render(self, prompts: PromptLibrary, audience: Audience) -> str:
        """The material as text for ``audience`` (templates may do the rendering)."""
        ...


class EditSpan(BaseModel):
    """One edit of a text: replace the one occurrence of ``find`` by ``replace``."""

    model_config = ConfigDict(extra="forbid")
    find: str = Field(
        min_length=3, description="an exact, verbatim excerpt of the passage that occurs once"
    )
    replace: str = Field(description="the text that takes its place (may be empty)")


@runtime_checkable
class Editable(Protocol):
    """A material whose text can be edited by find/replace spans."""

    def apply_edits(self, spans: list[EditSpan]) -> Material:
        """A new material with every span applied; raises ParseError when a span's
        ``find`` does not occur exactly once or nothing changes."""
        ...


class Passage(BaseModel):
    """A text: the transformed seed, or a task's own excerpt of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["passage"] = "passage"
    title: str = ""
    text: str

    def render(self, prompts: PromptLibrary, audience: Audience) -> str:
        return self.text

    def apply_edits(self, spans: list[EditSpan]) -> Passage:
        return Passage(title=self.title, text=apply_spans(self.text, spans))


def apply_spans(text: str, spans: list[EditSpan]) -> str:
    """Apply find/replace ``spans`` to ``text``, checking that each ``find`` occurs exactly
    once in the original text, that spans do not overlap, and that the text changes.

    Raises:
        ParseError: with the reason, for the model to repair.
    """
    if not spans:
        raise ParseError("no edit: give at least one find/replace span")
    located: list[tuple[int, int, str]] = []
    for i, span in enumerate(spans, 1):
        count = text.count(span.find)
        if count != 1:
            where = "does not occur" if count == 0 else f"occurs {count} times"
            raise ParseError(
                f"edit {i}: the find text {span.find[:60]!r} {where} in the passage; quote one "
                "exact excerpt that occurs once"
            )
        start = text.index(span.find)
        located.append((start, start + len(span.find), span.replace))
    located.sort()
    for (_, end1, _), (start2, _, _) in itertools.pairwise(located):
        if start2 < end1:
            raise ParseError("two edits overlap: give separate, non-overlapping excerpts")
    out, last = [], 0
    for start, end, replacement in located:
        out.append(text[last:start])
        out.append(replacement)
        last = end
    out.append(text[last:])
    new = "".join(out)
    if new == text:
        raise ParseError("the edits change nothing: each replace must differ from its find")
    return new


#: Where a document of a set comes from (see :class:`Document`).
Origin = Literal["material", "near", "random"]


class Document(BaseModel):
    """One retrieved document of a :class:`DocumentSet`.

    ``origin`` says where code took it from (never shown): ``material`` (this unit's
    material, the documents tasks are written about), ``near`` (an on-topic passage of
    another seed, found by BM25) or ``random`` (a passage from elsewhere in the corpus).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(min_length=1)
    title: str = ""
    snippet: str = Field(min_length=1)
    origin: Origin = "material"


class DocumentSet(BaseModel):
    """Numbered documents as a retriever returns them (the RAG skill's material): the
    unit's own documents and distractors, shuffled. Rendered alike for agents and the
    student, in the layout of the public AgentInstruct release (``Document Id``,
    ``Title``, ``Snippet``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["documents"] = "documents"
    title: str = ""
    documents: tuple[Document, ...] = Field(min_length=1)

    def render(self, prompts: PromptLibrary, audience: Audience) -> str:
        return prompts.render(
            DOCUMENTS_TEMPLATE, documents=[d.model_dump() for d in self.documents]
        )

    @property
    def ids(self) -> list[str]:
        return [d.id for d in self.documents]

    def get(self, doc_id: str) -> Document | None:
        """The document with id ``doc_id`` (surrounding spaces and brackets ignored)."""
        wanted = doc_id.strip().strip("[]").strip()
        return next((d for d in self.documents if d.id == wanted), None)

    def without(self, ids: Iterable[str]) -> DocumentSet:
        """The set without the documents ``ids`` (the others keep their ids).

        Raises:
            ParseError: nothing would be left.
        """
        drop = {i.strip() for i in ids}
        kept = tuple(d for d in self.documents if d.id not in drop)
        if not kept:
            raise ParseError("withholding the supporting documents leaves no document")
        return DocumentSet(title=self.title, documents=kept)


#: The template that renders a document set (for agents and students alike).
DOCUMENTS_TEMPLATE = "rag/_documents.j2"


__all__ = [
    "DOCUMENTS_TEMPLATE",
    "Audience",
    "Document",
    "DocumentSet",
    "EditSpan",
    "Editable",
    "Material",
    "Origin",
    "Passage",
    "apply_spans",
]
