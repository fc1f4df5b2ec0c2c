"""The tool-use action format and its parser, and the tool-use agents' checks."""

from __future__ import annotations

import pytest

from genteach.agents import ApiList, ApiSpec, ParseError, parse_action
from genteach.agents.tool_use import ApiParam, ToolTaskAgent, ToolTaskInput
from genteach.agents.views import CategoryView, SkillView
from genteach.prompts import PromptLibrary

APIS = [
    ApiSpec(
        name="create_meal_plan",
        description="Create a meal plan for a week.",
        parameters=[
            ApiParam(name="dietary_preferences", type="array", required=True),
            ApiParam(name="caloric_goal", type="integer", required=True),
            ApiParam(name="num_meals", type="integer", required=False),
        ],
    ),
    ApiSpec(
        name="foods.search",
        description="Search the food database.",
        parameters=[ApiParam(name="query")],
    ),
]


def test_api_call_with_reasoning_before_it() -> None:
    text = (
        "Let me create the plan first.\n\n"
        "ACTION_TYPE : API_CALL\n"
        'ACTION: create_meal_plan(dietary_preferences=["vegetarian"], caloric_goal=1500, num_meals=3)'
    )
    action = parse_action(text, APIS)
    assert action.kind == "api_call"
    assert action.name == "create_meal_plan"
    assert action.arguments == {
        "dietary_preferences": ["vegetarian"],
        "caloric_goal": 1500,
        "num_meals": 3,
    }
    assert action.text == text


def test_same_line_format_and_json_literals() -> None:
    action = parse_action('ACTION_TYPE : API_CALL ACTION: foods.search(query="tofu")', APIS)
    assert action.name == "foods.search" and action.arguments == {"query": "tofu"}
    a2 = parse_action(
        "ACTION_TYPE : API_CALL\nACTION: create_meal_plan(dietary_preferences=[], caloric_goal=-1, "
        "num_meals=null)"
    )
    assert a2.arguments == {"dietary_preferences": [], "caloric_goal": -1, "num_meals": None}


@pytest.mark.parametrize(
    ("call", "kind", "value"),
    [
        ('FINAL_ANSWER("Your plan is ready.")', "final_answer", "Your plan is ready."),
        ("FINAL_ANSWER(Your plan is ready.)", "final_answer", "Your plan is ready."),
        ('FAILED("caloric_goal is missing")', "failed", "caloric_goal is missing"),
    ],
)
def test_stop_actions(call: str, kind: str, value: str) -> None:
    action = parse_action(f"Done.\nACTION_TYPE : STOP\nACTION: {call}", APIS)
    assert (action.kind, action.value) == (kind, value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("I will call the API now.", "no 'ACTION_TYPE"),
        ("ACTION_TYPE : API_CALL", "must be followed by an 'ACTION"),
        ("ACTION_TYPE : JUMP\nACTION: x()", "unknown ACTION_TYPE 'JUMP'"),
        ("ACTION_TYPE : STOP\nACTION: DONE(1)", "FINAL_ANSWER"),
        ("ACTION_TYPE : STOP\nACTION: FAILED()", "needs a value"),
        ("ACTION_TYPE : API_CALL\nACTION: create_meal_plan(", "not of the form"),
        ('ACTION_TYPE : API_CALL\nACTION: create_meal_plan(["vegan"], 1500)', "by name"),
        ("ACTION_TYPE : API_CALL\nACTION: delete_everything()", "not in the API list"),
        (
            'ACTION_TYPE : API_CALL\nACTION: foods.search(query="a", limit=3)',
            "has no parameter limit",
        ),
        (
            "ACTION_TYPE : API_CALL\nACTION: create_meal_plan(dietary_preferences=[])",
            "missing required parameter caloric_goal",
        ),
        ("ACTION_TYPE : API_CALL\nACTION: foods.search(query=os.system)", "not a literal"),
        (
            'ACTION_TYPE : API_CALL\nACTION: foods.search(query="a")\nACTION_TYPE : API_CALL\nACTION: foods.search(query="b")',
            "more than one action",
        ),
        ("ACTION_TYPE : API_CALL\nACTION: 42", "not of the form"),
    ],
)
def test_malformed_actions_are_caught(text: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_action(text, APIS)


def test_api_list_dedupes_repeats_and_rejects_bad_names() -> None:
    kept = ApiList(
        library="L",
        apis=[
            ApiSpec(name="a", description="first a"),
            ApiSpec(name="b", description="does b"),
            ApiSpec(name="a", description="second a"),
        ],
    )
    assert [(x.name, x.description) for x in kept.apis] == [("a", "first a"), ("b", "does b")]
    with pytest.raises(ValueError, match="at least 2 distinct APIs, it has 1"):
        ApiList(
            library="L",
            apis=[ApiSpec(name="a", description="does a"), ApiSpec(name="a", description="does a")],
        )
    with pytest.raises(ValueError, match="not a dotted identifier"):
        ApiSpec(name="Create Meal Plan", description="spaces are not callable")


def test_tool_task_parser_checks_withheld_and_required() -> None:
    agent = ToolTaskAgent("instruct/x", prompts=PromptLibrary())
    inputs = ToolTaskInput(
        skill=SkillView(id="tool_use", name="Tool Use"),
        category=CategoryView(id="x", name="X"),
        library="L",
        apis=APIS,
        count=1,
    )
    ok = '{"tasks": [{"request": "Plan my vegetarian week at 1500 kcal.", "required_apis": ["create_meal_plan"], "withheld_apis": [], "expected_outcome": "final_answer", "answer": "a plan"}]}'
    assert agent.parse(ok, inputs).tasks[0].required_apis == ["create_meal_plan"]
    bad = ok.replace('"withheld_apis": []', '"withheld_apis": ["teleport"]')
    with pytest.raises(ParseError, match=r"withheld_apis \['teleport'\] are not in the API list"):
        agent.parse(bad, inputs)
    no_req = ok.replace('["create_meal_plan"]', "[]")
    with pytest.raises(ParseError, match="needs required_apis"):
        agent.parse(no_req, inputs)


def test_blank_api_names_in_task_lists_are_dropped() -> None:
    agent = ToolTaskAgent("instruct/x", prompts=PromptLibrary())
    text = '{"tasks": [{"request": "Find tofu recipes for me please.", "required_apis": ["foods.search", " "], "withheld_apis": [""], "expected_outcome": "final_answer"}]}'
    task = agent.parse(text).tasks[0]
    assert task.required_apis == ["foods.search"] and task.withheld_apis == []
