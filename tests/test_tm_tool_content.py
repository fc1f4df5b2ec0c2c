"""Content of the text-modification and tool-use skills and of the planned skills.

The taxonomy parts validate together; every guidance file and every tool-use template
renders under StrictUndefined inside the agents the skills' flows build; a conversation
played through the tool_conversation flow shows the student exactly the action format
``parse_action`` accepts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from genteach.agents import (
    ApiListBuilder,
    EditInput,
    ExcerptTaskAgent,
    InstructInput,
    SeedView,
    SuggestInput,
    TaskView,
    ToolEditor,
    ToolTaskAgent,
    TransformInput,
)
from genteach.agents.tool_use import FORMAT_EXAMPLES, ApiList, ApiResult, ApiSpec, parse_action
from genteach.agents.views import GoalView
from genteach.flows import build_flows
from genteach.flows.base import FlowBuild, category_view, skill_view
from genteach.keys import ConstraintsKey, FreeTextKey, Layout, ToolOutcomeKey
from genteach.material import Passage
from genteach.prompts import PromptLibrary
from genteach.taxonomy import Skill, Taxonomy, load_taxonomy
from tool_conversation import (
    API_LIST,
    ASSISTANT,
    ASSISTANT_MARKER,
    REQUEST,
    SIMULATOR_MARKER,
    requests_of,
    run_conversation,
)

ROOT = Path(__file__).resolve().parents[1]
TAXONOMY = ROOT / "taxonomies" / "agentinstruct.yaml"
TM_TYPES = {
    "paraphrasing", "text_simplification", "text_expansion", "text_translation",
    "text_formatting", "sentiment_modification", "text_annotation", "keyword_replacement",
    "text_removing", "text_capitalization", "text_styling", "content_rewriting",
    "data_normalization", "plagiarism_rewording", "code_switching", "text_obfuscation",
    "textual_entailment", "vocabulary_limited_rewriting",
}  # fmt: skip
TOOL_FAMILIES = {
    "single_api_all_params", "single_api_extra_params", "single_api_missing_params",
    "multi_api_all_params", "multi_api_missing_params", "api_not_in_list",
    "multi_api_missing_essential",
}  # fmt: skip

PASSAGE = (
    "On 4 May 2021 the town council of Harwick voted 7 to 2 to close Mill Road to cars "
    "for twelve weeks. Council leader Maria Chen said the closure would 'probably' cut "
    "traffic on the high street by about a third. Critics, led by shop owner Tom Ruiz, "
    "argued that deliveries would take 15 minutes longer and that sales could fall."
)
APIS = [
    ApiSpec(
        name="find_port",
        description="Search ports by name; returns matching ports with their ids.",
        parameters=[
            {"name": "query", "type": "string", "description": "Part of the port name."},
            {"name": "country", "type": "string", "description": "ISO code.", "required": False},
        ],
        returns="a list of objects with port_id (string), name (string)",
    ),
    ApiSpec(
        name="berths.book",
        description="Book a berth for given dates.",
        parameters=[
            {"name": "berth_id", "type": "string", "description": "From search_berths."},
            {"name": "arrival", "type": "string", "description": "YYYY-MM-DD."},
            {"name": "paid", "type": "boolean", "required": False},
        ],
        returns="an object with booking_id (string) and status (string)",
    ),
    ApiSpec(name="ping", description="Check that the service is up.", parameters=[]),
]
API_DICTS = [a.model_dump() for a in APIS]
HARBOR = ApiList(library="harbor", description="Berths.", apis=APIS)


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy(TAXONOMY)


@pytest.fixture(scope="module")
def lib() -> PromptLibrary:
    return PromptLibrary()


def flows_of(skill: Skill, lib: PromptLibrary) -> dict[str, Any]:
    return {f.name: f for f in build_flows(skill, FlowBuild(prompts=lib))}


def _shape_lines(text: str, marker: str) -> list[str]:
    """The example JSON lines that follow ``marker`` in a rendered prompt."""
    tail = text.split(marker, 1)[1].splitlines()[1:]
    return [line for line in tail if line.startswith("{")]


# -- (a) taxonomy parts -----------------------------------------------------------------
def test_parts_validate_with_expected_counts(taxonomy: Taxonomy) -> None:
    tm = taxonomy.skills["text_modification"]
    tool = taxonomy.skills["tool_use"]
    assert tm.status == tool.status == "ready"
    assert {t.id for t in tm.task_types} == TM_TYPES and len(tm.task_types) == 18
    assert [t.id for t in tm.transformers] == ["identity"]
    # Every rewrite is checked against the constraints its instruction states, except an
    # entailment edit, whose relation code cannot check.
    assert {t.id: t.key for t in tm.task_types if t.key != ["constraints"]} == {
        "textual_entailment": ["free_text"]
    }
    assert {t.id for t in tool.task_types} == TOOL_FAMILIES and len(tool.task_types) == 7
    assert {k for t in tool.task_types for k in t.key} == {"tool_outcome"}
    assert {t.id: t.agent for t in tool.transformers} == {
        "api_from_source": "api_list",
        "library_reconstruction": "api_list",
    }
    assert {g.id for g in tool.refinement_goals} == {
        "more_steps",
        "conditional_logic",
        "disambiguation",
    }
    assert {g.edits for g in tool.refinement_goals} == {"task"}, "an API list is not edited"
    # A planned skill lists its sub-categories and has no flows; a ready one has both.
    for sid, skill in taxonomy.skills.items():
        assert skill.description and skill.weight > 0 and skill.task_types, sid
        assert bool(skill.pipeline) == (skill.status == "ready"), sid
    stages = {s.flow: s.settings for s in tool.pipeline}
    assert stages == {
        "content_transformation": {"agent": "api_list", "min_items": 4, "max_items": 10},
        "seed_instruction": {"agent": "tool_task", "task_types_per_seed": 2, "tasks_per_type": 1},
        "refinement": {"editor": "tool_editor", "rounds": 1, "suggestions": 2},
        "tool_conversation": {"max_steps": 8},
    }
    tm_stages = {s.flow: s.settings for s in tm.pipeline}
    assert tm_stages["seed_instruction"]["agent"] == "excerpt"


def test_every_list_a_task_type_varies_exists(taxonomy: Taxonomy) -> None:
    for sid in ("text_modification", "tool_use"):
        skill = taxonomy.skills[sid]
        for t in skill.task_types:
            assert t.vary, f"{sid}.{t.id}: values drawn in code keep tasks varied"
            assert all(len(skill.vary[v].values) >= 3 for v in t.vary), t.id
    tm = taxonomy.skills["text_modification"]
    assert "target_language" in next(t for t in tm.task_types if t.id == "text_translation").vary


def test_skill_prompt_overrides_exist(taxonomy: Taxonomy, lib: PromptLibrary) -> None:
    for sid in ("text_modification", "tool_use"):
        for key, name in taxonomy.skills[sid].prompts.items():
            assert lib.exists(name), f"{sid}.prompts.{key}: {name}"


# -- (b) rendering ----------------------------------------------------------------------
def test_text_modification_guidance_renders(taxonomy: Taxonomy, lib: PromptLibrary) -> None:
    skill = taxonomy.skills["text_modification"]
    agents = flows_of(skill, lib)["seed_instruction"].agents
    passage = Passage(text=PASSAGE)
    for item in skill.task_types:
        agent = agents[item.id]
        kinds = [FreeTextKey] if item.id == "textual_entailment" else [ConstraintsKey]
        assert isinstance(agent, ExcerptTaskAgent) and agent.key_kinds == kinds
        category = category_view(skill, "task_types", item)
        system, user = agent.render(
            InstructInput(
                skill=skill_view(skill),
                category=category,
                material=passage,
                material_text=passage.text,
                count=2,
            )
        )
        text = system["content"]
        assert f"The task type, {item.name}:" in text
        assert "copied exactly" in text and "40 to 250 words" in text
        assert '{"start": "<the first 6 to 12 words of the excerpt, copied exactly' in text
        assert text.endswith(agent.output_shape())
        source = lib.source(category.guidance)
        assert 4 <= len(source.splitlines()) <= 14, item.id
        assert PASSAGE in user["content"]


def test_text_modification_framings_render(taxonomy: Taxonomy, lib: PromptLibrary) -> None:
    skill = taxonomy.skills["text_modification"]
    assert skill.student.framings is not None
    expected = {
        "text_modification/framings/instruction_then_text.j2": 'Paraphrase the text.\n\n"""\n{p}\n"""',
        "text_modification/framings/text_then_instruction.j2": '"""\n{p}\n"""\n\nParaphrase the text.',
        "text_modification/framings/labelled_text.j2": 'Paraphrase the text.\n\nText:\n"""\n{p}\n"""',
    }
    assert set(skill.student.framings.values) == set(expected)
    question = FreeTextKey(rubric=["Keeps 7 to 2."]).view(Layout())
    for name, shape in expected.items():
        out = lib.render(
            name,
            instruction="Paraphrase the text.",
            question=question,
            material=PASSAGE,
            title="",
            delimiter={"open": '"""', "close": '"""'},
        )
        assert out == shape.format(p=PASSAGE), name


def test_text_modification_refinement_renders(taxonomy: Taxonomy, lib: PromptLibrary) -> None:
    skill = taxonomy.skills["text_modification"]
    flow = flows_of(skill, lib)["refinement"]
    item = skill.task_types[0]
    key = FreeTextKey(rubric=["Keeps 7 to 2."])
    task = TaskView(
        material_text=PASSAGE,
        instruction="Paraphrase the text.",
        question=key.view(Layout()),
        key=key.model_dump(),
    )
    goals = [GoalView(**g.model_dump(exclude={"weight"})) for g in skill.refinement_goals]
    common = {"skill": skill_view(skill), "category": category_view(skill, "task_types", item)}
    sugg = flow.suggester.render(SuggestInput(**common, task=task, goals=goals))[0]["content"]
    assert "1. Add simultaneous constraints (changes the task, not the passage): " in sugg
    assert "2. Shift the genre (changes the task, not the passage): " in sugg
    suggestions = [
        "Rhyming couplets keeping every fact.",
        "For a 9-year-old.",
        "As JSON.",
        "As a table.",
    ]
    _, edit = flow.editor.render(
        EditInput(
            **common, task=task, goals=goals, suggestions=suggestions, kinds=item.key,
            material=Passage(text=PASSAGE), key=key,
        )
    )  # fmt: skip
    assert "2. [Shift the genre; changes the task] For a 9-year-old." in edit["content"]
    assert edit["content"].endswith("Reply with the JSON object only, with exactly 4 edits.")


def test_api_list_templates_render(taxonomy: Taxonomy, lib: PromptLibrary) -> None:
    skill = taxonomy.skills["tool_use"]
    agents = flows_of(skill, lib)["content_transformation"].agents
    seed = SeedView(id="s1", text="def add(a, b): return a + b", source="x.py", kind="code")
    for item in skill.transformers:
        agent = agents[item.id]
        assert isinstance(agent, ApiListBuilder)
        system, user = agent.render(
            TransformInput(
                skill=skill_view(skill),
                category=category_view(skill, "transformers", item),
                seed=seed,
                min_items=4,
                max_items=10,
            )
        )
        assert f"Your role, the {item.name}:" in system["content"]
        assert "- Between 4 and 10 APIs, each with a distinct job" in system["content"]
        assert "def add(a, b)" in user["content"] and "<<<SEED" in user["content"]
        assert "between 4 and 10 APIs" in user["content"]
    # the example shape is a valid ApiList once its elided parts are filled in
    (shape,) = _shape_lines(system["content"], "Shape of a valid answer")
    filled = shape.replace("[...]", "[]").replace('"..."', '"Tide times for a port."')
    filled = re.sub(r"<([a-z_]+)>", r"\1", filled)  # <library_name> -> library_name
    filled = re.sub(r"<[^<>]+>", "Tide times for a port.", filled)
    assert len(ApiList.model_validate_json(filled).apis) == 2


def test_task_templates_render(taxonomy: Taxonomy, lib: PromptLibrary) -> None:
    skill = taxonomy.skills["tool_use"]
    agents = flows_of(skill, lib)["seed_instruction"].agents
    for item in skill.task_types:
        agent = agents[item.id]
        assert isinstance(agent, ToolTaskAgent) and agent.key_kinds == [ToolOutcomeKey]
        category = category_view(skill, "task_types", item)
        system, user = agent.render(
            InstructInput(
                skill=skill_view(skill),
                category=category,
                material=HARBOR,
                material_text=HARBOR.render(lib, "agent"),
                count=1,
                slots=[{"user_context": "a traveller planning a trip"}],
                slot_labels={"user_context": "who the user is"},
            )
        )
        assert f"The family, {item.name}:" in system["content"]
        guidance = lib.source(category.guidance)
        outcome = re.search(r'key "outcome": (final_answer|failed)', guidance)
        assert outcome is not None, item.id
        ends_well = item.id.endswith(("all_params", "extra_params"))
        assert outcome.group(1) == ("final_answer" if ends_well else "failed"), item.id
        assert 'key "required_apis"' in guidance
        assert system["content"].endswith(agent.output_shape())
        text = user["content"]
        assert "berths.book: Book a berth" in text
        assert "- paid (boolean, optional)" in text
        assert "Parameters: none" in text
        assert 'of the family "' in text and "Write 1 task " in text
        assert "- Task 1: who the user is: a traveller planning a trip" in text


def test_refinement_templates_render(taxonomy: Taxonomy, lib: PromptLibrary) -> None:
    skill = taxonomy.skills["tool_use"]
    flow = flows_of(skill, lib)["refinement"]
    assert isinstance(flow.editor, ToolEditor)
    item = skill.task_types[0]
    key = ToolOutcomeKey(outcome="failed", required_apis=[], reference="-> FAILED")
    task = TaskView(
        material_text=HARBOR.render(lib, "agent"),
        instruction="Book me a berth.",
        key=key.model_dump(),
    )
    goals = [GoalView(**g.model_dump(exclude={"weight"})) for g in skill.refinement_goals[:2]]
    common = {"skill": skill_view(skill), "category": category_view(skill, "task_types", item)}
    system, user = flow.suggester.render(SuggestInput(**common, task=task, goals=goals))
    assert "1. Need more steps: Raise the number of API calls" in system["content"]
    assert "<<<NAME" in system["content"]  # the injection guard partial
    assert all(s.startswith("{") for s in _shape_lines(system["content"], "placeholders show"))
    assert "<<<REQUEST\nBook me a berth.\nREQUEST>>>" in user["content"]
    assert "Propose 2 suggestions" in user["content"]
    suggestions = [
        "Describe the port instead of giving its id.",
        "Book only if it costs under 40 EUR.",
    ]
    system, user = flow.editor.render(
        EditInput(
            **common, task=task, goals=goals, suggestions=suggestions, kinds=item.key,
            material=HARBOR, key=key,
        )
    )  # fmt: skip
    assert "tool_outcome: " in system["content"]
    assert "2. [Add a condition on results] Book only if it costs under 40 EUR." in user["content"]
    assert "exactly 2 edits" in user["content"]


def test_conversation_assistant_simulator_and_observations(
    taxonomy: Taxonomy, lib: PromptLibrary
) -> None:
    """A fixed conversation played through the skill's tool_conversation flow: the
    student-facing system message lists the APIs and the action format, observations
    follow the documented form, the teacher's guidance stays out of the record, and the
    simulated API sees its earlier calls."""
    record, model = run_conversation(taxonomy.skills["tool_use"], lib)
    messages = [(m["role"], m["content"]) for m in record.messages]
    assert [r for r, _ in messages] == ["system", "user", *["assistant", "user"] * 3, "assistant"]
    system = messages[0][1]
    assert 'the library "harbor" (Search ports and book berths) listed below' in system
    assert "1. find_port:" in system and "3. ping:" in system
    assert "- query (string, required): Part of the port name." in system
    assert "API_RESULT <api name>: <JSON>" in system and "API_ERROR <api name>: <message>" in system
    assert messages[1] == ("user", REQUEST)
    assert messages[3] == (
        "user",
        'API_RESULT find_port: [{"port_id": "P-0412", "name": "Porto Santo"}]',
    )
    assert messages[5] == ("user", "API_ERROR berths.book: arrival must be YYYY-MM-DD")
    assert [c for r, c in messages if r == "assistant"] == ASSISTANT
    # the teacher acts under its own guidance, which the record does not keep
    acting = requests_of(model, ASSISTANT_MARKER)
    assert len(acting) == 4
    assert "Never invent a value" in acting[0][0]["content"]
    assert acting[0][0]["content"].endswith(system) and "Never invent a value" not in system
    assert acting[-1][1:] == [{"role": r, "content": c} for r, c in messages[1:-1]]
    simulated = requests_of(model, SIMULATOR_MARKER)
    assert len(simulated) == 3
    assert "<<<REQUEST\n" + REQUEST + "\nREQUEST>>>" in simulated[0][1]["content"]
    assert "<<<HISTORY" not in simulated[0][1]["content"]
    assert (
        '1. find_port({"query": "Porto Santo"}) -> ok: [{"port_id": "P-0412", "name": "Porto Santo"}]\n'
        '2. berths.book({"port_id": "P-0412", "arrival": "3 June 2025"}) -> error: arrival must be '
        "YYYY-MM-DD"
    ) in simulated[2][1]["content"]
    assert '"arrival": "2025-06-03"' in simulated[2][1]["content"]
    # the simulator's two shapes are valid answers once their <...> parts are filled in
    shapes = _shape_lines(simulated[0][0]["content"], "shapes of a valid answer")
    assert len(shapes) == 2
    for line in shapes:
        ApiResult.model_validate_json(re.sub(r"(?<!\")<[^<>]+>", '{"temp_c": 18}', line))


# -- (c) the documented action format is the parsed one -------------------------------
def test_the_documented_examples_and_turns_parse(taxonomy: Taxonomy, lib: PromptLibrary) -> None:
    record, _ = run_conversation(taxonomy.skills["tool_use"], lib)
    system = record.messages[0]["content"]
    examples = re.findall(r"^(ACTION_TYPE : [A-Z_]+\nACTION: .+)$", system, flags=re.M)
    actions = [parse_action(e) for e in examples]
    assert [a.kind for a in actions] == ["api_call", "final_answer", "failed"]
    call = actions[0]
    assert call.name == "get_exchange_rate"
    assert call.arguments == {"base": "EUR", "target": "JPY", "date": "2025-03-14"}
    assert actions[1].value == FORMAT_EXAMPLES["final_answer"]
    assert actions[2].value == FORMAT_EXAMPLES["failed"]
    # every turn of the conversation parses against the API list it was shown
    turns = [m["content"] for m in record.messages if m["role"] == "assistant"]
    assert [parse_action(t, API_LIST.apis).kind for t in turns] == [
        "api_call", "api_call", "api_call", "final_answer"
    ]  # fmt: skip
    # a whole turn as the rules describe it: brief reasoning, then the action, with
    # JSON-like literals and a dotted API name, checked against the shown API list
    turn = (
        "The user gave the berth and the arrival date, so I can book it now.\n"
        "ACTION_TYPE : API_CALL\n"
        'ACTION: berths.book(berth_id="B-114", arrival="2025-06-03", paid=true)'
    )
    action = parse_action(turn, APIS)
    assert action.arguments == {"berth_id": "B-114", "arrival": "2025-06-03", "paid": True}
    stop = parse_action(
        "I have the answer.\nACTION_TYPE : STOP\n"
        'ACTION: FINAL_ANSWER("Booked: \\"B-114\\".\\nEnjoy.")'
    )
    assert stop.value == 'Booked: "B-114".\nEnjoy.'
