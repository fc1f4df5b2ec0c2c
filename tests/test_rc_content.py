"""Content of the reading-comprehension skill (taxonomies/agentinstruct.yaml and prompts/rc/).

The part validates as a taxonomy; it holds the paper's 9 transformers, 43 question types
(the 14 the paper names, marked ``origin: paper``) and 3 refinement goals; every task type
names its key kinds and allowed goals; every guidance file exists and renders under
StrictUndefined inside its agent's prompt, as the skill's flows build it.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from genteach.agents import (
    ContentTransformer,
    EditInput,
    Editor,
    InstructInput,
    SeedInstructionAgent,
    SeedView,
    Suggester,
    SuggestInput,
    TaskView,
    TransformInput,
)
from genteach.agents.views import GoalView
from genteach.flows import (
    ContentTransformationFlow,
    RefinementFlow,
    SeedInstructionFlow,
    build_flows,
)
from genteach.flows.base import FlowBuild, category_view, draw_slots, skill_view, slot_labels
from genteach.keys import ChoiceKey, KeyKinds, Layout, public_view
from genteach.material import Passage
from genteach.prompts import PromptLibrary
from genteach.taxonomy import Skill, load_taxonomy

ROOT = Path(__file__).resolve().parents[1]
TAXONOMY = ROOT / "taxonomies" / "agentinstruct.yaml"

TRANSFORMERS = {
    "argument_passage", "debate_passage", "conversation_passage", "meeting_transcript",
    "poem", "satirical_passage", "instructional_passage", "long_text", "identity",
}  # fmt: skip
PAPER_TYPES = {
    "literal_comprehension", "numerical_discrete_reasoning", "critical_comprehension",
    "evaluative_comprehension", "vocabulary_and_language_use", "relationship_comprehension",
    "sequencing_events", "strengthen", "weaken", "assumption", "flaw", "inference",
    "principle", "method_of_reasoning",
}  # fmt: skip
ARGUMENT_TYPES = {
    "strengthen", "weaken", "assumption", "sufficient_assumption", "flaw", "principle",
    "method_of_reasoning", "parallel_reasoning", "evaluate_the_argument", "role_of_statement",
}  # fmt: skip
GOALS = {"unanswerable", "answer_flip", "complexify"}

SEED = SeedView(
    id="seed-0001",
    text=(
        "On 4 May 2021 the town council of Harwick voted 7 to 2 to close Mill Road to cars "
        "for twelve weeks. Council leader Maria Chen said the closure would 'probably' cut "
        "traffic on the high street by about a third. Critics, led by shop owner Tom Ruiz, "
        "argued that deliveries would take 15 minutes longer and that sales could fall."
    ),
    source="local-news",
    kind="text",
    language="en",
)
PASSAGE = Passage(
    title="Closing Mill Road",
    text=SEED.text + " In August, traffic on the high street was 28% lower than in April.",
)
CHOICE_KEY: dict[str, Any] = {
    "kind": "choice",
    "correct": ["Traffic fell by more than a quarter."],
    "distractors": ["Sales rose.", "Deliveries were faster.", "The road reopened in May."],
    "explanation": "28% lower.",
}


@pytest.fixture(scope="module")
def skill() -> Skill:
    return load_taxonomy(TAXONOMY).skills["rc"]


@pytest.fixture(scope="module")
def lib() -> PromptLibrary:
    return PromptLibrary()


@pytest.fixture(scope="module")
def flows(skill: Skill, lib: PromptLibrary) -> dict[str, Any]:
    """The skill's flows, built as a run builds them."""
    return {f.name: f for f in build_flows(skill, FlowBuild(prompts=lib))}


# --- (a) the part validates and every guidance file it names exists -----------------


def test_part_is_ready_and_pipeline_matches_the_example(skill: Skill) -> None:
    assert skill.name == "Reading Comprehension"
    assert skill.status == "ready"
    assert skill.weight == 8.0
    assert skill.seed_kinds == ["text"]
    assert skill.prompts == {}
    stages = [(s.flow, s.settings) for s in skill.pipeline]
    assert stages == [
        ("content_transformation", {"min_words": 250, "max_words": 600}),
        ("seed_instruction", {"task_types_per_seed": 2, "tasks_per_type": 2}),
        ("refinement", {"rounds": 1, "suggestions": 3}),
        ("response", {}),
    ]


def test_every_guidance_file_exists(skill: Skill, lib: PromptLibrary) -> None:
    for t in skill.transformers:
        if t.agent == "identity":
            continue
        path = skill.guidance("transformers", t)
        assert path == f"rc/transformers/{t.id}.j2"
        assert lib.exists(path), path
    for tt in skill.task_types:
        path = skill.guidance("task_types", tt)
        assert path == f"rc/task_types/{tt.id}.j2"
        assert lib.exists(path), path


def test_no_orphan_guidance_files(skill: Skill) -> None:
    base = ROOT / "prompts" / "rc"
    on_disk_t = {p.stem for p in (base / "transformers").glob("*.j2")}
    on_disk_tt = {p.stem for p in (base / "task_types").glob("*.j2")}
    assert on_disk_t == {t.id for t in skill.transformers if t.agent != "identity"}
    assert on_disk_tt == {t.id for t in skill.task_types}


# --- (b) counts and ids --------------------------------------------------------------


def test_nine_transformers(skill: Skill) -> None:
    assert {t.id for t in skill.transformers} == TRANSFORMERS
    assert len(skill.transformers) == 9
    identity = next(t for t in skill.transformers if t.id == "identity")
    assert identity.agent == "identity"
    assert all(t.agent is None for t in skill.transformers if t.id != "identity")
    assert all(t.weight > 0 and t.description for t in skill.transformers)


def test_43_task_types_14_from_the_paper(skill: Skill) -> None:
    assert len(skill.task_types) == 43
    paper = {t.id for t in skill.task_types if t.origin == "paper"}
    assert paper == PAPER_TYPES
    ours = [t for t in skill.task_types if t.origin == "genteach"]
    assert len(ours) == 29
    assert all(t.weight > 0 for t in skill.task_types)
    # the paper's types are weighted somewhat higher than genteach's own on average
    paper_weights = [t.weight for t in skill.task_types if t.origin == "paper"]
    our_weights = [t.weight for t in ours]
    assert sum(paper_weights) / len(paper_weights) > sum(our_weights) / len(our_weights)


def test_three_refinement_goals(skill: Skill) -> None:
    assert {g.id for g in skill.refinement_goals} == GOALS
    assert all(len(g.description.split()) >= 30 for g in skill.refinement_goals)


def test_transformers_restrict_task_types_sensibly(skill: Skill) -> None:
    by_id = {t.id: t for t in skill.transformers}
    every = {t.id for t in skill.task_types}
    allowed = {tid: set(t.task_types) for tid, t in by_id.items() if t.task_types != "all"}
    assert set(allowed) == TRANSFORMERS, "each transformer gives an explicit list"
    # every task type can follow at least one transformer
    assert set().union(*allowed.values()) == every
    # argument types need an argument
    assert allowed["argument_passage"] >= ARGUMENT_TYPES
    assert not ARGUMENT_TYPES & allowed["poem"]
    assert not ARGUMENT_TYPES & allowed["instructional_passage"]
    # forms fit their types
    assert "point_at_issue" in allowed["debate_passage"]
    assert "point_at_issue" not in allowed["poem"] | allowed["long_text"]
    assert "figurative_language" in allowed["poem"] & allowed["satirical_passage"]
    assert "sequencing_events" in allowed["instructional_passage"]
    assert "sequencing_events" not in allowed["argument_passage"]
    assert "implied_meaning" in allowed["conversation_passage"]
    assert len(allowed["identity"]) >= 30
    for tid, types in allowed.items():
        assert len(types) >= 15, f"{tid} allows too few task types"


# --- (c) rendering inside the agents' prompts ------------------------------------------


def _task_type_ids() -> list[str]:
    data = yaml.safe_load(TAXONOMY.read_text(encoding="utf-8"))
    return [t["id"] for t in data["skills"]["rc"]["task_types"]]


def _transformer_ids() -> list[str]:
    data = yaml.safe_load(TAXONOMY.read_text(encoding="utf-8"))
    return [t["id"] for t in data["skills"]["rc"]["transformers"] if t.get("agent") != "identity"]


def test_every_task_type_names_known_key_kinds_goals_and_lists(skill: Skill) -> None:
    kinds = KeyKinds()
    for t in skill.task_types:
        assert t.key and all(k in kinds for k in t.key), t.id
        assert t.key != ["free_text"] or t.id in {
            "evaluative_comprehension", "cause_and_effect", "paraphrase_error_spotting"
        }, f"{t.id}: a closed question type needs a key code can check"  # fmt: skip
        if t.goals is not None:
            assert set(t.goals) <= GOALS and "complexify" in t.goals, t.id
        assert all(v in skill.vary for v in t.vary), t.id
        assert len(set(t.stems)) == len(t.stems), f"{t.id}: repeated stems"
    # free-text and unanswerable types cannot have their answer flipped or made unanswerable
    by_id = {t.id: t for t in skill.task_types}
    assert by_id["evaluative_comprehension"].goals == ["complexify"]
    assert "unanswerable" in by_id["unanswerable_detection"].key


@pytest.mark.parametrize("type_id", _task_type_ids())
def test_task_type_renders_in_its_agent(
    type_id: str, skill: Skill, lib: PromptLibrary, flows: dict[str, Any]
) -> None:
    item = next(t for t in skill.task_types if t.id == type_id)
    agent = flows["seed_instruction"].agents[type_id]
    assert isinstance(agent, SeedInstructionAgent)
    assert [k.model_fields["kind"].default for k in agent.key_kinds] == item.key
    category = category_view(skill, "task_types", item)
    slots = draw_slots(skill, item, random.Random(0), 2)
    system, user = agent.render(
        InstructInput(
            skill=skill_view(skill),
            category=category,
            material=PASSAGE,
            material_text=PASSAGE.text,
            count=2,
            slots=slots,
            slot_labels=slot_labels(skill, item),
        )
    )
    sys_text, user_text = system["content"], user["content"]
    # the guidance really sits between the header and the key kinds
    guidance = lib.render(
        category.guidance, skill=skill_view(skill).model_dump(), category=category.model_dump()
    )
    assert guidance
    assert f"The task type, {item.name}:\n{guidance}\n\nAnswer keys allowed" in sys_text
    for kind in item.key:
        assert f"\n- {kind}: " in sys_text, f"{type_id}: rules of {kind}"
    assert sys_text.endswith(agent.output_shape())
    lines = [ln for ln in guidance.splitlines() if ln.strip()]
    assert 4 <= len(lines) <= 12, f"{type_id}: {len(lines)} lines"
    assert "____" not in guidance or type_id == "vocabulary_and_language_use"
    assert "Shape of" not in guidance, "shapes come from the key models, not from guidance"
    assert PASSAGE.text in user_text and f'"{item.name}"' in user_text
    for i, slot in enumerate(slots, 1):
        if slot:
            assert f"- Task {i}: " in user_text
        if item.stems:
            assert f"question stem (complete it for this passage): {slot['stem']}" in user_text


@pytest.mark.parametrize("transformer_id", _transformer_ids())
def test_transformer_renders_in_its_agent(
    transformer_id: str, skill: Skill, lib: PromptLibrary, flows: dict[str, Any]
) -> None:
    item = next(t for t in skill.transformers if t.id == transformer_id)
    flow = flows["content_transformation"]
    assert isinstance(flow, ContentTransformationFlow)
    agent = flow.agents[transformer_id]
    assert isinstance(agent, ContentTransformer) and agent.name == f"transform/{transformer_id}"
    category = category_view(skill, "transformers", item)
    low = item.min_words or flow.settings.min_words
    high = item.max_words or flow.settings.max_words
    system, user = agent.render(
        TransformInput(
            skill=skill_view(skill), category=category, seed=SEED, min_words=low, max_words=high
        )
    )
    assert f"Your role, the {item.name}:" in system["content"]
    assert f"- Length: between {low} and {high} words." in system["content"]
    guidance = lib.render(
        category.guidance, skill=skill_view(skill).model_dump(), category=category.model_dump()
    )
    assert guidance in system["content"]
    lines = [ln for ln in guidance.splitlines() if ln.strip()]
    assert 8 <= len(lines) <= 20, f"{transformer_id}: {len(lines)} lines"
    assert SEED.text in user["content"]


def test_refinement_goals_render_in_suggester_and_editor(
    skill: Skill, flows: dict[str, Any]
) -> None:
    flow = flows["refinement"]
    assert isinstance(flow, RefinementFlow)
    assert isinstance(flow.suggester, Suggester) and isinstance(flow.editor, Editor)
    item = next(t for t in skill.task_types if t.id == "strengthen")
    goals = [GoalView(**g.model_dump(exclude={"weight"})) for g in skill.refinement_goals]
    key = ChoiceKey.model_validate(CHOICE_KEY)
    layout = Layout(order=[1, 0, 2, 3])
    task = TaskView(
        material_text=PASSAGE.text,
        instruction="Which of the following is supported by the passage?",
        question=key.view(layout),
        key=key.model_dump(),
    )
    common = {"skill": skill_view(skill), "category": category_view(skill, "task_types", item)}
    sys_text = flow.suggester.render(SuggestInput(**common, task=task, goals=goals))[0]["content"]
    for i, g in enumerate(skill.refinement_goals, 1):
        edits = (
            "edits the passage" if g.edits == "material" else "changes the task, not the passage"
        )
        assert f"{i}. {g.name} ({edits}): {g.description}" in sys_text
    suggestions = [f"Suggestion number {i} for this task." for i in range(1, 4)]
    _, user = flow.editor.render(
        EditInput(
            **common, task=task, goals=goals, suggestions=suggestions, kinds=item.key,
            material=PASSAGE, key=key,
        )
    )  # fmt: skip
    assert (
        "1. [Make it unanswerable; edits the passage; the task becomes unanswerable] "
        "Suggestion number 1 for this task.\n"
        "2. [Flip the answer; edits the passage; the answer must change] Suggestion number 2 "
        "for this task.\n"
        "3. [Make it more complex; changes the task] Suggestion number 3 for this task."
    ) in user["content"]
    # the task as the refinement agents see it: options labelled, and the key
    assert "(A) Sales rose.\n(B) Traffic fell by more than a quarter." in user["content"]
    assert '"correct": ["Traffic fell by more than a quarter."]' in user["content"]
    assert public_view(task.question)["options"][1] == {
        "label": "(B)",
        "text": "Traffic fell by more than a quarter.",
    }


def test_the_seed_instruction_flow_has_an_agent_per_task_type(
    skill: Skill, flows: dict[str, Any]
) -> None:
    flow = flows["seed_instruction"]
    assert isinstance(flow, SeedInstructionFlow)
    assert set(flow.agents) == {t.id for t in skill.task_types}
    assert {a.name for a in flow.agents.values()} == {f"instruct/{t.id}" for t in skill.task_types}


# --- (d) distinct descriptions and guidance --------------------------------------------


def test_task_type_descriptions_and_names_are_distinct(skill: Skill) -> None:
    descriptions = [t.description.strip() for t in skill.task_types]
    assert all(descriptions)
    assert len(set(descriptions)) == len(descriptions)
    names = [t.name for t in skill.task_types]
    assert len(set(names)) == len(names)


def test_guidance_files_are_distinct() -> None:
    texts = [
        p.read_text(encoding="utf-8").strip()
        for p in sorted((ROOT / "prompts" / "rc" / "task_types").glob("*.j2"))
    ]
    assert len(set(texts)) == len(texts)
    assert not any(re.search(r"^Shape of an instruction:", t, re.M) for t in texts)


def test_guidance_uses_no_pipeline_words() -> None:
    """Guidance never tells the agent to mention the seed or the pipeline to the student."""
    for p in (ROOT / "prompts" / "rc" / "task_types").glob("*.j2"):
        text = p.read_text(encoding="utf-8").lower()
        assert "seed" not in text, p.name
        assert "the text above" not in text, p.name
