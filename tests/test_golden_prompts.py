"""Golden prompts (issue 9, point 7).

For every agent of the built-in taxonomy's ready skills (each transformer, each task
type's instruction agent, the suggester, the editor, the responder once per answer form,
the tool-use assistant and simulated API) and for the student's side (each framing of the
user message, the tool-use conversation), the fully rendered messages for one fixed sample
input are stored under ``tests/golden/<skill>/`` and compared exactly, so that every prompt
change shows up in review as a diff of those files.

After changing a prompt (a template, a key's field description, an agent's shape) on
purpose, regenerate the files and review the diff:

    PYTHONPATH=src python -m pytest tests/test_golden_prompts.py --update-golden
    git diff tests/golden/

A file is ``=== <role>`` then the message's content, for each message in order.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from db_episode import DATABASE, db_key, run_db_episode
from genteach._resources import default_taxonomy_path
from genteach.agents import (
    ApiListBuilder,
    ContentTransformer,
    EditInput,
    FollowUpInput,
    InstructInput,
    RespondInput,
    SeedView,
    SuggestInput,
    TransformInput,
)
from genteach.agents.db import DbTablesBuilder
from genteach.agents.views import GoalView
from genteach.agents.web import WebSiteBuilder
from genteach.flows import (
    ContentTransformationFlow,
    ConversationFlow,
    DbEpisodeFlow,
    OsEpisodeFlow,
    RefinementFlow,
    ResponseFlow,
    SeedInstructionFlow,
    ToolConversationFlow,
    WebEpisodeFlow,
    build_flows,
)
from genteach.flows.base import (
    DEFAULT_FRAMING,
    FlowBuild,
    RunContext,
    StudentView,
    Task,
    category_view,
    presented_key,
    skill_view,
    slot_labels,
)
from genteach.flows.respond import student_messages
from genteach.keys import (
    AnswerKey,
    ChoiceKey,
    CitedKey,
    ConstraintsKey,
    EstimateKey,
    ExactKey,
    FieldsKey,
    FieldValue,
    FreeTextKey,
    Judgement,
    KeyKinds,
    LabelsKey,
    Layout,
    ListKey,
    MatchingKey,
    NumericKey,
    OrderingKey,
    OsCheckKey,
    Pair,
    ProgramTestsKey,
    TestSuiteKey,
    UnanswerableKey,
    WebGoalKey,
    public_view,
)
from genteach.material import Document, DocumentSet, Material, Passage
from genteach.models import ScriptedModel
from genteach.models.base import Message, message
from genteach.prompts import PromptLibrary
from genteach.taxonomy import Delimiter, Skill, SubCategory, load_taxonomy
from tool_conversation import (
    API_LIST,
    ASSISTANT_MARKER,
    REQUEST,
    SIMULATOR_MARKER,
    requests_of,
    run_conversation,
)
from tool_conversation import KEY as TOOL_KEY
from web_episode import SITE, run_web_episode

GOLDEN = Path(__file__).resolve().parent / "golden"
COMMAND = "PYTHONPATH=src python -m pytest tests/test_golden_prompts.py --update-golden"

# -- the fixed sample inputs --------------------------------------------------------------
TEXT_SEED = SeedView(
    id="seed-0001",
    text=(
        "On 4 May 2021 the town council of Harwick voted 7 to 2 to close Mill Road to cars for "
        "twelve weeks. Council leader Maria Chen said the closure would 'probably' cut traffic "
        "on the high street by about a third. Critics, led by shop owner Tom Ruiz, argued that "
        "deliveries would take 15 minutes longer and that sales could fall."
    ),
    source="local-news.txt",
    kind="text",
    language="en",
)
CODE_SEED = SeedView(
    id="seed-0002",
    text=(
        "def find_port(query: str, country: str | None = None) -> list[dict]:\n"
        '    """Search ports by name."""\n\n'
        "def book_berth(berth_id: str, arrival: str, paid: bool = False) -> dict:\n"
        '    """Book a berth; arrival is YYYY-MM-DD."""\n'
    ),
    source="harbor/api.py",
    kind="code",
    language="Python",
)
PASSAGE = Passage(
    title="Closing Mill Road",
    text=TEXT_SEED.text + " In August, traffic on the high street was 28% lower than in April.",
)
DOCUMENTS = DocumentSet(
    title="Closing Mill Road",
    documents=(
        Document(
            id="1",
            title="Harwick votes to close Mill Road",
            snippet="On 4 May 2021 the town council of Harwick voted 7 to 2 to close Mill Road "
            "to cars for twelve weeks.",
        ),
        Document(
            id="2",
            title="Bus lanes in Dorrington",
            snippet="Dorrington opened two bus lanes in 2019; bus journeys on the ring road "
            "became four minutes shorter.",
            origin="near",
        ),
        Document(
            id="3",
            title="High street traffic after the closure",
            snippet="In August, traffic on the high street was 28% lower than in April, the "
            "council's counts show.",
        ),
    ),
)
CHOICE = ChoiceKey(
    correct=["Traffic on the high street fell by more than a quarter."],
    distractors=[
        "Deliveries became 15 minutes faster.",
        "The council voted unanimously for the closure.",
        "Sales on the high street rose in August.",
    ],
    explanation="August traffic was 28% lower than April's.",
)
KEYS: dict[str, AnswerKey] = {
    "choice": CHOICE,
    "exact": ExactKey(value="7 to 2", aliases=["seven to two"]),
    "numeric": NumericKey(value=12, unit="weeks"),
    "estimate": EstimateKey(
        value=4_000,
        unit="cars a day",
        low=1_500,
        high=12_000,
        assumptions=["cars through Mill Road before the closure: 5,600 a day", "share diverted"],
    ),
    "list": ListKey(items=["Maria Chen", "Tom Ruiz"]),
    "ordering": OrderingKey(
        items=[
            "The council votes on the closure.",
            "Maria Chen predicts less traffic.",
            "Traffic is measured in August.",
        ]
    ),
    "matching": MatchingKey(
        pairs=[
            Pair(left="Maria Chen", right="predicts less traffic"),
            Pair(left="Tom Ruiz", right="warns of slower deliveries"),
            Pair(left="the council", right="votes 7 to 2"),
        ]
    ),
    "labels": LabelsKey(
        label_set=["True", "False"],
        items=[
            Judgement(statement="The vote was 7 to 2.", label="True"),
            Judgement(
                statement="Tom Ruiz supported the closure.",
                label="False",
                note="He led the critics.",
            ),
            Judgement(statement="Traffic fell by 28% by August.", label="True"),
        ],
    ),
    "free_text": FreeTextKey(
        rubric=["Names the 28% fall.", "Weighs it against the critics' claims."],
        reference="",
    ),
    "constraints": ConstraintsKey(
        keep=["28%"],
        exclude=["closure"],
        max_words=60,
        rubric=["Keeps the critics' objection."],
    ),
    "fields": FieldsKey(
        fields=[
            FieldValue(name="vote margin", value="five votes to two"),
            FieldValue(name="weeks closed", value="twelve"),
        ]
    ),
    "unanswerable": UnanswerableKey(
        missing="the sales figures after the closure", shown=CHOICE.model_dump()
    ),
    "tool_outcome": TOOL_KEY,
    "program_tests": ProgramTestsKey(
        tests="assert closure_weeks(4, 5, 2021) == 12\n\ndef test_no_closure():\n"
        "    assert closure_weeks(1, 1, 2020) == 0\n",
        entry_point="closure_weeks",
    ),
    "test_suite": TestSuiteKey(
        tests="assert closure_weeks(4, 5, 2021) == 12\nassert closure_weeks(1, 1, 2020) == 0\n",
        entry_point="closure_weeks",
    ),
    "cited": CitedKey(
        answer="28% lower",
        support=[{"id": "3", "quote": "traffic on the high street was 28% lower than in April"}],
    ),
    "web_goal": WebGoalKey(
        start="/",
        outcome="answered",
        answer="30 days",
        evidence="e5",
    ),
    "db_reference": db_key(),
    "os_check": OsCheckKey(
        init="mkdir -p notes && printf 'a\\nb\\nc\\n' > notes/mill-road.txt",
        evaluation="checks",
        checks=[{"kind": "integer"}],
        reference="wc -l < notes/mill-road.txt",
    ),
}
#: How each key is shown (fixed, not drawn: the files change only when a prompt does).
LAYOUTS: dict[str, Layout] = {
    "choice": Layout(order=[2, 0, 3, 1]),
    "unanswerable": Layout(order=[2, 0, 3, 1]),
    "ordering": Layout(order=[2, 0, 1]),
    "matching": Layout(order=[2, 0, 1]),
}
INSTRUCTIONS: dict[str, str] = {
    "choice": "Which of the following is best supported by the passage?",
    "exact": "By what margin did the council vote to close Mill Road?",
    "numeric": "For how many weeks was Mill Road to be closed to cars?",
    "estimate": "Estimate how many cars a day now use the side streets around Mill Road, in cars "
    "a day; state your assumptions and show each calculation.",
    "list": "Name everyone the passage quotes or reports by name.",
    "ordering": "Put these events in the order in which they happened.",
    "matching": "Match each person or group with what the passage says they did.",
    "labels": "Label each statement True or False according to the passage.",
    "free_text": "How convincing is the evidence that the closure worked? Answer in one paragraph.",
    "constraints": 'Rewrite the text for a newsletter in at most 60 words, without the word "closure".',
    "fields": "Reply with JSON with the keys vote margin and weeks closed.",
    "unanswerable": "Which of the following is best supported by the passage?",
    "tool_outcome": REQUEST,
    "program_tests": "Write closure_weeks(day, month, year) in Python: the weeks Mill Road stays "
    "closed to cars after the vote of that date.",
    "test_suite": "Write tests for closure_weeks(day, month, year): repeat the function as "
    "given, then test functions that pin every rule and boundary.",
    "cited": "How much did high-street traffic change after the closure? Answer with a JSON "
    'object: {"answer": "...", "relevant_passages": ["<document ids>"]}',
    "web_goal": "How long do I have to send a sensor back?",
    "db_reference": "How many road closures lasted more than five weeks?",
    "os_check": "How many lines does ~/notes/mill-road.txt have? Give the number only.",
}
STUDENT_SYSTEM = "You are a helpful assistant."
DELIMITER = Delimiter(open='"""', close='"""')


# -- rendering ----------------------------------------------------------------------------
def as_text(messages: Sequence[Message]) -> str:
    """Messages in the golden files' form: ``=== role``, then the content."""
    return "".join(f"=== {m['role']}\n{m['content']}\n" for m in messages)


def key_kind_of(item: SubCategory) -> str:
    return item.key[0]


def task_of(item: SubCategory, material: Material, kind: str) -> Task:
    framing = DEFAULT_FRAMING
    view = StudentView(
        system=STUDENT_SYSTEM,
        framing=framing,
        delimiter=DELIMITER,
        layout=LAYOUTS.get(kind, Layout()),
    )
    return Task(
        sub_category=item.id,
        material=material,
        instruction=INSTRUCTIONS[kind],
        key=KEYS[kind],
        view=view,
    )


def slots_for(skill: Skill, item: SubCategory, count: int) -> list[dict[str, str]]:
    """Fixed slots: the i-th value of each of the task type's lists, the i-th stem."""
    out = []
    for i in range(count):
        slot = {
            name: skill.vary[name].values[i % len(skill.vary[name].values)] for name in item.vary
        }
        if item.stems:
            slot["stem"] = item.stems[i % len(item.stems)]
        out.append(slot)
    return out


def render_skill(skill: Skill, prompts: PromptLibrary) -> dict[str, str]:
    """The golden files of one skill: relative path -> text."""
    flows = {f.name: f for f in build_flows(skill, FlowBuild(prompts=prompts))}
    ctx = RunContext(client=ScriptedModel([]), prompts=prompts, teacher="golden", keys=KeyKinds())
    sv = skill_view(skill)
    out: dict[str, str] = {}
    tool = isinstance(flows.get("content_transformation"), ContentTransformationFlow) and any(
        isinstance(a, ApiListBuilder) for a in flows["content_transformation"].agents.values()
    )
    kinds = {k for t in skill.task_types for k in t.key}
    web = "web_goal" in kinds
    material: Material = (
        API_LIST
        if tool
        else SITE
        if web
        else DATABASE
        if "db_reference" in kinds
        else DOCUMENTS
        if "cited" in kinds
        else PASSAGE
    )

    transform = flows.get("content_transformation")
    if isinstance(transform, ContentTransformationFlow):
        s = transform.settings
        for t in skill.transformers:
            agent = transform.agents[t.id]
            if not isinstance(
                agent, ContentTransformer | ApiListBuilder | WebSiteBuilder | DbTablesBuilder
            ):
                continue  # the identity agent makes no call
            inputs = TransformInput(
                skill=sv,
                category=category_view(skill, "transformers", t),
                seed=CODE_SEED if tool else TEXT_SEED,  # a site is built from text too
                min_words=t.min_words or s.min_words,
                max_words=t.max_words or s.max_words,
                min_items=s.min_items,
                max_items=s.max_items,
            )
            out[f"transform/{t.id}.txt"] = as_text(agent.render(inputs))

    instruct = flows.get("seed_instruction")
    if isinstance(instruct, SeedInstructionFlow):
        for t in skill.task_types:
            inputs = InstructInput(
                skill=sv,
                category=category_view(skill, "task_types", t),
                material=material,
                material_text=material.render(prompts, "agent"),
                count=2,
                slots=slots_for(skill, t, 2),
                slot_labels=slot_labels(skill, t),
            )
            out[f"instruct/{t.id}.txt"] = as_text(instruct.agents[t.id].render(inputs))

    refine = flows.get("refinement")
    if isinstance(refine, RefinementFlow):
        # a task type that allows every goal, so both prompts show each of them
        item = next((t for t in skill.task_types if t.goals is None), skill.task_types[0])
        task = task_of(item, material, key_kind_of(item))
        goals = [GoalView(**g.model_dump(exclude={"weight"})) for g in refine.goals_for(task)]
        view = refine.view_of(task, ctx)
        common: dict[str, Any] = {
            "skill": sv,
            "category": category_view(skill, "task_types", item),
            "task": view,
            "goals": goals,
        }
        out["refine/suggester.txt"] = as_text(refine.suggester.render(SuggestInput(**common)))
        suggestions = [f"(Suggestion {i} for the goal {g.name}.)" for i, g in enumerate(goals, 1)]
        edit = EditInput(
            **common, suggestions=suggestions, kinds=item.key, material=task.material, key=task.key
        )
        out["refine/editor.txt"] = as_text(refine.editor.render(edit))

    respond = flows.get("response")
    if isinstance(respond, ResponseFlow):
        forms: dict[str, tuple[SubCategory, str]] = {}
        for t in skill.task_types:
            for kind in t.key:
                form = presented_key(KEYS[kind], ctx.keys).form
                forms.setdefault(form, (t, kind))
        for form, (item, kind) in sorted(forms.items()):
            task = task_of(item, material, kind)
            shown = presented_key(task.key, ctx.keys)
            inputs = RespondInput(
                skill=sv,
                category=category_view(skill, "task_types", item),
                conversation=student_messages(task, ctx),
                form=shown.form,
                question=public_view(shown.view(task.view.layout)),
            )
            out[f"respond/{form}.txt"] = as_text(respond.responder.render(inputs))
        # the student's side: each framing of the user message
        item = skill.task_types[0]
        kind = "choice" if any("choice" in t.key for t in skill.task_types) else key_kind_of(item)
        framings = skill.student.framings.values if skill.student.framings else [DEFAULT_FRAMING]
        for framing in framings:
            task = task_of(item, material, kind)
            task.view = StudentView(
                system=STUDENT_SYSTEM, framing=framing, delimiter=DELIMITER, layout=task.view.layout
            )
            out[f"student/{Path(framing).stem}.txt"] = as_text(student_messages(task, ctx))

    chat = flows.get("conversation")
    if isinstance(chat, ConversationFlow):
        # the teacher's guidance for each answer form of the first request, and the user
        # simulator making each move after a fixed first exchange
        forms = {}
        for t in skill.task_types:
            for kind in t.key:
                forms.setdefault(presented_key(KEYS[kind], ctx.keys).form, (t, kind))
        for form, (item, kind) in sorted(forms.items()):
            task = task_of(item, material, kind)
            out[f"conversation/assistant_{form}.txt"] = as_text(
                [message("system", chat.guidance(task, ctx)), *student_messages(task, ctx)[1:]]
            )
        item = skill.task_types[0]
        task = task_of(item, material, key_kind_of(item))
        opening = [*student_messages(task, ctx)[1:], message("assistant", "(the first reply)")]
        for move in chat.settings.moves:
            follow = FollowUpInput(
                skill=sv,
                category=category_view(skill, "task_types", item),
                conversation=opening,
                move=move,
                turn=2,
                turns=4,
            )
            out[f"conversation/user_{move.id}.txt"] = as_text(chat.simulator.render(follow))

    acting = flows.get("web_episode")
    if isinstance(acting, WebEpisodeFlow):
        # one fixed episode played through the flow: what the acting teacher is sent at its
        # last call, and the student's trajectory
        record, model = run_web_episode(skill, prompts)
        out["web/assistant.txt"] = as_text(model.calls[-1])
        out["student/episode.txt"] = as_text(record.messages)

    database = flows.get("db_episode")
    if isinstance(database, DbEpisodeFlow):
        record, model = run_db_episode(skill, prompts)
        out["db/assistant.txt"] = as_text(model.calls[-1])
        out["student/episode.txt"] = as_text(record.messages)

    shell = flows.get("os_episode")
    if isinstance(shell, OsEpisodeFlow):
        # the one-shot demonstration every OS episode starts with (its run needs a sandbox)
        out["os/demo.txt"] = as_text(shell.demo(prompts))

    converse = flows.get("tool_conversation")
    if isinstance(converse, ToolConversationFlow):
        # one fixed conversation played through the flow: what the acting teacher and the
        # simulated API are sent at their last calls, and the student's conversation
        record, model = run_conversation(skill, prompts)
        out["tool/assistant.txt"] = as_text(requests_of(model, ASSISTANT_MARKER)[-1])
        out["tool/simulator.txt"] = as_text(requests_of(model, SIMULATOR_MARKER)[-1])
        out["student/conversation.txt"] = as_text(record.messages)
    return out


def render_all() -> dict[str, str]:
    """Every golden file: ``<skill>/<agent>.txt`` -> text, and the repair prompts."""
    prompts = PromptLibrary()
    taxonomy = load_taxonomy()
    out: dict[str, str] = {}
    for skill_id in sorted(taxonomy.ready_skills()):
        for name, text in render_skill(taxonomy.skills[skill_id], prompts).items():
            out[f"{skill_id}/{name}"] = text
    # AgentTuning's environments (taxonomies/agenttuning.yaml), under agenttuning/<skill>/
    tuning = load_taxonomy(default_taxonomy_path().with_name("agenttuning.yaml"))
    for skill_id in sorted(tuning.ready_skills()):
        for name, text in render_skill(tuning.skills[skill_id], prompts).items():
            out[f"agenttuning/{skill_id}/{name}"] = text
    # the repair requests every agent may send, shown for the first transformer of rc
    rc = taxonomy.skills["rc"]
    flows = {f.name: f for f in build_flows(rc, FlowBuild(prompts=prompts))}
    agent = next(
        a
        for a in flows["content_transformation"].agents.values()
        if isinstance(a, ContentTransformer)
    )
    first = [
        message("system", "(the first call's system message)"),
        message("user", "(the first call's user message)"),
    ]
    rejected = [
        ("Sure! Here is the text.", "no JSON object in the answer"),
        ('{"title": "t"}', "field text: Field required"),
    ]
    out["_repair/show.txt"] = as_text(agent.repair_messages(first, rejected))
    agent.repair_style = "fresh"
    out["_repair/fresh.txt"] = as_text(agent.repair_messages(first, rejected))
    return dict(sorted(out.items()))


RENDERED = render_all()
ON_DISK = (
    sorted(p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*.txt"))
    if GOLDEN.is_dir()
    else []
)


@pytest.fixture(scope="module")
def written(update_golden: bool) -> bool:
    """With ``--update-golden``: write every rendered file and remove stale ones."""
    if update_golden:
        for name in ON_DISK:
            if name not in RENDERED:
                (GOLDEN / name).unlink()
        for name, text in RENDERED.items():
            path = GOLDEN / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
    return update_golden


@pytest.mark.parametrize("name", sorted(set(RENDERED) | set(ON_DISK)))
def test_golden_prompt(name: str, written: bool) -> None:
    path = GOLDEN / name
    shown = f"tests/golden/{name}"
    if name not in RENDERED:
        assert written, f"{shown} is no longer rendered by any agent; regenerate with: {COMMAND}"
        return
    if not path.is_file():
        pytest.fail(f"{shown} is missing; regenerate with: {COMMAND}")
    stored = path.read_text(encoding="utf-8")
    if stored != RENDERED[name]:
        diff = "".join(
            list(
                difflib.unified_diff(
                    stored.splitlines(keepends=True),
                    RENDERED[name].splitlines(keepends=True),
                    f"{name} (stored)",
                    f"{name} (rendered)",
                )
            )[:60]
        )
        pytest.fail(
            f"{shown} differs from the rendered prompt; if the change is meant, regenerate "
            f"with: {COMMAND}\n{diff}"
        )


def test_the_golden_set_covers_every_agent() -> None:
    taxonomy = load_taxonomy()
    names = set(RENDERED)
    for skill_id in taxonomy.ready_skills():
        skill = taxonomy.skills[skill_id]
        for t in skill.transformers:
            assert (f"{skill_id}/transform/{t.id}.txt" in names) == (t.agent != "identity"), t.id
        for t in skill.task_types:
            assert f"{skill_id}/instruct/{t.id}.txt" in names
        assert {f"{skill_id}/refine/suggester.txt", f"{skill_id}/refine/editor.txt"} <= names
    assert {n for n in names if n.startswith("rc/respond/")} == {
        f"rc/respond/{form}.txt"
        for form in ("choice", "items", "labels", "matching", "open", "short")
    }
    assert {n for n in names if n.startswith("text_modification/respond/")} == {
        "text_modification/respond/open.txt"
    }
    assert {"tool_use/tool/assistant.txt", "tool_use/tool/simulator.txt"} <= names
    assert {n for n in names if n.startswith("rc/student/")} == {
        f"rc/student/{name}.txt"
        for name in ("instruction_first", "material_first", "quoted_material", "titled_question")
    }
    assert render_all() == RENDERED, "rendering is deterministic"
