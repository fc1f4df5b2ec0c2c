"""The RAG skill's parts: document sets built from the material and the run's index, the
cited key (written against the set, checked in JSON and prose answers), and the
unanswerable variant whose supporting documents code withholds."""

from __future__ import annotations

import json
import random

import pytest

import genteach.agents  # noqa: F401  (import order: agents before material)
from genteach.agents.documents import WithheldDocumentsAgent, WithheldDraft
from genteach.agents.instruct import InstructInput
from genteach.agents.parsing import ParseError
from genteach.agents.views import CategoryView, SkillView
from genteach.flows.base import RunContext, WorkItem
from genteach.flows.documents import DocumentSetFlow, snippet, split_documents
from genteach.keys import CitedKey, Layout, UnanswerableKey, read_citations
from genteach.material import Document, DocumentSet, Passage
from genteach.models import ScriptedModel
from genteach.prompts import PromptLibrary
from genteach.records import Seed
from genteach.retrieval import SeedIndex
from genteach.taxonomy import Skill

L = Layout()
DOCS = DocumentSet(
    title="Tidal power",
    documents=(
        Document(
            id="1",
            title="The Rance barrage",
            snippet="The Rance barrage in Brittany opened in 1966 and produces about 500 GWh a "
            "year from a 240 MW plant.",
        ),
        Document(
            id="2",
            title="Severn plans",
            snippet="A Severn barrage was proposed many times; a 2010 government review "
            "rejected it on cost.",
        ),
        Document(
            id="3",
            title="Sihwa Lake",
            snippet="Sihwa Lake station in South Korea, opened in 2011, has 254 MW of turbines.",
            origin="near",
        ),
    ),
)


def key(**kw: object) -> CitedKey:
    data: dict[str, object] = {
        "answer": "1966",
        "support": [{"id": "1", "quote": "The Rance barrage in Brittany opened in 1966"}],
    }
    data.update(kw)
    k = CitedKey.model_validate(data)
    assert k.fit_material(DOCS) is None
    return k


# -- documents ----------------------------------------------------------------------------
def test_headed_sections_become_documents_and_a_short_lead_is_dropped() -> None:
    text = (
        "Two reports follow.\n\n## Council notice\nThe tunnel opened in March 2021.\n\n"
        "## Blog post\nLocals say it opened in April."
    )
    docs = split_documents(Passage(title="Tunnel", text=text), 120)
    assert docs == [
        ("Council notice", "The tunnel opened in March 2021."),
        ("Blog post", "Locals say it opened in April."),
    ]


def test_text_without_headings_is_cut_into_titled_parts() -> None:
    sentences = " ".join(f"Sentence number {i} says something distinct here." for i in range(60))
    docs = split_documents(Passage(title="Notes", text=sentences), 60)
    assert len(docs) >= 5
    assert all(len(s.split()) <= 60 for _, s in docs)
    assert docs[0][0] == "Notes (part 1)"


def test_a_snippet_ends_at_a_sentence_when_it_can() -> None:
    text = "One two three four five six. Seven eight nine ten eleven twelve thirteen"
    assert snippet(text, 8) == "One two three four five six."
    assert snippet("a " * 30, 10).endswith(" ...")


def test_documents_render_in_the_release_layout() -> None:
    text = DOCS.render(PromptLibrary(), "student")
    assert text.startswith("Document Id: 1\nTitle: The Rance barrage\nSnippet: The Rance")
    assert "\n\nDocument Id: 2\n" in text
    assert "near" not in text  # where a document came from is never shown


def test_withholding_keeps_the_other_ids() -> None:
    assert DOCS.without(["1"]).ids == ["2", "3"]
    with pytest.raises(ParseError):
        DOCS.without(["1", "2", "3"])


# -- the cited key ------------------------------------------------------------------------
def test_a_cited_key_must_quote_its_documents_verbatim() -> None:
    wrong_doc = CitedKey(answer="1966", support=[{"id": "2", "quote": "opened in 1966 and"}])
    assert "does not occur in document 2" in (wrong_doc.fit_material(DOCS) or "")
    unknown = CitedKey(answer="1966", support=[{"id": "9", "quote": "opened in 1966 and"}])
    assert "not in the set" in (unknown.fit_material(DOCS) or "")
    unstated = CitedKey(answer="1967", support=[{"id": "1", "quote": "opened in 1966 and"}])
    assert "not stated" in (unstated.fit_material(DOCS) or "")
    assert CitedKey(answer="1966", support=[{"id": "1", "quote": "opened in 1966"}]).fit_material(
        Passage(text="x")
    )


@pytest.mark.parametrize(
    ("response", "status", "detail"),
    [
        ('{"answer": "It opened in 1966.", "relevant_passages": ["1"]}', "passed", "cites 1"),
        ('```json\n{"answer": "1966", "relevant_passages": [1]}\n```', "passed", "cites 1"),
        ('{"answer": "1966", "citations": ["Document 1"]}', "passed", "cites 1"),
        ("The barrage opened in 1966 [1].", "passed", "cites 1"),
        ("The barrage opened in 1966 [Document 1].", "passed", "cites 1"),
        ("The barrage opened in 1966.", "failed", "cites no document"),
        ("The barrage opened in 1966 [1, 3].", "failed", "document 3, which does not support"),
        ("The barrage opened in 1966 [7].", "failed", "document 7, which is not in the set"),
        ('{"answer": "1967", "relevant_passages": ["1"]}', "failed", "does not state"),
        ('{"answer": "not in 1966", "relevant_passages": ["1"]}', "failed", "does not state"),
    ],
)
def test_a_response_is_checked_for_its_citations_and_its_answer(
    response: str, status: str, detail: str
) -> None:
    v = key().check(response, L)
    assert (v.status, detail in v.detail) == (status, True), v.detail


def test_cite_all_needs_every_supporting_document() -> None:
    k = key(
        answer="254 MW",
        support=[
            {"id": "3", "quote": "has 254 MW of turbines"},
            {"id": "1", "quote": "from a 240 MW plant"},
        ],
        cite_all=True,
    )
    assert k.check('{"answer": "254 MW", "relevant_passages": ["3"]}', L).status == "failed"
    assert k.check('{"answer": "254 MW", "relevant_passages": ["3", "1"]}', L).passed


def test_numbers_are_compared_as_numbers() -> None:
    k = key(answer="500 GWh", support=[{"id": "1", "quote": "produces about 500 GWh a year"}])
    assert k.check("It produces about 500 GWh each year [1].", L).passed
    assert k.check('{"answer": "roughly 500 GWh per year", "relevant_passages": ["1"]}', L).passed
    assert not k.check('{"answer": "5,000 GWh", "relevant_passages": ["1"]}', L).passed


def test_read_citations_prefers_the_json_object() -> None:
    answer, ids = read_citations('Thinking [4].\n{"answer": "x", "relevant_passages": ["2"]}')
    assert (answer, ids) == ("x", ["2"])
    assert read_citations("See [2, 5] and [Document 3].")[1] == ["2", "5", "3"]


# -- the unanswerable variant -------------------------------------------------------------
def _inputs() -> InstructInput:
    return InstructInput(
        skill=SkillView(id="rag", name="RAG", description=""),
        category=CategoryView(id="unanswerable_from_context", name="Not in the documents"),
        material=DOCS,
        material_text=DOCS.render(PromptLibrary(), "agent"),
        count=1,
    )


def _agent() -> WithheldDocumentsAgent:
    return WithheldDocumentsAgent("instruct/unanswerable_from_context", prompts=PromptLibrary())


def test_the_withheld_variant_removes_the_support_and_keys_it_unanswerable() -> None:
    answer = json.dumps(
        {
            "tasks": [
                {
                    "instruction": "When did the Rance barrage open? Answer with a JSON object.",
                    "key": {
                        "kind": "cited",
                        "answer": "1966",
                        "support": [{"id": "1", "quote": "opened in 1966"}],
                    },
                }
            ]
        }
    )
    batch = _agent().parse(answer, _inputs())
    task = batch.tasks[0]  # type: ignore[attr-defined]
    assert isinstance(task, WithheldDraft) and task.withheld == ["1"]
    assert isinstance(task.key, UnanswerableKey) and "opened in 1966" in task.key.missing
    assert task.material(DOCS).ids == ["2", "3"]
    reply = '{"answer": "The documents do not say when it opened.", "relevant_passages": []}'
    assert task.key.check(reply, L).passed


def test_the_withheld_variant_refuses_an_answer_another_document_gives() -> None:
    answer = json.dumps(
        {
            "tasks": [
                {
                    "instruction": "What capacity does the Sihwa Lake station have?",
                    "key": {
                        "kind": "cited",
                        "answer": "254 MW",
                        "support": [{"id": "3", "quote": "has 254 MW of turbines"}],
                    },
                }
            ]
        }
    )
    docs = DocumentSet(
        documents=(*DOCS.documents, Document(id="4", title="Copy", snippet="Sihwa has 254 MW."))
    )
    inputs = _inputs().model_copy(update={"material": docs})
    with pytest.raises(ParseError, match="document 4 also states the answer"):
        _agent().parse(answer, inputs)


# -- the flow -----------------------------------------------------------------------------
SEEDS = [
    Seed(id="tides", text="# Tidal power\n\nThe Rance barrage opened in 1966 in Brittany."),
    Seed(id="wind", text="# Wind power\n\nOffshore wind farms in the North Sea grew fast."),
    Seed(id="hydro", text="# Hydro power\n\nPumped storage stations hold water in two lakes."),
    Seed(id="bread", text="# Sourdough\n\nA starter of flour and water ferments for days."),
]


async def _run_flow(index: SeedIndex | None, **settings: int) -> WorkItem:
    item = WorkItem(seed=SEEDS[0], skill=Skill(name="RAG", id="rag"), rng=random.Random(0))
    item.stream_key = "test"
    item.material = Passage(
        title="Tides",
        text="## Rance\nThe Rance barrage opened in 1966.\n\n## Severn\nThe Severn barrage "
        "was never built because of its tidal power costs.",
    )
    flow = DocumentSetFlow(Skill(name="RAG", id="rag"), DocumentSetFlow.Settings(**settings))
    ctx = RunContext(
        client=ScriptedModel([]), prompts=PromptLibrary(), teacher="t", seed_index=index
    )
    await flow(item, ctx)
    return item


async def test_the_flow_adds_near_and_random_distractors_from_other_seeds() -> None:
    item = await _run_flow(SeedIndex.build(SEEDS), near=1, random=1)
    docs = item.material
    assert isinstance(docs, DocumentSet)
    assert docs.ids == ["1", "2", "3", "4"]
    origins = sorted(d.origin for d in docs.documents)
    assert origins == ["material", "material", "near", "random"]
    near = next(d for d in docs.documents if d.origin == "near")
    assert near.title != "Tidal power"  # never the unit's own seed
    assert (await _run_flow(SeedIndex.build(SEEDS), near=1, random=1)).material == docs


async def test_without_an_index_the_set_is_the_material_alone() -> None:
    item = await _run_flow(None)
    assert isinstance(item.material, DocumentSet)
    assert {d.origin for d in item.material.documents} == {"material"}


async def test_max_documents_leaves_out_distractors_first() -> None:
    item = await _run_flow(SeedIndex.build(SEEDS), near=3, random=3, max_documents=3)
    assert isinstance(item.material, DocumentSet)
    assert sorted(d.origin for d in item.material.documents) == ["material", "material", "near"]


def test_an_instruction_asking_for_json_needs_a_json_answer() -> None:
    k = key()
    assert (
        k.fit_task('Answer with a JSON object: {"answer": ..., "relevant_passages": []}', None)
        is None
    )
    assert k.json_answer
    v = k.check("The barrage opened in 1966 [1].", L)
    assert (v.status, v.detail) == (
        "failed",
        "the instruction asks for a JSON object; the response gives none",
    )
    assert k.check('{"answer": "1966", "relevant_passages": ["1"]}', L).passed
