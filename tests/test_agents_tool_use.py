"""The tool-use action format, its parser and its grammar, and the tool-use agents' checks:
API lists (names, bounds on their size), tasks (required and withheld APIs exist in the
list), and the simulated API. How the acting teacher's turns are checked within a
conversation (last step, repeated calls) is tested with the conversation runtime."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from constrained import decoder
from genteach.agents import (
    ApiList,
    ApiSpec,
    EditInput,
    InstructInput,
    ParseError,
    TaskView,
    TransformInput,
    json_shape,
    parse_action,
)
from genteach.agents.tool_use import (
    FORMAT_EXAMPLES,
    ApiListBuilder,
    ApiParam,
    ToolEditor,
    ToolTaskAgent,
    ToolTaskDraft,
    action_grammar,
    copies_format_example,
)
from genteach.agents.views import CategoryView, GoalView, SeedView, SkillView
from genteach.keys import ToolOutcomeKey
from genteach.models import ScriptedModel
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


TOOL_SKILL = SkillView(id="tool_use", name="Tool Use")


def task_inputs(count: int = 1) -> InstructInput:
    apis = ApiList(library="L", apis=APIS)
    return InstructInput(
        skill=TOOL_SKILL,
        category=CategoryView(id="x", name="X", guidance="tool_use/task_types/api_not_in_list.j2"),
        material=apis,
        material_text=apis.render(PromptLibrary(), "agent"),
        count=count,
    )


def tool_task(**changes: object) -> str:
    task = {
        "instruction": "Plan my vegetarian week at 1500 kcal.",
        "key": {
            "kind": "tool_outcome",
            "outcome": "final_answer",
            "required_apis": ["create_meal_plan"],
            "reference": "create_meal_plan(...) -> FINAL_ANSWER",
        },
        "withheld_apis": [],
        **changes,
    }
    return json.dumps({"tasks": [task]})


def test_a_request_that_copies_its_line_of_values_is_sent_back() -> None:
    """Seen on the embedded model: the request was the slot line itself ("An IT
    administrator ...; tone of the request: polite and formal; ...")."""
    agent = ToolTaskAgent("instruct/x", prompts=PromptLibrary())
    inputs = task_inputs().model_copy(
        update={
            "slots": [{"user_context": "An IT administrator", "request_tone": "polite"}],
            "slot_labels": {
                "user_context": "who the user is",
                "request_tone": "tone of the request",
            },
        }
    )
    copied = tool_task(instruction="An IT administrator; tone of the request: polite and formal")
    with pytest.raises(ParseError, match=r"task 1: the instruction copies the line of values"):
        agent.parse(copied, inputs)
    assert agent.parse(tool_task(), inputs).tasks  # type: ignore[attr-defined]


def test_tool_task_parser_reads_the_key_and_the_withheld_apis() -> None:
    agent = ToolTaskAgent("instruct/x", prompts=PromptLibrary())
    (task,) = agent.parse(tool_task(), task_inputs()).tasks  # type: ignore[attr-defined]
    assert isinstance(task, ToolTaskDraft)
    assert task.key == ToolOutcomeKey(
        outcome="final_answer",
        required_apis=["create_meal_plan"],
        reference="create_meal_plan(...) -> FINAL_ANSWER",
    )
    failing = tool_task(
        key={"kind": "tool_outcome", "outcome": "failed", "required_apis": ["foods.search"]},
        withheld_apis=["foods.search"],
    )
    (task,) = agent.parse(failing, task_inputs()).tasks  # type: ignore[attr-defined]
    # the task's own material withholds the API from the assistant
    material = task.material(ApiList(library="L", apis=APIS))
    assert isinstance(material, ApiList)
    assert material.withheld == ["foods.search"]
    assert [a.name for a in material.shown] == ["create_meal_plan"]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"withheld_apis": ["teleport"]},
            "task 1: withheld_apis ['teleport'] are not in the API list (create_meal_plan, "
            "foods.search)",
        ),
        (
            {"key": {"kind": "tool_outcome", "outcome": "final_answer", "required_apis": ["fly"]}},
            "task 1: required_apis ['fly'] are not in the API list (create_meal_plan, foods.search)",
        ),
        (
            {"key": {"kind": "tool_outcome", "outcome": "final_answer", "required_apis": [" "]}},
            "task 1: a task that ends with FINAL_ANSWER needs required_apis",
        ),
        (
            {"withheld_apis": ["create_meal_plan"]},
            "task 1: ['create_meal_plan'] are required but withheld, so the task cannot end with "
            "FINAL_ANSWER: withhold nothing it needs, or make it end with FAILED",
        ),
        (
            {"key": {"kind": "exact", "value": "a plan"}},
            "field tasks.0.key.kind: Input should be 'tool_outcome' (+2 more)",
        ),
        (
            {"expected_outcome": "final_answer"},
            "field tasks.0.expected_outcome: Extra inputs are not permitted",
        ),
    ],
)
def test_tool_task_parser_checks_the_key_against_the_list(
    changes: dict[str, object], reason: str
) -> None:
    agent = ToolTaskAgent("instruct/x", prompts=PromptLibrary())
    with pytest.raises(ParseError) as exc:
        agent.parse(tool_task(**changes), task_inputs())
    assert exc.value.reason == reason


def test_blank_api_names_in_task_lists_are_dropped() -> None:
    agent = ToolTaskAgent("instruct/x", prompts=PromptLibrary())
    text = tool_task(
        key={
            "kind": "tool_outcome",
            "outcome": "final_answer",
            "required_apis": ["foods.search", " "],
        },
        withheld_apis=[""],
    )
    (task,) = agent.parse(text, task_inputs()).tasks  # type: ignore[attr-defined]
    assert task.key.required_apis == ["foods.search"] and task.withheld_apis == []


def test_tool_task_prompt_shows_the_list_and_the_key_shape() -> None:
    agent = ToolTaskAgent("instruct/x", prompts=PromptLibrary())
    system, user = agent.render(task_inputs())
    assert user["content"] == (
        "<<<API_LIST\nLibrary: L\n\n"
        "1. create_meal_plan: Create a meal plan for a week.\n  Parameters:\n"
        "  - dietary_preferences (array, required)\n  - caloric_goal (integer, required)\n"
        "  - num_meals (integer, optional)\n  Returns: not documented\n\n"
        "2. foods.search: Search the food database.\n  Parameters:\n"
        "  - query (string, required)\n  Returns: not documented\n"
        'API_LIST>>>\n\nWrite 1 task of the family "X" for this API list.\n'
        "Reply with the JSON object only."
    )
    assert "Shape: " + json_shape(ToolOutcomeKey, skip=frozenset({"shown"})) in system["content"]
    assert system["content"].endswith(agent.output_shape())
    assert agent.key_kinds == [ToolOutcomeKey]


@pytest.mark.parametrize(
    ("count", "reason"),
    [
        (2, "the list has 2 distinct APIs; write between 3 and 4"),
        (3, None),
        (4, None),
        (5, "the list has 5 distinct APIs; write between 3 and 4"),
    ],
)
def test_api_list_builder_enforces_the_api_count(count: int, reason: str | None) -> None:
    builder = ApiListBuilder("transform/api_from_source", prompts=PromptLibrary())
    inputs = TransformInput(
        skill=TOOL_SKILL,
        category=CategoryView(id="api_from_source", name="API Description Agent"),
        seed=SeedView(id="s", text="def f(): pass", kind="code"),
        min_items=3,
        max_items=4,
    )
    text = json.dumps(
        {
            "library": "L",
            "apis": [{"name": f"api_{i}", "description": "Does it."} for i in range(count)],
        }
    )
    if reason is None:
        assert len(builder.parse(text, inputs).apis) == count
    else:
        with pytest.raises(ParseError) as exc:
            builder.parse(text, inputs)
        assert exc.value.reason == reason
    # repeats are dropped before counting: five names, two distinct
    repeats = json.dumps(
        {
            "library": "L",
            "apis": [{"name": f"api_{i % 2}", "description": "Does it."} for i in range(5)],
        }
    )
    with pytest.raises(ParseError, match="the list has 2 distinct APIs"):
        builder.parse(repeats, inputs)
    # the API list is the skill's material
    assert builder.parse(text.replace("api_4", "api_0"), None).material().kind == "api_list"


# -- the ACTION grammar (constrained decoding on the embedded model) -----------------------
GRAMMAR_APIS = [
    ApiSpec(
        name="get_weather",
        description="Weather for a city.",
        parameters=[
            ApiParam(name="city"),
            ApiParam(name="days", type="integer", required=False),
            ApiParam(name="units", required=False),
        ],
    ),
    ApiSpec(name="list_cities", description="Every city known.", parameters=[]),
    ApiSpec(
        name="search",
        description="Search with optional filters.",
        parameters=[ApiParam(name="tags", type="array", required=False)],
    ),
]


@pytest.fixture(scope="module")
def grammar_matcher() -> Callable[[str], bool]:
    pytest.importorskip("llguidance")
    return decoder(lark=action_grammar(GRAMMAR_APIS))


@pytest.mark.parametrize(
    "text",
    [
        'Paris first.\nACTION_TYPE : API_CALL\nACTION: get_weather(city="Paris", days=3)',
        'Both.\nACTION_TYPE : API_CALL\nACTION: get_weather(city="Rome", days=1, units="metric")',
        "List them.\nACTION_TYPE : API_CALL\nACTION: list_cities()",
        "No filter.\nACTION_TYPE : API_CALL\nACTION: search()",
        'Tags.\nACTION_TYPE : API_CALL\nACTION: search(tags=["a", 1, {"k": null}])',
        'Done.\nACTION_TYPE : STOP\nACTION: FINAL_ANSWER("It is \\"sunny\\".\\nBye")',
        'No city.\nACTION_TYPE : STOP\nACTION: FAILED("missing city for get_weather")',
    ],
)
def test_action_grammar_accepts_what_the_parser_accepts(
    grammar_matcher: Callable[[str], bool], text: str
) -> None:
    assert grammar_matcher(text)
    parse_action(text, GRAMMAR_APIS)


@pytest.mark.parametrize(
    "text",
    [
        "I will ACTION_TYPE now\nACTION_TYPE : API_CALL\nACTION: list_cities()",  # two actions
        "x\nACTION_TYPE : API_CALL\nACTION: get_weather(days=3)",  # required param missing
        'x\nACTION_TYPE : API_CALL\nACTION: get_weather(city="a", foo=1)',  # unknown param
        'x\nACTION_TYPE : API_CALL\nACTION: get_weather("Paris")',  # positional
        'x\nACTION_TYPE : API_CALL\nACTION: get_weather(city="a", days="3")',  # wrong type
        'x\nACTION_TYPE : API_CALL\nACTION: get_weather(city="a", days=1, days=2)',  # twice
        'x\nACTION_TYPE : API_CALL\nACTION: get_weather(city="a", units="m", days=1)',  # order
        'x\nACTION_TYPE : API_CALL\nACTION: get_weather(city="' + "a" * 400 + '")',  # too long
        'x\nACTION_TYPE : API_CALL\nACTION: book_flight(to="a")',  # not in the list
        "x\nACTION_TYPE : STOP\nACTION: FINAL_ANSWER(42)",  # not a string
        'ACTION_TYPE : STOP\nACTION: FINAL_ANSWER("no reasoning line")',
        'x\nACTION_TYPE : STOP\nACTION: FAILED("a")\nmore text after the action',
        "word " * 200 + "\nACTION_TYPE : API_CALL\nACTION: list_cities()",  # thought too long
        'x\nACTION_TYPE : STOP\nACTION: FINAL_ANSWER("' + "word " * 400 + '")',  # answer too
    ],
)
def test_action_grammar_rejects_malformed_turns(
    grammar_matcher: Callable[[str], bool], text: str
) -> None:
    assert not grammar_matcher(text)


def test_action_grammar_without_apis_only_allows_stop() -> None:
    grammar = action_grammar([])
    assert "API_CALL" not in grammar and "FINAL_ANSWER" in grammar


async def test_json_agents_send_their_schema_and_no_grammar() -> None:
    agent = ToolTaskAgent("tasks", prompts=PromptLibrary())
    assert agent.output_grammar(task_inputs()) is None
    client = ScriptedModel([tool_task()])
    await agent.run(client, task_inputs())
    assert client.grammars == [None] and client.schemas == [agent.response_model(task_inputs())]


def test_the_action_grammar_lists_each_api_and_its_parameters() -> None:
    head = action_grammar(GRAMMAR_APIS).split("\n\n")[0]
    assert head.splitlines() == [
        'start: thought "\\n" action',
        'action: "ACTION_TYPE : API_CALL\\nACTION: " call | "ACTION_TYPE : STOP\\nACTION: " stop',
        'stop: "FINAL_ANSWER(" ANSWER ")" | "FAILED(" ANSWER ")"',
        "thought[max_tokens=120]: THOUGHT",
        "call: api0 | api1 | api2",
        'a0_city: "city=" STRING',
        'a0_days: "days=" INT',
        'a0_units: "units=" STRING',
        'api0: "get_weather(" a0_city (", " a0_days)? (", " a0_units)? ")"',
        'api1: "list_cities("  ")"',
        'a2_tags: "tags=" list',
        'api2: "search(" (a2_tags)? ")"',
    ]


def test_stop_messages_copied_from_the_format_examples_are_recognised() -> None:
    assert copies_format_example(FORMAT_EXAMPLES["final_answer"]) == "final_answer"
    assert (
        copies_format_example(
            "missing value for city of get_weather: please tell me where to send the invoice"
        )
        == "failed"
    )
    # the same form, written for this request, is fine
    assert copies_format_example("missing value for city of get_weather: which city?") is None
    assert copies_format_example("please tell me which city you mean") is None


async def test_a_simulated_result_that_copies_the_shape_placeholder_is_sent_back() -> None:
    from genteach.agents.tool_use import ApiCallInput, SimulatedApi

    sim = SimulatedApi("api_simulator", prompts=PromptLibrary())
    call = ApiCallInput(
        library="weather",
        api=GRAMMAR_APIS[0].model_copy(update={"returns": "temp_c and sky"}),
        arguments={"city": "Paris"},
        request="Weather in Paris?",
    )
    user = sim.render(call)[1]["content"]
    assert user.endswith(
        "Return the response of get_weather: temp_c and sky, with realistic values for this "
        "call. Reply with the JSON object only."
    )
    lazy = '{"status": "error", "error": "<a short, specific error message>"}'
    real = '{"status": "ok", "result": {"temp_c": 18, "sky": "clear"}}'
    model = ScriptedModel([lazy, real])
    result = await sim.run(model, call)
    assert result.attempts == 2 and result.output.result == {"temp_c": 18, "sky": "clear"}
    assert "a placeholder of the format" in model.calls[1][-1]["content"]


def test_library_names_and_descriptions_must_start_with_a_word() -> None:
    from pydantic import ValidationError

    apis = [
        {"name": "a", "description": "Does a.", "parameters": []},
        {"name": "b", "description": "Does b.", "parameters": []},
    ]
    assert ApiList.model_validate({"library": "time_booking", "apis": apis}).library
    with pytest.raises(ValidationError, match="library"):
        ApiList.model_validate({"library": ",", "apis": apis})
    bad = [{**apis[0], "description": ",get apprentices"}, apis[1]]
    with pytest.raises(ValidationError, match="description"):
        ApiList.model_validate({"library": "guild", "apis": bad})
    schema = ApiList.model_json_schema()
    assert "pattern" in schema["properties"]["library"]  # enforced by constrained decoding


def test_decoding_names_only_the_apis_of_the_list() -> None:
    """Seen on the 1.5B model: withheld_apis ['OurInventoryService'] (the library's name)."""
    pytest.importorskip("llguidance")
    from constrained import decoder

    agent = ToolTaskAgent("instruct/x", prompts=PromptLibrary())
    schema = agent.response_model(task_inputs()).model_json_schema()
    accepts = decoder(schema=schema)
    assert accepts(tool_task())
    assert not accepts(tool_task(withheld_apis=["L"]))
    wrong_key = json.loads(tool_task())
    wrong_key["tasks"][0]["key"]["required_apis"] = ["plan_meals"]
    assert not accepts(json.dumps(wrong_key))
    # the parser keeps its own model (and messages) for what the schema cannot say
    assert agent.parse(tool_task(), task_inputs()).tasks[0].key.required_apis == [  # type: ignore[attr-defined]
        "create_meal_plan"
    ]


def test_the_tool_editor_decodes_only_the_apis_of_the_list() -> None:
    pytest.importorskip("llguidance")
    from constrained import decoder

    editor = ToolEditor("editor", prompts=PromptLibrary())
    apis = ApiList(library="L", apis=APIS)
    key = ToolOutcomeKey(outcome="final_answer", required_apis=["create_meal_plan"])
    inputs = EditInput(
        skill=TOOL_SKILL,
        category=CategoryView(id="x", name="X"),
        task=TaskView(material_text="apis", instruction="Plan my week.", key=key.model_dump()),
        goals=[GoalView(id="more_steps", name="More steps", edits="task", key="any")],
        suggestions=["Ask for a shopping list as well as the plan."],
        kinds=["tool_outcome"],
        material=apis,
        key=key,
    )
    accepts = decoder(schema=editor.response_model(inputs).model_json_schema())
    edit = {
        "suggestion": 1,
        "edits": None,
        "instruction": "Plan my week and list what to buy.",
        "key": {**key.model_dump(), "reference": ""},
        "missing": None,
        "withheld_apis": [],
    }
    assert accepts(json.dumps({"edits": [edit]}))
    assert not accepts(json.dumps({"edits": [{**edit, "withheld_apis": ["OurService"]}]}))
    assert not accepts(json.dumps({"edits": [{**edit, "key": None}]}))  # the key is required
    assert not accepts(
        json.dumps({"edits": [{**edit, "edits": [{"find": "Plan my", "replace": "Plan our"}]}]})
    )
