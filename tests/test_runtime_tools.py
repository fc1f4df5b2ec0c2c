"""Tool use as the simulated-API environment with the ACTION format, and teacher tools:
a tool loop whose trace a flow keeps in the record or hides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from genteach import ScriptedModel
from genteach.agents.tool_use import ApiExchange, ApiParam, ApiSpec, SimulatedApi, action_grammar
from genteach.models.base import Completion, Message, ModelRequest, ToolCall, ToolSpec, message
from genteach.prompts import PromptLibrary
from genteach.runtime import (
    Action,
    ApiTask,
    EpisodeSettings,
    SimulatedApiEnvironment,
    ToolEnvironment,
    ToolError,
    ToolLoop,
    ToolUseFormat,
    derive_seed,
    run_episode,
)

PROMPTS = PromptLibrary()
APIS = (
    ApiSpec(
        name="get_weather",
        description="Weather for a city.",
        parameters=[ApiParam(name="city"), ApiParam(name="days", type="integer", required=False)],
        returns="temp_c and sky",
    ),
    ApiSpec(name="list_cities", description="Every city known."),
)
TASK = ApiTask(
    request="What is the weather in Paris for the next 2 days?",
    library="weather",
    apis=APIS,
    description="Weather data.",
)
SIM = "You simulate an API"  # the simulated API's system message starts so
ASSISTANT = "ACTION_TYPE"  # only the assistant's system message holds the format
CITIES = "Cities first.\nACTION_TYPE : API_CALL\nACTION: list_cities()"
WEATHER = 'Paris is listed.\nACTION_TYPE : API_CALL\nACTION: get_weather(city="Paris", days=2)'
ANSWER = 'Known.\nACTION_TYPE : STOP\nACTION: FINAL_ANSWER("18 degrees and clear in Paris.")'


def requests_of(model: ScriptedModel, marker: str) -> list[ModelRequest]:
    return [r for r in model.requests if marker in r.messages[0]["content"]]


def environment(model: ScriptedModel, **kw: Any) -> SimulatedApiEnvironment:
    return SimulatedApiEnvironment(
        SimulatedApi("api_simulator", prompts=PROMPTS), model, PROMPTS, **kw
    )


async def test_tool_use_is_the_simulated_api_environment_with_the_action_format() -> None:
    model = ScriptedModel(
        {
            SIM: [
                '{"status": "ok", "result": ["Paris", "Rome"]}',
                '{"status": "ok", "result": {"temp_c": 18, "sky": "clear"}}',
            ],
            ASSISTANT: [CITIES, WEATHER, ANSWER],
        }
    )
    env = environment(model)
    episode = await run_episode(model, env, TASK, ToolUseFormat(), prompts=PROMPTS, seed=3)

    assert (episode.end, episode.reward, episode.final_action) == (
        "finished",
        1.0,
        Action(kind="answer", text="18 degrees and clear in Paris.", thought="Known."),
    )
    assert [(m["role"], m["trained"], m["content"]) for m in episode.messages[1:]] == [
        ("user", False, TASK.request),
        ("assistant", True, CITIES),
        ("user", False, 'API_RESULT list_cities: ["Paris", "Rome"]'),
        ("assistant", True, WEATHER),
        ("user", False, 'API_RESULT get_weather: {"temp_c": 18, "sky": "clear"}'),
        ("assistant", True, ANSWER),
    ]
    system = episode.messages[0]
    assert system["role"] == "system" and system["trained"] is False
    assert system["content"].startswith(
        "You are an AI assistant that completes the user's request by calling the APIs of the "
        'library "weather" (Weather data) listed below.\n\nYou work in steps.'
    )
    assert "1. get_weather: Weather for a city." in system["content"]
    # the environment keeps the calls, and the simulator sees the earlier ones
    assert env.calls == [
        ApiExchange(api="list_cities", arguments={}, status="ok", result=["Paris", "Rome"]),
        ApiExchange(
            api="get_weather",
            arguments={"city": "Paris", "days": 2},
            status="ok",
            result={"temp_c": 18, "sky": "clear"},
        ),
    ]
    simulated = requests_of(model, SIM)
    assert "HISTORY" not in simulated[0].messages[1]["content"]
    assert '1. list_cities({}) -> ok: ["Paris", "Rome"]' in simulated[1].messages[1]["content"]
    reset = derive_seed(3, "reset")
    assert [r.seed for r in simulated] == [derive_seed(reset, 0), derive_seed(reset, 1)]
    # the assistant's grammar leaves out an API without parameters once it was called
    assistant = requests_of(model, ASSISTANT)
    assert assistant[0].grammar == action_grammar(list(APIS))
    assert assistant[1].grammar == action_grammar([APIS[0]])
    assert episode.usage.calls == 5
    assert [t.usage.calls for t in episode.turns] == [1, 1, 1]
    assert [s.result.usage.calls for t in episode.turns for s in t.steps] == [1, 1, 0]


async def test_the_reward_check_is_plugged_in() -> None:
    failed = 'No city.\nACTION_TYPE : STOP\nACTION: FAILED("which city do you mean?")'
    task = ApiTask(request="What is the weather there tomorrow?", library="weather", apis=APIS)
    model = ScriptedModel({ASSISTANT: [failed]})
    episode = await run_episode(model, environment(model), task, ToolUseFormat(), prompts=PROMPTS)
    assert (episode.end, episode.reward) == ("finished", 0.0)  # the default wants an answer

    def expects_failed(task: ApiTask, stop: Action, calls: Sequence[ApiExchange]) -> float:
        return 1.0 if stop.kind == "fail" and not calls else 0.0

    model = ScriptedModel({ASSISTANT: [failed]})
    env = environment(model, reward=expects_failed)
    episode = await run_episode(model, env, task, ToolUseFormat(), prompts=PROMPTS)
    assert (episode.end, episode.reward) == ("finished", 1.0)


async def test_the_last_turn_must_stop_and_a_repeated_call_is_sent_back() -> None:
    rome = 'Rome too.\nACTION_TYPE : API_CALL\nACTION: get_weather(city="Rome")'
    model = ScriptedModel(
        {
            SIM: ['{"status": "ok", "result": ["Paris"]}', '{"status": "ok", "result": {}}'],
            ASSISTANT: [CITIES, CITIES, WEATHER, rome, ANSWER],
        }
    )
    settings = EpisodeSettings(max_turns=3)
    episode = await run_episode(
        model, environment(model), TASK, ToolUseFormat(), prompts=PROMPTS, settings=settings
    )
    assert (episode.end, episode.reward) == ("finished", 1.0)
    assert [[r.reason for r in t.rejected] for t in episode.turns] == [
        [],
        [
            "list_cities was already called with these arguments and its result is above: "
            "use it, make a different call, or stop"
        ],
        [
            "this is the last step of the conversation: stop now with FINAL_ANSWER(...) from "
            "the results so far, or FAILED(...) saying what is still missing"
        ],
    ]
    assistant = requests_of(model, ASSISTANT)
    assert assistant[3].grammar == action_grammar([])  # the last turn may only stop
    assert rome not in [m["content"] for m in episode.messages]


async def test_a_repeated_call_is_repaired_under_a_grammar_without_that_api() -> None:
    model = ScriptedModel(
        {SIM: ['{"status": "ok", "result": {"temp_c": 18}}'], ASSISTANT: [WEATHER, WEATHER, ANSWER]}
    )
    episode = await run_episode(model, environment(model), TASK, ToolUseFormat(), prompts=PROMPTS)
    assert episode.reward == 1.0 and len(episode.turns[1].rejected) == 1
    assistant = requests_of(model, ASSISTANT)
    assert [r.grammar for r in assistant] == [
        action_grammar(list(APIS)),
        action_grammar(list(APIS)),  # a call of get_weather with other values is fine
        action_grammar([APIS[1]]),  # the repair may not call get_weather again
    ]


async def test_the_teacher_is_guided_and_the_student_never_sees_it() -> None:
    model = ScriptedModel(
        {SIM: ['{"status": "ok", "result": {"temp_c": 18}}'], ASSISTANT: [ANSWER]}
    )
    guidance = "You are an expert assistant; your turns teach a smaller model."
    episode = await run_episode(
        model, environment(model), TASK, ToolUseFormat(), prompts=PROMPTS, guidance=guidance
    )
    sent = requests_of(model, ASSISTANT)[0].messages
    assert sent[0]["content"] == f"{guidance}\n\n{episode.messages[0]['content']}"
    assert list(sent[1:]) == list(episode.messages[1:2])
    assert all(guidance not in m["content"] for m in episode.messages)


async def test_a_simulator_that_never_answers_ends_the_episode_with_its_cost() -> None:
    model = ScriptedModel({SIM: ["not json"] * 3, ASSISTANT: [CITIES]})
    episode = await run_episode(model, environment(model), TASK, ToolUseFormat(), prompts=PROMPTS)
    assert episode.end == "environment_error"
    assert (
        episode.detail
        == "api_simulator: malformed answer after 3 attempts: no JSON object in the answer"
    )
    assert episode.raw == "not json"
    assert episode.usage.calls == 4


# -- teacher tools ------------------------------------------------------------------------
class Capitals:
    """A test tool: the capital of a country, from a fixed table."""

    spec = ToolSpec(
        name="capital",
        description="The capital city of a country.",
        parameters={
            "type": "object",
            "properties": {"country": {"type": "string"}},
            "required": ["country"],
        },
    )

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, arguments: Mapping[str, Any]) -> str:
        country = str(arguments["country"])
        self.asked.append(country)
        table = {"France": "Paris", "Japan": "Tokyo"}
        if country not in table:
            raise ToolError(f"unknown country: {country}")
        return table[country]


class Script:
    """Returns given completions in order and records the requests."""

    def __init__(self, completions: Sequence[Completion]) -> None:
        self.completions = list(completions)
        self.requests: list[ModelRequest] = []

    @property
    def model_name(self) -> str:
        return "script"

    async def complete(self, request: ModelRequest) -> Completion:
        self.requests.append(request)
        return self.completions.pop(0)

    async def close(self) -> None:
        return None


REQUEST = "What are the capitals of Atlantis and France?"
TUTOR = "You are a careful geography tutor."
FINAL = "I could not find Atlantis; the capital of France is Paris."


async def test_a_responder_answers_after_function_calls_and_the_trace_can_be_hidden() -> None:
    tool = Capitals()
    calls = (
        ToolCall(id="c1", name="capital", arguments='{"country": "Atlantis"}'),
        ToolCall(id="c2", name="capital", arguments='{"country": "France"}'),
    )
    model = Script([Completion(text="", tool_calls=calls), Completion(text=FINAL)])
    result = await ToolLoop([tool]).run(model, PROMPTS, REQUEST, system=TUTOR, seed=5)

    assert result.answer == FINAL and tool.asked == ["Atlantis", "France"]
    call_turn: Message = message("assistant", "", trained=True)
    call_turn["tool_calls"] = list(calls)
    assert result.trace == (
        call_turn,
        {"role": "tool", "content": "Error: unknown country: Atlantis", "tool_call_id": "c1",
         "name": "capital", "trained": False},
        {"role": "tool", "content": "Paris", "tool_call_id": "c2", "name": "capital",
         "trained": False},
    )  # fmt: skip
    kept = result.messages(keep_trace=True)
    assert kept == list(result.episode.messages)
    assert kept[0]["content"].startswith(
        f"{TUTOR}\n\nYou can call the functions provided with this conversation (capital)."
    )
    assert kept[1:] == [
        message("user", REQUEST, trained=False),
        *result.trace,
        message("assistant", FINAL, trained=True),
    ]
    assert result.messages(keep_trace=False) == [
        message("system", TUTOR, trained=False),
        message("user", REQUEST, trained=False),
        message("assistant", FINAL, trained=True),
    ]
    assert model.requests[0].tools == (Capitals.spec,)


async def test_a_tool_loop_in_a_text_format() -> None:
    call = 'Look it up.\nACTION_TYPE : API_CALL\nACTION: capital(country="Japan")'
    done = 'Found.\nACTION_TYPE : STOP\nACTION: FINAL_ANSWER("The capital of Japan is Tokyo.")'
    model = ScriptedModel([call, done])
    result = await ToolLoop([Capitals()], fmt=ToolUseFormat()).run(
        model, PROMPTS, "Capital of Japan?"
    )
    assert result.answer == "The capital of Japan is Tokyo."
    assert result.trace == (
        message("assistant", call, trained=True),
        message("user", "API_RESULT capital: Tokyo", trained=False),
    )
    assert result.messages(keep_trace=False) == [
        message("user", "Capital of Japan?", trained=False),
        message("assistant", "The capital of Japan is Tokyo.", trained=True),
    ]
    assert "1. capital: The capital city of a country." in model.requests[0].messages[0]["content"]


async def test_a_tool_loop_without_an_answer_says_why() -> None:
    calls = (ToolCall(id="c1", name="capital", arguments='{"country": "Japan"}'),)
    model = Script([Completion(text="", tool_calls=calls)])
    loop = ToolLoop([Capitals()], settings=EpisodeSettings(max_turns=1))
    result = await loop.run(model, PROMPTS, "Capital of Japan?")
    assert result.answer is None and len(result.trace) == 2
    with pytest.raises(ValueError, match="the tool loop gave no answer: no end within 1 turns"):
        result.messages(keep_trace=False)
    with pytest.raises(ValueError, match="two tools share a name"):
        ToolEnvironment([Capitals(), Capitals()])
