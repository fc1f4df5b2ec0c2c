"""Refinement: the suggester's and the editor's checks by goal (passage edits applied and
checked by code, keys that must change or become unanswerable, task edits that must change
something), the tool-use editor, and the goals drawn in code by weight among those a task
may have."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import pytest

from genteach.agents import (
    CategoryView,
    EditInput,
    Editor,
    ParseError,
    Suggester,
    SuggestInput,
    TaskView,
    ToolEditor,
)
from genteach.agents.tool_use import ApiList, ApiSpec
from genteach.agents.views import GoalView, SkillView
from genteach.flows import RefinementFlow
from genteach.flows.base import FlowBuild, RunContext, StudentView, Task, WorkItem
from genteach.keys import (
    ChoiceKey,
    ConstraintsKey,
    ExactKey,
    KeyKinds,
    Layout,
    ToolOutcomeKey,
    UnanswerableKey,
)
from genteach.material import Passage
from genteach.models import ScriptedModel
from genteach.prompts import PromptLibrary
from genteach.records import Seed
from genteach.taxonomy import Skill, load_taxonomy

SKILL = SkillView(id="rc", name="Reading Comprehension")
CATEGORY = CategoryView(id="inference", name="Inference", description="What follows.")
PASSAGE = Passage(
    title="Tunnel",
    text="The tunnel opened in March. The toll is four pounds. Traffic fell by a third.",
)
CHOICE = ChoiceKey(
    correct=["Traffic fell by a third."],
    distractors=["Traffic rose.", "The toll is free.", "The tunnel closed."],
)
INSTRUCTION = "Which of the following does the passage report?"
GOALS = {
    "unanswerable": GoalView(
        id="unanswerable", name="Make it unanswerable", edits="material", key="unanswerable"
    ),
    "answer_flip": GoalView(
        id="answer_flip", name="Flip the answer", edits="material", key="changed"
    ),
    "complexify": GoalView(id="complexify", name="Make it more complex", edits="task", key="any"),
}
FLIPPED = {
    "kind": "choice",
    "correct": ["Traffic rose."],
    "distractors": ["Traffic fell by a third.", "The toll is free.", "The tunnel closed."],
}


def task_view(
    material: Any = PASSAGE, key: Any = CHOICE, instruction: str = INSTRUCTION
) -> TaskView:
    text = material.render(PromptLibrary(), "agent")
    return TaskView(material_text=text, instruction=instruction, key=key.model_dump())


def edit_input(
    *goal_ids: str, kinds: tuple[str, ...] = ("choice",), material: Any = PASSAGE, key: Any = CHOICE
) -> EditInput:
    return EditInput(
        skill=SKILL,
        category=CATEGORY,
        task=task_view(material, key),
        goals=[GOALS[g] for g in goal_ids],
        suggestions=[f"Suggestion {i} for the task at hand." for i in range(1, len(goal_ids) + 1)],
        kinds=list(kinds),
        material=material,
        key=key,
    )


def edits(*items: dict[str, Any]) -> str:
    blank = {"edits": None, "instruction": None, "key": None, "missing": None}
    return json.dumps({"edits": [{**blank, "suggestion": i, **x} for i, x in enumerate(items, 1)]})


@pytest.fixture
def editor() -> Editor:
    return Editor("editor", prompts=PromptLibrary(), key_kinds=[ChoiceKey, ExactKey])


# -- the editor ---------------------------------------------------------------------------
def test_unanswerable_edits_the_passage_and_keeps_the_question(editor: Editor) -> None:
    text = edits(
        {
            "edits": [{"find": "Traffic fell by a third.", "replace": "Traffic changed."}],
            "missing": "by how much traffic changed",
        }
    )
    (rev,) = editor.parse(text, edit_input("unanswerable")).revisions
    assert rev.material == Passage(
        title="Tunnel", text="The tunnel opened in March. The toll is four pounds. Traffic changed."
    )
    assert rev.instruction == INSTRUCTION
    assert rev.key == UnanswerableKey(
        missing="by how much traffic changed", shown=CHOICE.model_dump()
    )
    # the student still sees the options of the question it was made from
    assert isinstance(rev.key, UnanswerableKey) and rev.key.presented(KeyKinds()) == CHOICE


def test_answer_flip_edits_the_passage_and_changes_the_key(editor: Editor) -> None:
    text = edits(
        {"edits": [{"find": "fell by a third", "replace": "rose by a third"}], "key": FLIPPED}
    )
    (rev,) = editor.parse(text, edit_input("answer_flip")).revisions
    assert rev.material.text.endswith("Traffic rose by a third.")
    assert rev.key == ChoiceKey.model_validate(FLIPPED) and rev.instruction == INSTRUCTION


def test_complexify_changes_the_task_and_keeps_the_passage(editor: Editor) -> None:
    harder = {**CHOICE.model_dump(), "distractors": ["Traffic fell by a quarter.", "x y", "z w"]}
    text = edits({"instruction": "Which figure does the passage give for traffic?", "key": harder})
    (rev,) = editor.parse(text, edit_input("complexify")).revisions
    assert rev.material is PASSAGE
    assert rev.instruction == "Which figure does the passage give for traffic?"
    assert rev.key == ChoiceKey.model_validate(harder)
    # a new instruction alone is a change; the key stays
    (rev,) = editor.parse(
        edits({"instruction": "Which of these does the passage state outright?"}),
        edit_input("complexify"),
    ).revisions
    assert rev.key is CHOICE


@pytest.mark.parametrize(
    ("goal", "edit", "reason"),
    [
        (
            "unanswerable",
            {"missing": "the size of the fall"},
            "edit 1 (unanswerable): this goal edits the passage: give the find/replace edits "
            "that make the change (the instruction stays as it is)",
        ),
        (
            "answer_flip",
            {"edits": [], "key": FLIPPED},
            "edit 1 (answer_flip): this goal edits the passage: give the find/replace edits "
            "that make the change (the instruction stays as it is)",
        ),
        (
            "answer_flip",
            {"edits": [{"find": "the bridge", "replace": "x"}], "key": FLIPPED},
            "edit 1 (answer_flip): edit 1: the find text 'the bridge' does not occur in the "
            "passage; quote one exact excerpt that occurs once",
        ),
        (
            "answer_flip",
            {"edits": [{"find": "The ", "replace": "A "}], "key": FLIPPED},
            "edit 1 (answer_flip): edit 1: the find text 'The ' occurs 2 times in the passage; "
            "quote one exact excerpt that occurs once",
        ),
        (
            "unanswerable",
            {"edits": [{"find": "by a third", "replace": "somewhat"}], "missing": " "},
            'edit 1 (unanswerable): name the information the passage no longer gives in "missing"',
        ),
        (
            "answer_flip",
            {"edits": [{"find": "by a third", "replace": "by half"}]},
            "edit 1 (answer_flip): the answer must change: give the new key",
        ),
        (
            "answer_flip",
            {
                "edits": [{"find": "by a third", "replace": "by half"}],
                "key": {**CHOICE.model_dump(), "distractors": ["a b", "c d"]},
            },
            "edit 1 (answer_flip): the new key gives the same answer as before: the edit must "
            "change the correct answer",
        ),
        (
            "complexify",
            {
                "edits": [{"find": "by a third", "replace": "by half"}],
                "instruction": "Which is it now?",
            },
            "edit 1 (complexify): this goal changes the task, not the passage: set edits to null",
        ),
        (
            "complexify",
            {},
            "edit 1 (complexify): nothing changed: change the instruction, its options or "
            "constraints as the suggestion says",
        ),
        (
            "complexify",
            {"instruction": INSTRUCTION, "key": CHOICE.model_dump()},
            "edit 1 (complexify): nothing changed: change the instruction, its options or "
            "constraints as the suggestion says",
        ),
        (
            "complexify",
            {"instruction": "Why?"},
            "edit 1 (complexify): the instruction is too short",
        ),
        (
            "complexify",
            {
                "instruction": "When did the tunnel open?",
                "key": {"kind": "exact", "value": "March"},
            },
            "edit 1 (complexify): key kind 'exact' is not allowed for this task type (kinds: choice)",
        ),
    ],
)
def test_editor_checks_each_goal(
    editor: Editor, goal: str, edit: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ParseError) as exc:
        editor.parse(edits(edit), edit_input(goal))
    assert exc.value.reason == reason


def test_answer_flip_keeps_the_kind(editor: Editor) -> None:
    text = edits(
        {
            "edits": [{"find": "by a third", "replace": "by half"}],
            "key": {"kind": "exact", "value": "by half"},
        }
    )
    with pytest.raises(ParseError) as exc:
        editor.parse(text, edit_input("answer_flip", kinds=("choice", "exact")))
    assert (
        exc.value.reason
        == "edit 1 (answer_flip): keep the key's kind (choice) and change its answer"
    )


def test_a_material_that_cannot_be_edited_refuses_material_goals(editor: Editor) -> None:
    apis = ApiList(
        library="L",
        apis=[
            ApiSpec(name="get_toll", description="The toll."),
            ApiSpec(name="get_counts", description="The counts."),
        ],
    )
    text = edits({"edits": [{"find": "get_toll", "replace": "x"}], "missing": "the toll"})
    with pytest.raises(ParseError) as exc:
        editor.parse(text, edit_input("unanswerable", material=apis))
    assert exc.value.reason == "edit 1 (unanswerable): this material cannot be edited"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            json.dumps(
                {
                    "edits": [
                        {"suggestion": 1, "instruction": "Which is the figure given?"},
                        {"suggestion": 1, "instruction": "Which is the figure given?"},
                    ]
                }
            ),
            "two edits answer the same suggestion ([1, 1])",
        ),
        (
            json.dumps({"edits": [{"suggestion": 3, "instruction": "Which is the figure given?"}]}),
            "an edit answers suggestion 3, but there are 2",
        ),
        (
            json.dumps({"edits": [{"suggestion": 1, "instruction": "Which is the figure given?"}]}),
            "1 edits for 2 suggestions: write one each",
        ),
        ('{"edits": []}', "field edits: List should have at least 1 item after validation, not 0"),
        (
            '{"edits": [{"suggestion": 1, "instruction": "Which',
            "truncated JSON object (the answer stops before it closes)",
        ),
    ],
)
def test_editor_answers_one_edit_per_suggestion(editor: Editor, text: str, reason: str) -> None:
    with pytest.raises(ParseError) as exc:
        editor.parse(text, edit_input("complexify", "complexify"))
    assert exc.value.reason == reason


def test_editor_prompt_lists_the_task_types_kinds_only(editor: Editor) -> None:
    system, user = editor.render(edit_input("answer_flip", "complexify"))
    assert "\n- choice: multiple choice." in system["content"]
    assert "\n- exact: " not in system["content"]
    assert user["content"].endswith(
        "Suggestions to carry out, one new version of the task each:\n"
        "1. [Flip the answer; edits the passage; the answer must change] Suggestion 1 for the "
        "task at hand.\n"
        "2. [Make it more complex; changes the task] Suggestion 2 for the task at hand.\n\n"
        "Reply with the JSON object only, with exactly 2 edits."
    )


# -- the suggester ------------------------------------------------------------------------
def suggest_input(*goal_ids: str) -> SuggestInput:
    goals = [
        GOALS[g].model_copy(
            update={
                "description": f"Leave the passage as it is and make the {g} version more demanding for readers."
            }
        )
        for g in goal_ids
    ]
    return SuggestInput(skill=SKILL, category=CATEGORY, task=task_view(), goals=goals)


@pytest.mark.parametrize(
    ("suggestions", "reason"),
    [
        (
            ["Replace the distractor 'Traffic rose.' with 'Traffic fell by a quarter.'"],
            "1 suggestions for 2 goals: write exactly one per goal, in order",
        ),
        (
            ["Make it harder.", "Replace the distractor 'Traffic rose.' with a near miss."],
            "suggestion 1 is too short to act on: say what to change",
        ),
        (
            [
                "Leave the passage as it is and make the complexify version more demanding.",
                "Replace the distractor 'Traffic rose.' with a near miss.",
            ],
            "suggestion 1 repeats the goal's description: say what to change in this task",
        ),
    ],
)
def test_suggester_checks(suggestions: list[str], reason: str) -> None:
    suggester = Suggester("suggester", prompts=PromptLibrary())
    with pytest.raises(ParseError) as exc:
        suggester.parse(
            json.dumps({"suggestions": suggestions}), suggest_input("complexify", "answer_flip")
        )
    assert exc.value.reason == reason


def test_suggester_decoding_schema_asks_for_one_suggestion_per_goal() -> None:
    suggester = Suggester("suggester", prompts=PromptLibrary())
    for goals in (("complexify",), ("complexify", "answer_flip")):
        prop = suggester.response_model(suggest_input(*goals)).model_json_schema()["properties"]
        assert prop["suggestions"]["minItems"] == prop["suggestions"]["maxItems"] == len(goals)


def test_suggester_decoding_refuses_a_stray_brace_or_a_stub() -> None:
    pytest.importorskip("llguidance")
    from constrained import decoder

    suggester = Suggester("suggester", prompts=PromptLibrary())
    schema = suggester.response_model(suggest_input("complexify")).model_json_schema()
    accepts = decoder(schema=schema)
    assert accepts('{"suggestions": ["Add a distractor that names the toll of four pounds."]}')
    assert not accepts('{"suggestions": ["{"]}')  # what the 1.5B model wrote
    assert not accepts('{"suggestions": ["Add one."]}')


def test_suggester_accepts_one_concrete_suggestion_per_goal() -> None:
    suggester = Suggester("suggester", prompts=PromptLibrary())
    good = [
        "Replace the distractor 'Traffic rose.' with 'Traffic fell by a quarter.'",
        "Change 'fell by a third' to 'rose by a third' so that 'Traffic rose.' is right.",
    ]
    out = suggester.parse(
        json.dumps({"suggestions": good}), suggest_input("complexify", "answer_flip")
    )
    assert out.suggestions == good
    system = suggester.render(suggest_input("complexify", "answer_flip"))[0]["content"]
    assert (
        "The goals, one suggestion each, in this order:\n"
        "1. Make it more complex (changes the task, not the passage): Leave the passage as it "
        "is and make the complexify version more demanding for readers.\n"
        "2. Flip the answer (edits the passage): "
    ) in system


# -- the tool-use editor ------------------------------------------------------------------
TOOL_APIS = ApiList(
    library="harbour",
    apis=[
        ApiSpec(name="find_port", description="Find a port by name."),
        ApiSpec(name="book_berth", description="Book a berth at a port."),
        ApiSpec(name="get_forecast", description="The weather forecast at a port."),
    ],
).withholding(["get_forecast"])
TOOL_KEY = ToolOutcomeKey(outcome="final_answer", required_apis=["book_berth"])
MORE_STEPS = GoalView(id="more_steps", name="Need more steps", edits="task", key="any")


def tool_input() -> EditInput:
    return EditInput(
        skill=SkillView(id="tool_use", name="Tool Use"),
        category=CategoryView(id="single_api_all_params", name="One API"),
        task=task_view(TOOL_APIS, TOOL_KEY, "Book me a berth at Porto Santo on 3 June 2025."),
        goals=[MORE_STEPS],
        suggestions=["Name the port instead of its id, so find_port comes first."],
        kinds=["tool_outcome"],
        material=TOOL_APIS,
        key=TOOL_KEY,
    )


def tool_edit(**changes: Any) -> str:
    edit = {
        "suggestion": 1,
        "edits": None,
        "instruction": "Book me a berth at the port called Porto Santo on 3 June 2025.",
        "key": {
            "kind": "tool_outcome",
            "outcome": "final_answer",
            "required_apis": ["find_port", "book_berth"],
            "reference": "find_port -> book_berth -> FINAL_ANSWER",
        },
        "missing": None,
        **changes,
    }
    return json.dumps({"edits": [edit]})


def test_tool_editor_recomputes_the_withheld_apis() -> None:
    editor = ToolEditor("editor", prompts=PromptLibrary())
    (rev,) = editor.parse(tool_edit(withheld_apis=[]), tool_input()).revisions
    assert isinstance(rev.material, ApiList) and rev.material.withheld == []
    assert rev.key.required_apis == ["find_port", "book_berth"]  # type: ignore[attr-defined]
    # not given: the parent's withheld APIs stay withheld
    (rev,) = editor.parse(tool_edit(), tool_input()).revisions
    assert rev.material.withheld == ["get_forecast"]
    # a failing version may withhold another API than its parent
    failing = {"kind": "tool_outcome", "outcome": "failed", "required_apis": ["book_berth"]}
    failing_input = tool_input()
    failing_input.key = failing_input.key.model_copy(update={"outcome": "failed"})
    (rev,) = editor.parse(
        tool_edit(key=failing, withheld_apis=["book_berth"]), failing_input
    ).revisions
    assert rev.material.withheld == ["book_berth"]
    assert [a.name for a in rev.material.shown] == ["find_port", "get_forecast"]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"key": None},
            "edit 1 (more_steps): give the new key: the outcome and required_apis of the new request",
        ),
        (
            {"key": {"kind": "tool_outcome", "outcome": "failed", "required_apis": []}},
            "edit 1 (more_steps): keep the original's expected outcome (final_answer): the "
            "refinement must not change how a correct conversation ends",
        ),
        (
            {
                "key": {
                    "kind": "tool_outcome",
                    "outcome": "final_answer",
                    "required_apis": ["find_port", "pay"],
                }
            },
            "edit 1 (more_steps): required_apis ['pay'] are not in the API list (find_port, "
            "book_berth, get_forecast)",
        ),
        (
            {"withheld_apis": ["teleport"]},
            "edit 1 (more_steps): withheld_apis ['teleport'] are not in the API list (find_port, "
            "book_berth, get_forecast)",
        ),
        (
            {"withheld_apis": ["find_port"]},
            "edit 1 (more_steps): ['find_port'] are required but withheld, so the task cannot "
            "end with FINAL_ANSWER: withhold nothing it needs, or make it end with FAILED",
        ),
        (
            {"edits": [{"find": "find_port", "replace": "seek_port"}]},
            "edit 1 (more_steps): this goal changes the task, not the passage: set edits to null",
        ),
    ],
)
def test_tool_editor_checks(changes: dict[str, Any], reason: str) -> None:
    editor = ToolEditor("editor", prompts=PromptLibrary())
    with pytest.raises(ParseError) as exc:
        editor.parse(tool_edit(**changes), tool_input())
    assert exc.value.reason == reason


# -- goals drawn in code ------------------------------------------------------------------
@pytest.fixture(scope="module")
def rc() -> Skill:
    return load_taxonomy().skills["rc"]


def refinement(skill: Skill, suggestions: int) -> RefinementFlow:
    settings = RefinementFlow.Settings(suggestions=suggestions)
    return RefinementFlow.from_config(skill, settings, FlowBuild(prompts=PromptLibrary()))


def make_task(sub_category: str, material: Any = PASSAGE, key: Any = CHOICE) -> Task:
    view = StudentView(
        system=None, framing="f.j2", delimiter=None, layout=Layout(order=[0, 1, 2, 3])
    )
    return Task(
        sub_category=sub_category, material=material, instruction=INSTRUCTION, key=key, view=view
    )


def test_goals_follow_the_task_type_and_the_material(rc: Skill) -> None:
    flow = refinement(rc, 3)
    ids = lambda task: [g.id for g in flow.goals_for(task)]  # noqa: E731
    assert ids(make_task("inference")) == ["unanswerable", "answer_flip", "complexify"]
    assert ids(make_task("strengthen")) == ["answer_flip", "complexify"]  # its goals: list
    assert ids(make_task("evaluative_comprehension")) == ["complexify"]
    # a material that cannot be edited gets no passage-editing goal
    assert ids(make_task("inference", material=TOOL_APIS)) == ["complexify"]


def test_goals_are_drawn_by_weight(rc: Skill) -> None:
    flow = refinement(rc, 1)
    weights = {g.id: g.weight for g in rc.refinement_goals}
    assert weights == {"unanswerable": 1.0, "answer_flip": 1.0, "complexify": 2.0}
    rng = random.Random(11)
    task = make_task("inference")
    n = 4000
    counts = Counter(flow.draw_goals(task, rng)[0].id for _ in range(n))
    total = sum(weights.values())
    for goal, weight in weights.items():
        assert abs(counts[goal] / n - weight / total) < 0.03, (goal, counts)
    # only the allowed goals, by their weights
    counts = Counter(flow.draw_goals(make_task("strengthen"), rng)[0].id for _ in range(n))
    assert set(counts) == {"answer_flip", "complexify"}
    assert abs(counts["complexify"] / n - 2 / 3) < 0.03


def test_goals_are_distinct_while_they_last(rc: Skill) -> None:
    rng = random.Random(2)
    for _ in range(50):
        drawn = [g.id for g in refinement(rc, 3).draw_goals(make_task("inference"), rng)]
        assert sorted(drawn) == ["answer_flip", "complexify", "unanswerable"]
        five = [g.id for g in refinement(rc, 5).draw_goals(make_task("strengthen"), rng)]
        assert len(five) == 5 and set(five[:2]) == {"answer_flip", "complexify"}


async def test_a_passage_goal_without_an_edit_is_a_reject_never_a_silent_keep(rc: Skill) -> None:
    flow = refinement(rc, 1)
    task = make_task("strengthen")
    for n in range(40):  # a task whose own stream draws answer_flip
        task.instruction = f"{INSTRUCTION} ({n})"
        if flow.draw_goals(task, task.stream(0, "refine1"))[0].id == "answer_flip":
            break
    else:  # pragma: no cover
        raise AssertionError("no task draws answer_flip")
    suggestion = "Change 'fell by a third' to 'rose by a third' in the passage."
    no_edit = edits({"instruction": task.instruction, "key": FLIPPED})
    model = ScriptedModel(
        {
            "You are the suggester": [json.dumps({"suggestions": [suggestion]})],
            "You are the editor": [no_edit] * 3,
        }
    )
    item = WorkItem(seed=Seed.from_text("x"), skill=rc, rng=random.Random(0))
    item.tasks.append(task)
    await flow(item, RunContext(client=model, prompts=PromptLibrary(), teacher="scripted"))
    assert item.tasks == [task], "no refined task"
    (reject,) = item.rejects
    assert (reject.stage, reject.agent) == ("refinement", "editor")
    assert reject.reason == (
        "malformed answer after 3 attempts: edit 1 (answer_flip): this goal edits the passage: "
        "give the find/replace edits that make the change (the instruction stays as it is)"
    )
    assert model.remaining() == 0


def test_editor_decoding_schema_asks_for_one_edit_per_goal_with_its_fields(
    editor: Editor,
) -> None:
    """Constrained decoding cannot answer a suggestion that does not exist or skip one, nor
    give passage edits for a goal that changes the task (or none for one that edits the
    passage), nor leave out the new key of a goal whose answer must change."""
    from constrained import decoder
    from genteach.models.local import decoding_schema

    agent = editor
    inputs = edit_input("complexify", "answer_flip")
    model = agent.response_model(inputs)
    assert model is agent.response_model(inputs)  # made once per goals
    schema = model.model_json_schema()
    assert (
        schema["properties"]["edits"]["minItems"] == schema["properties"]["edits"]["maxItems"] == 2
    )
    accepts = decoder(schema=decoding_schema(schema))
    blank = {"edits": None, "instruction": None, "key": None, "missing": None}
    task = {**blank, "instruction": "Which one is right now?"}
    spans = [{"find": "Traffic fell by a third.", "replace": "Traffic doubled."}]
    flip = {**blank, "edits": spans, "key": {"kind": "exact", "value": "doubled"}}
    assert accepts(json.dumps({"edits": [{"suggestion": 1, **task}, {"suggestion": 2, **flip}]}))
    assert accepts(json.dumps({"edits": [{"suggestion": 2, **flip}, {"suggestion": 1, **task}]}))
    for wrong in (
        [{"suggestion": 3, **task}, {"suggestion": 1, **task}],  # no suggestion 3
        [{"suggestion": 1, **task}],  # one edit for two suggestions
        [{"suggestion": 1, **task, "edits": spans}, {"suggestion": 2, **flip}],  # spans, task
        [{"suggestion": 1, **task}, {"suggestion": 2, **flip, "edits": None}],  # no spans
        [{"suggestion": 1, **task}, {"suggestion": 2, **flip, "key": None}],  # no new key
    ):
        assert not accepts(json.dumps({"edits": wrong})), wrong
    unanswerable = agent.response_model(edit_input("unanswerable"))
    accepts = decoder(schema=decoding_schema(unanswerable.model_json_schema()))
    gone = {**blank, "edits": spans, "missing": "by how much traffic changed"}
    assert accepts(json.dumps({"edits": [{"suggestion": 1, **gone}]}))
    assert not accepts(json.dumps({"edits": [{"suggestion": 1, **gone, "missing": None}]}))


def test_an_edited_task_is_held_only_to_the_constraints_its_instruction_states() -> None:
    editor = Editor("editor", prompts=PromptLibrary(), key_kinds=[ConstraintsKey])
    old = ConstraintsKey(keep=["four pounds"], max_words=40)
    inputs = edit_input("complexify", kinds=("constraints",), key=old)
    tighter = {"kind": "constraints", "keep": ["four pounds"], "max_words": 25}
    unstated = edits({"instruction": "Rewrite the passage for a child.", "key": tighter})
    (rev,) = editor.parse(unstated, inputs).revisions
    assert isinstance(rev.key, ConstraintsKey) and rev.key.max_words is None  # never stated
    invented = {"kind": "constraints", "keep": ["five pounds"]}
    text = edits({"instruction": "Rewrite it for a child.", "key": invented})
    with pytest.raises(ParseError, match="edit 1 \\(complexify\\): the constraints key checks"):
        editor.parse(text, inputs)
    text = edits({"instruction": "Rewrite it for a child in at most 25 words.", "key": tighter})
    (rev,) = editor.parse(text, inputs).revisions
    assert isinstance(rev.key, ConstraintsKey) and rev.key.source == PASSAGE.text
    assert rev.key.max_words == 25


def test_a_closed_book_edit_may_not_lean_on_the_passage() -> None:
    from genteach.agents import ClosedBookEditor

    editor = ClosedBookEditor("editor", prompts=PromptLibrary(), key_kinds=[ChoiceKey])
    leaning = edits({"instruction": "Which figure does the passage report for traffic?"})
    with pytest.raises(ParseError, match=r'edit 1 \(complexify\): the instruction refers to "the'):
        editor.parse(leaning, edit_input("complexify"))
    standing = edits({"instruction": "Which change in traffic did the tunnel bring?"})
    (rev,) = editor.parse(standing, edit_input("complexify")).revisions
    assert rev.instruction == "Which change in traffic did the tunnel bring?"
