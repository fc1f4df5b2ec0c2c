"""Content of the text-modification and tool-use skills and of the planned skills.

The three taxonomy parts validate together; every guidance file and every tool-use
template renders under StrictUndefined inside its family template; the student-facing
tool-use system message documents exactly the action format ``parse_action`` accepts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from genteach.agents.tool_use import (
    FORMAT_EXAMPLES,
    ApiList,
    ApiResult,
    ApiSpec,
    ToolTaskBatch,
    parse_action,
)
from genteach.flows.base import category_view, skill_view
from genteach.prompts import PromptLibrary
from genteach.taxonomy import Skill, SubCategory, Taxonomy, load_taxonomy

ROOT = Path(__file__).resolve().parents[1]
TAXONOMY = ROOT / "taxonomies" / "agentinstruct.yaml"
PLANNED = {
    "open_domain_qa", "webagent_flow", "brain_teaser", "analytical_reasoning", "mcq",
    "struct2text_flow", "fermi", "code_", "text_extraction", "text_classification", "rag",
    "creative_content", "fs_cot_flow", "follow_up",
}  # fmt: skip
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


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy(TAXONOMY)


@pytest.fixture(scope="module")
def lib() -> PromptLibrary:
    return PromptLibrary()


def _category(skill: Skill, kind: str, item: SubCategory) -> dict[str, str]:
    return category_view(skill, kind, item).model_dump()


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
    assert {t.id for t in tool.task_types} == TOOL_FAMILIES
    assert {t.agent for t in tool.task_types} == {"tool_task"}
    assert {t.id: t.agent for t in tool.transformers} == {
        "api_from_source": "api_list",
        "library_reconstruction": "api_list",
    }
    assert "more_steps" in {g.id for g in tool.refinement_goals}
    planned = {k for k, s in taxonomy.skills.items() if s.status == "planned"}
    assert planned == PLANNED
    for sid in PLANNED:
        skill = taxonomy.skills[sid]
        assert 3 <= len(skill.task_types) <= 6, sid
        assert not skill.pipeline and skill.description and skill.weight > 0
        assert {t.origin for t in skill.task_types} == {"genteach"}
    stages = {s.flow: s.settings for s in tool.pipeline}
    assert stages["content_transformation"] == {"min_apis": 4, "max_apis": 10}
    assert stages["tool_conversation"] == {"max_steps": 8}


def test_skill_prompt_overrides_exist(taxonomy: Taxonomy, lib: PromptLibrary) -> None:
    for sid in ("text_modification", "tool_use"):
        for key, name in taxonomy.skills[sid].prompts.items():
            assert lib.exists(name), f"{sid}.prompts.{key}: {name}"


# -- (b) rendering ----------------------------------------------------------------------
def test_text_modification_guidance_renders(taxonomy: Taxonomy, lib: PromptLibrary) -> None:
    skill = taxonomy.skills["text_modification"]
    for item in skill.task_types:
        category = _category(skill, "task_types", item)
        system = lib.render(
            skill.template("instruct_system", "common/instruct_system.j2"),
            skill=skill_view(skill).model_dump(),
            category=category,
            count=2,
        )
        assert f"The task type, {item.name}:" in system
        assert "verbatim" in system and "40 to 250 words" in system and '"text"' in system
        assert "Shape (invented)" in system
        source = lib.env.loader.get_source(lib.env, category["guidance"])[0]  # type: ignore[union-attr]
        assert 6 <= len(source.splitlines()) <= 14, item.id
        user = lib.render(
            skill.template("instruct_user", "common/instruct_user.j2"),
            passage={"title": "Mill Road", "text": PASSAGE, "transformer": "identity"},
            category=category,
            count=2,
        )
        assert PASSAGE in user
    for layout in (0, 1, 2):
        out = lib.render(
            skill.template("task_user", "common/task_user.j2"),
            task={"instruction": "Paraphrase the text.", "text": PASSAGE, "answer": "x"},
            layout=layout,
            title="Mill Road",
        )
        assert PASSAGE in out and "Paraphrase the text." in out


def test_text_modification_refinement_renders(taxonomy: Taxonomy, lib: PromptLibrary) -> None:
    skill = taxonomy.skills["text_modification"]
    goals = [g.model_dump() for g in skill.refinement_goals]
    task = {"text": PASSAGE, "instruction": "Paraphrase the text.", "answer": "keeps 7 to 2"}
    sugg = lib.render(
        skill.template("suggest_system", "common/suggest_system.j2"),
        skill=skill_view(skill).model_dump(),
        goals=goals,
        count=3,
    )
    assert "genre_shift" in sugg and "richer_constraints" in sugg
    edit = lib.render(
        skill.template("edit_user", "common/edit_user.j2"),
        task=task,
        suggestions=[{"goal": "genre_shift", "suggestion": "Rhyming couplets keeping every fact."}],
    )
    assert "Rhyming couplets" in edit


def test_api_list_templates_render(taxonomy: Taxonomy, lib: PromptLibrary) -> None:
    skill = taxonomy.skills["tool_use"]
    for item in skill.transformers:
        category = _category(skill, "transformers", item)
        system = lib.render(
            "tool_use/api_list_system.j2",
            skill=skill_view(skill).model_dump(),
            category=category,
            min_apis=4,
            max_apis=10,
        )
        assert f"Your role, the {item.name}:" in system
        assert "Between 4 and 10 APIs" in system
        user = lib.render(
            "tool_use/api_list_user.j2",
            category=category,
            seed={
                "id": "s1",
                "text": "def add(a, b): return a + b",
                "source": "x.py",
                "kind": "code",
                "language": "python",
            },
            min_apis=4,
            max_apis=10,
        )
        assert "def add(a, b)" in user and "<<<SEED" in user
    # the example shape is a valid ApiList once its elided parts are filled in
    (shape,) = _shape_lines(system, "Shape of a valid answer")
    filled = shape.replace("[...]", "[]").replace('"..."', '"Tide times for a port."')
    filled = re.sub(r"<([a-z_]+)>", r"\1", filled)  # <library_name> -> library_name
    filled = re.sub(r"<[^<>]+>", "Tide times for a port.", filled)
    assert len(ApiList.model_validate_json(filled).apis) == 2


def test_task_templates_render(taxonomy: Taxonomy, lib: PromptLibrary) -> None:
    skill = taxonomy.skills["tool_use"]
    for item in skill.task_types:
        category = _category(skill, "task_types", item)
        system = lib.render(
            "tool_use/task_system.j2",
            skill=skill_view(skill).model_dump(),
            category=category,
            count=1,
        )
        assert f"The family, {item.name}:" in system
        assert "expected_outcome" in lib.env.loader.get_source(lib.env, category["guidance"])[0]  # type: ignore[union-attr]
        shape = _shape_lines(system, "Shape of a valid answer")
        assert len(shape) == 1
        ToolTaskBatch.model_validate_json(shape[0])
        user = lib.render(
            "tool_use/task_user.j2", category=category, library="harbor", apis=API_DICTS, count=1
        )
        assert "berths.book: Book a berth" in user
        assert "- paid (boolean, optional)" in user
        assert "Parameters: none" in user
        assert "of the family" in user and "Write 1 task " in user


def test_refinement_templates_render(taxonomy: Taxonomy, lib: PromptLibrary) -> None:
    skill = taxonomy.skills["tool_use"]
    goals = [g.model_dump() for g in skill.refinement_goals]
    task = {"text": "1. find_port: ...", "instruction": "Book me a berth.", "answer": "-> FAILED"}
    suggestions = [
        {"goal": "more_steps", "suggestion": "Describe the port instead of giving its id."},
        {"goal": "conditional_logic", "suggestion": "Book only if it costs under 40 EUR."},
    ]
    view = skill_view(skill).model_dump()
    for key in ("suggest_system", "edit_system"):
        out = lib.render(
            skill.prompts[key], skill=view, goals=goals, count=2, suggestions=suggestions
        )
        assert "more_steps (Need more steps)" in out
        assert "<<<NAME" in out  # the injection guard partial
        assert all(s.startswith("{") for s in _shape_lines(out, "Shape of a valid answer"))
    out = lib.render(skill.prompts["suggest_user"], task=task, count=2)
    assert "<<<REQUEST\nBook me a berth.\nREQUEST>>>" in out and "2 suggestions" in out
    out = lib.render(skill.prompts["edit_user"], task=task, suggestions=suggestions)
    assert "2. [conditional_logic]" in out and "exactly 2 edits" in out


def test_conversation_assistant_simulator_observation_render(
    taxonomy: Taxonomy, lib: PromptLibrary
) -> None:
    skill = taxonomy.skills["tool_use"]
    item = skill.task_types[0]
    conv = lib.render(
        "tool_use/conversation_system.j2",
        library="harbor",
        apis=API_DICTS,
        examples=FORMAT_EXAMPLES,
    )
    assert '"harbor"' in conv and "1. find_port:" in conv and "3. ping:" in conv
    described = lib.render(
        "tool_use/conversation_system.j2",
        library="harbor",
        description="Berths.",
        apis=API_DICTS,
        examples=FORMAT_EXAMPLES,
    )
    assert '"harbor" (Berths) listed below' in described
    assert "- query (string, required): Part of the port name." in conv
    assistant = lib.render(
        "tool_use/assistant_system.j2",
        skill=skill_view(skill).model_dump(),
        category=_category(skill, "task_types", item),
        apis=API_DICTS,
        conversation=[{"role": "system", "content": conv}, {"role": "user", "content": "hi"}],
    )
    assert item.name in assistant and "Never invent a value" in assistant
    sim_sys = lib.render("tool_use/simulator_system.j2", library="harbor")
    # the two shapes are valid answers once their <...> parts are filled in
    for line in _shape_lines(sim_sys, "shapes of a valid answer"):
        ApiResult.model_validate_json(re.sub(r"(?<!\")<[^<>]+>", '{"temp_c": 18}', line))
    sim_user = lib.render(
        "tool_use/simulator_user.j2",
        library="harbor",
        api=API_DICTS[1],
        arguments={"berth_id": "B-114", "arrival": "2025-06-03", "paid": True},
        request="Book berth B-114 from 3 June 2025.",
        history=[],
    )
    assert '"berth_id": "B-114"' in sim_user and "<<<REQUEST" in sim_user
    assert "<<<HISTORY" not in sim_user
    with_history = lib.render(
        "tool_use/simulator_user.j2",
        library="harbor",
        api=API_DICTS[1],
        arguments={"berth_id": "B-114"},
        request="Book berth B-114.",
        history=[{"api": "find_port", "arguments": {"name": "Porto Santo"}, "status": "ok",
                  "result": {"port_id": "P-1", "note": "O'Brien's quay"}, "error": ""}],
    )  # fmt: skip
    assert (
        '1. find_port({"name": "Porto Santo"}) -> ok: {"port_id": "P-1", "note": "O\'Brien\'s quay"}'
        in with_history
    )
    ok = lib.render(
        "tool_use/observation.j2", api_name="find_port", status="ok",
        result=[{"port_id": "P-1", "name": "Porto Santo"}], error="",
    )  # fmt: skip
    assert ok == 'API_RESULT find_port: [{"port_id": "P-1", "name": "Porto Santo"}]'
    err = lib.render(
        "tool_use/observation.j2", api_name="berths.book", status="error", result=None,
        error="arrival must be YYYY-MM-DD",
    )  # fmt: skip
    assert err == "API_ERROR berths.book: arrival must be YYYY-MM-DD"
    assert "API_RESULT <api name>: <JSON>" in conv and "API_ERROR <api name>: <message>" in conv


# -- (c) the documented action format is the parsed one -------------------------------
def test_conversation_system_examples_parse(lib: PromptLibrary) -> None:
    conv = lib.render(
        "tool_use/conversation_system.j2",
        library="harbor",
        apis=API_DICTS,
        examples=FORMAT_EXAMPLES,
    )
    examples = re.findall(r"^(ACTION_TYPE : [A-Z_]+\nACTION: .+)$", conv, flags=re.M)
    actions = [parse_action(e) for e in examples]
    assert [a.kind for a in actions] == ["api_call", "final_answer", "failed"]
    call = actions[0]
    assert call.name == "get_exchange_rate"
    assert call.arguments == {"base": "EUR", "target": "JPY", "date": "2025-03-14"}
    assert actions[1].value.startswith("1 EUR was worth")
    assert "missing value for recipient_email" in actions[2].value
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
