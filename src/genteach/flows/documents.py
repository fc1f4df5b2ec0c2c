"""DocumentSetFlow: the RAG skill's material, a numbered set of retrieved documents.

The unit's material (a transformer's text of ``## ``-headed documents, or the seed itself
cut into snippets) becomes the documents tasks are written about; passages of *other*
seeds from the run's BM25 index (:class:`~genteach.retrieval.SeedIndex`) join them as
distractors: the best matches for the material (on-topic near misses) and random ones.
The set is shuffled and numbered. No model call is made.
"""

from __future__ import annotations

import re

from pydantic import Field

from genteach.flows.base import FlowBuild, FlowSettings, RunContext, WorkItem
from genteach.material import DOCUMENTS_TEMPLATE, Document, DocumentSet, Origin, Passage
from genteach.retrieval import chunk_text
from genteach.taxonomy import Skill

_HEADING = re.compile(r"^##[ \t]+(\S.*?)[ \t#]*$", re.MULTILINE)
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")
_NEAR: Origin = "near"
_RANDOM: Origin = "random"
#: Text before the first heading shorter than this is an intro, not a document.
_MIN_LEAD_WORDS = 15


class DocumentSetFlow:
    """Turns the unit's passage into a :class:`~genteach.material.DocumentSet`.

    A unit whose material yields no document is rejected; a run with one seed has no
    distractors from elsewhere (the documents are the material's only).
    """

    name = "document_set"
    #: The pipeline builds the run's seed index when a stage says it needs it.
    needs_index = True
    #: It makes the unit's material, not tasks (the pipeline goes on without tasks).
    material_stage = True

    class Settings(FlowSettings):
        """Attributes:
        near: distractors that match the material best among other seeds' passages.
        random: distractors drawn at random from the rest of the corpus.
        snippet_words: the most words of a snippet (longer documents are cut).
        max_documents: the most documents of a set (distractors give way first).
        """

        near: int = Field(default=3, ge=0, le=10)
        random: int = Field(default=2, ge=0, le=10)
        snippet_words: int = Field(default=120, ge=30, le=400)
        max_documents: int = Field(default=10, ge=1, le=20)

    def __init__(self, skill: Skill, settings: Settings) -> None:
        self.skill = skill
        self.settings = settings

    @classmethod
    def from_config(cls, skill: Skill, settings: Settings, build: FlowBuild) -> DocumentSetFlow:
        del build
        return cls(skill, settings)

    def templates(self) -> list[str]:
        return [DOCUMENTS_TEMPLATE]

    def expected_calls(self, tasks: float) -> tuple[float, float]:
        """For ``--dry-run``: no model call; the tasks pass through."""
        return 0.0, tasks

    async def __call__(self, item: WorkItem, ctx: RunContext) -> None:
        material = item.material
        if not isinstance(material, Passage):
            raise RuntimeError(
                f"{self.name} needs a text material: put a content_transformation stage "
                "with text transformers before it"
            )
        s = self.settings
        own = split_documents(material, s.snippet_words)[: s.max_documents]
        if not own:
            item.reject(self.name, self.name, "the material holds no document", material.text)
            item.material = None
            return
        docs = [Document(id="?", title=t, snippet=x, origin="material") for t, x in own]
        room = s.max_documents - len(docs)
        index = ctx.seed_index
        if index is not None and room > 0:
            query = " ".join(x for _, x in own)
            near = [
                h.chunk for h in index.search(query, k=min(s.near, room), exclude_seed=item.seed.id)
            ]
            taken = {c.id for c in near}
            rest = [c for c in index.chunks if c.seed_id != item.seed.id and c.id not in taken]
            rng = item.stream("documents")
            far = rng.sample(rest, min(len(rest), s.random, room - len(near)))
            docs += [
                Document(id="?", title=c.title, snippet=snippet(c.text, s.snippet_words), origin=o)
                for chunks, o in ((near, _NEAR), (far, _RANDOM))
                for c in chunks
            ]
        item.stream("order").shuffle(docs)
        item.material = DocumentSet(
            title=material.title,
            documents=tuple(d.model_copy(update={"id": str(i)}) for i, d in enumerate(docs, 1)),
        )
        item.templates.append(DOCUMENTS_TEMPLATE)


def split_documents(passage: Passage, words: int) -> list[tuple[str, str]]:
    """``passage`` as (title, snippet) documents: one per ``## `` heading (a long one cut
    into parts), or, with no heading, the text cut into snippets of at most ``words``
    words titled after the passage."""
    parts = _HEADING.split(passage.text)
    lead, sections = parts[0].strip(), list(zip(parts[1::2], parts[2::2], strict=True))
    base = passage.title.strip() or "Untitled"
    if not sections:
        sections = [(base, lead)] if lead else []
    elif len(lead.split()) >= _MIN_LEAD_WORDS:
        sections.insert(0, (base, lead))
    out: list[tuple[str, str]] = []
    for title, body in sections:
        body = body.strip()
        if not body:
            continue
        pieces = (
            [body] if len(body.split()) <= 2 * words else chunk_text(body, words=words, overlap=0)
        )
        for n, piece in enumerate(pieces, 1):
            name = title.strip() if len(pieces) == 1 else f"{title.strip()} (part {n})"
            out.append((name, " ".join(piece.split())))
    return out


def snippet(text: str, words: int) -> str:
    """``text`` on one line, cut to at most ``words`` words, at a sentence end when one
    falls in the last third (else mid-sentence, marked with an ellipsis)."""
    tokens = text.split()
    if len(tokens) <= words:
        return " ".join(tokens)
    cut = " ".join(tokens[:words])
    ends = [m.end() for m in _SENTENCE_END.finditer(cut)]
    if ends and ends[-1] >= len(cut) * 2 // 3:
        return cut[: ends[-1]]
    return cut + " ..."


__all__ = ["DocumentSetFlow", "snippet", "split_documents"]
