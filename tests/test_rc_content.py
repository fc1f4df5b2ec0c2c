"""Content of the reading-comprehension skill (taxonomies/agentinstruct.yaml and prompts/rc/).

The part validates as a taxonomy; it holds the paper's 9 transformers, 43 question types
(the 14 the paper names, marked ``origin: paper``) and 3 refinement goals; every
guidance file exists and renders under StrictUndefined inside its family template.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from genteach.agents.views import PassageView, SeedView
from genteach.flows.base import category_view, skill_view
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

INSTRUCT_SHAPE = "Shape of a valid answer (invented content, only the form):"
TRANSFORM_SHAPE = "Shape of a valid answer (the content here is invented and only shows the form):"

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
PASSAGE = PassageView(
    title="Closing Mill Road",
    text=SEED.text + " In August, traffic on the high street was 28% lower than in April.",
    transformer="debate_passage",
)


@pytest.fixture(scope="module")
def skill() -> Skill:
    return load_taxonomy(TAXONOMY).skills["rc"]


@pytest.fixture(scope="module")
def lib() -> PromptLibrary:
    return PromptLibrary()


def _render(lib: PromptLibrary, name: str, **variables: Any) -> str:
    return lib.render(
        name, **{k: v.model_dump() if hasattr(v, "model_dump") else v for k, v in variables.items()}
    )


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


# --- (c) rendering inside the family templates -----------------------------------------


def _task_type_ids() -> list[str]:
    data = yaml.safe_load(TAXONOMY.read_text(encoding="utf-8"))
    return [t["id"] for t in data["skills"]["rc"]["task_types"]]


def _transformer_ids() -> list[str]:
    data = yaml.safe_load(TAXONOMY.read_text(encoding="utf-8"))
    return [t["id"] for t in data["skills"]["rc"]["transformers"] if t.get("agent") != "identity"]


@pytest.mark.parametrize("type_id", _task_type_ids())
def test_task_type_renders_in_instruct_system(
    type_id: str, skill: Skill, lib: PromptLibrary
) -> None:
    item = next(t for t in skill.task_types if t.id == type_id)
    category = category_view(skill, "task_types", item)
    system = _render(
        lib, "common/instruct_system.j2", skill=skill_view(skill), category=category, count=2
    )
    assert f"The task type, {item.name}:" in system
    assert INSTRUCT_SHAPE in system
    # the guidance really sits between the header and the output rules
    guidance = lib.render(
        category.guidance, skill=skill_view(skill).model_dump(), category=category.model_dump()
    )
    assert guidance and guidance in system
    assert system.index(f"The task type, {item.name}:") < system.index(guidance)
    assert system.index(guidance) < system.index("Output rules:")
    lines = [ln for ln in guidance.splitlines() if ln.strip()]
    assert 6 <= len(lines) <= 15, f"{type_id}: {len(lines)} lines"
    assert re.search(r"^Shape of an instruction: \".+\"$", guidance, re.M), type_id
    assert "____" not in guidance or type_id == "vocabulary_and_language_use"
    user = _render(lib, "common/instruct_user.j2", category=category, passage=PASSAGE, count=2)
    assert PASSAGE.text in user and f'"{item.name}"' in user


@pytest.mark.parametrize("transformer_id", _transformer_ids())
def test_transformer_renders_in_transform_system(
    transformer_id: str, skill: Skill, lib: PromptLibrary
) -> None:
    item = next(t for t in skill.transformers if t.id == transformer_id)
    category = category_view(skill, "transformers", item)
    system = _render(
        lib,
        "common/transform_system.j2",
        skill=skill_view(skill),
        category=category,
        min_words=250,
        max_words=600,
    )
    assert f"Your role, the {item.name}:" in system
    assert TRANSFORM_SHAPE in system
    guidance = lib.render(
        category.guidance, skill=skill_view(skill).model_dump(), category=category.model_dump()
    )
    assert guidance in system
    lines = [ln for ln in guidance.splitlines() if ln.strip()]
    assert 8 <= len(lines) <= 20, f"{transformer_id}: {len(lines)} lines"
    user = _render(lib, "common/transform_user.j2", seed=SEED, category=category)
    assert SEED.text in user


def test_refinement_goals_render_in_suggester_and_editor(skill: Skill, lib: PromptLibrary) -> None:
    goals = [g.model_dump() for g in skill.refinement_goals]
    for name in ("common/suggest_system.j2", "common/edit_system.j2"):
        text = lib.render(
            name,
            skill=skill_view(skill).model_dump(),
            goals=goals,
            count=3,
            suggestions=[{"goal": goals[0]["id"], "suggestion": "Add a distractor."}],
        )
        for g in skill.refinement_goals:
            assert f"- {g.id} ({g.name}): {g.description}" in text


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
    shapes = [re.search(r"^Shape of an instruction: (.+)$", t, re.M) for t in texts]
    shape_lines = [m.group(1) for m in shapes if m]
    assert len(set(shape_lines)) == len(shape_lines) == len(texts)


def test_guidance_uses_no_pipeline_words() -> None:
    """Guidance never tells the agent to mention the seed or the pipeline to the student."""
    for p in (ROOT / "prompts" / "rc" / "task_types").glob("*.j2"):
        text = p.read_text(encoding="utf-8").lower()
        assert "seed" not in text, p.name
        assert "the text above" not in text, p.name
