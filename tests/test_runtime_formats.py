"""The runtime's action formats: parsing (good, malformed and cut-off turns, exact
reasons), writing, grammars, instructions and observations."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from constrained import decoder
from genteach.agents import ApiSpec, ParseError
from genteach.agents.parsing import format_placeholders
from genteach.agents.tool_use import FORMAT_EXAMPLES, ApiParam, action_grammar
from genteach.models.base import Completion, ToolCall, ToolSpec, message
from genteach.prompts import PromptLibrary
from genteach.runtime import (
    Action,
    FunctionCallingFormat,
    Observation,
    ReactDbFormat,
    ReactOsFormat,
    StepResult,
    ToolUseFormat,
    TurnContext,
    api_tool,
    tool_api,
    truncate,
)

PROMPTS = PromptLibrary()
CTX = TurnContext()


def text(s: str) -> Completion:
    return Completion(text=s)


@pytest.fixture(scope="module")
def matcher() -> Callable[[str, str], bool]:
    """Whether a grammar accepts a text, token by token as constrained decoding does."""
    pytest.importorskip("llguidance")
    return lambda grammar, s: decoder(lark=grammar)(s)


# -- ReAct OS -----------------------------------------------------------------------------
OS = ReactOsFormat()


@pytest.mark.parametrize(
    ("turn", "action"),
    [
        (
            "Think: I need the count.\n\nAct: bash\n\n```bash\nls -1 /etc | wc -l\n```",
            Action(
                kind="call", name="bash", text="ls -1 /etc | wc -l", thought="I need the count."
            ),
        ),
        (  # blank space around every part
            "  Think:   two steps.  \n   Act :  bash  \n```bash  \ncd /tmp\nls\n```  \n\n",
            Action(kind="call", name="bash", text="cd /tmp\nls", thought="two steps."),
        ),
        (
            "Think: It is 220.\n\nAct: answer(220)",
            Action(kind="answer", text="220", thought="It is 220."),
        ),
        (
            "Think: The formula.\nAct: answer( f(x) = 2 )",
            Action(kind="answer", text="f(x) = 2", thought="The formula."),
        ),
        ("Think: Done.\n\nAct: finish", Action(kind="finish", thought="Done.")),
    ],
)
def test_os_format_parses_good_turns(turn: str, action: Action) -> None:
    assert OS.parse(text(turn), CTX) == action


@pytest.mark.parametrize(
    ("turn", "reason"),
    [
        (
            "Think: hmm.",
            "no 'Act:' line: end the turn with one action (bash, answer(...) or finish)",
        ),
        (
            "Think: a.\nAct: finish\nAct: finish",
            "more than one 'Act:' line: take exactly one action per turn",
        ),
        ("Act: finish", "no 'Think:' line before the action: write your thought, then act"),
        (
            "I will count.\nAct: finish",
            "no 'Think:' line before the action: write your thought, then act",
        ),
        (
            "Think: a.\nAct: Bash\n```bash\nls\n```",
            "unknown action 'Bash': use bash, answer(...) or finish",
        ),
        ("Think: a.\nAct:", "'Act:' names no action: use bash, answer(...) or finish"),
        ("Think: a.\nAct: answer 220", "write the answer inside the parentheses: answer(...)"),
        ("Think: a.\nAct: answer(220) is it", "write nothing after answer(...)"),
        ("Think: a.\nAct: answer(220", "answer( is not closed with ')' (cut off?)"),
        ("Think: a.\nAct: answer(  )", "answer() is empty: put the answer inside the parentheses"),
        (
            "Think: a.\nAct: finish now",
            "unknown action 'finish now': use bash, answer(...) or finish",
        ),
        ("Think: a.\nAct: finish\nThanks.", "write nothing after 'Act: finish'"),
        ("Think: a.\nAct: bash\nls /etc", "'Act: bash' must be followed by a ```bash code block"),
        (
            "Think: a.\nAct: bash\n```sh\nls\n```",
            "'Act: bash' must be followed by a ```bash code block",
        ),
        (
            "Think: a.\nAct: bash\n```bash\nls /etc | wc",
            "the bash code block is not closed with ``` (cut off?)",
        ),
        (
            "Think: a.\nAct: bash\n```bash\nls\n```\nThe output of",
            "write nothing after the bash code block",
        ),
        ("Think: a.\nAct: bash\n```bash\n\n```", "the bash code block is empty"),
        (
            "Think: <your thought>\nAct: finish",
            "the reasoning '<your thought>' is a placeholder in angle brackets: write your own "
            "reasoning in its place",
        ),
    ],
)
def test_os_format_names_what_is_wrong(turn: str, reason: str) -> None:
    with pytest.raises(ParseError) as exc:
        OS.parse(text(turn), CTX)
    assert exc.value.reason == reason


def test_os_format_thought_can_be_optional() -> None:
    loose = ReactOsFormat(require_thought=False)
    assert loose.parse(text("Act: finish"), CTX) == Action(kind="finish")


def test_os_format_writes_each_action() -> None:
    assert OS.write(Action(kind="call", name="bash", text="ls", thought="List.")) == (
        "Think: List.\n\nAct: bash\n\n```bash\nls\n```"
    )
    assert OS.write(Action(kind="answer", text="220", thought="Known.")) == (
        "Think: Known.\n\nAct: answer(220)"
    )
    assert OS.write(Action(kind="finish")) == "Act: finish"
    with pytest.raises(ValueError, match="the OS format has no fail action"):
        OS.write(Action(kind="fail", text="x"))


@pytest.mark.parametrize(
    "turn",
    [
        "Think: Count them.\n\nAct: bash\n\n```bash\nls -1 /etc | wc -l\n```",
        "Think: Two lines.\n\nAct: bash\n\n```bash\nls /etc\necho `date` ``x\n```",
        "Think: Known.\n\nAct: answer(f(x) = 2)",
        "Think: Done.\n\nAct: finish",
    ],
)
def test_os_grammar_accepts_written_turns(matcher: Callable[[str, str], bool], turn: str) -> None:
    assert matcher(OS.grammar(CTX) or "", turn)
    OS.parse(text(turn), CTX)


@pytest.mark.parametrize(
    "turn",
    [
        "Act: finish",  # no thought
        "Think: a.\n\nAct: finish now",
        "Think: a.\n\nAct: answer()",
        "Think: a.\n\nAct: bash\n\n```bash\nls\n```\nmore",
        "Think: a.\n\nAct: bash\n\n```bash\nls\n```\necho\n```",
        "Think: a. Act: finish\n\nAct: finish",  # an action inside the thought
    ],
)
def test_os_grammar_rejects_malformed_turns(matcher: Callable[[str, str], bool], turn: str) -> None:
    assert not matcher(OS.grammar(CTX) or "", turn)


def test_os_observation_cuts_long_output_and_says_so() -> None:
    bash = Action(kind="call", name="bash", text="ls")
    long = "x" * 801
    shown = OS.observation(PROMPTS, bash, StepResult(observation=long))
    assert shown == message(
        "user",
        "The output of the OS:\n\n"
        + "x" * 780
        + "\n\n[output cut here: it was longer than 800 characters]",
    )
    exact = OS.observation(PROMPTS, bash, StepResult(observation="x" * 800))
    assert exact["content"] == "The output of the OS:\n\n" + "x" * 800
    empty = OS.observation(PROMPTS, bash, StepResult(observation=""))
    assert empty == message("user", "The output of the OS is empty.")
    never = ReactOsFormat(output_limit=None).observation(
        PROMPTS, bash, StepResult(observation=long)
    )
    assert never["content"] == "The output of the OS:\n\n" + long
    assert truncate("abcdef", 4, 2) == ("ab", True)
    with pytest.raises(ValueError, match=r"output_keep must be in 1\.\.output_limit"):
        ReactOsFormat(output_limit=10, output_keep=11)


def test_os_instructions_show_turns_written_by_the_format() -> None:
    text_ = OS.instructions(PROMPTS, Observation(text="t"))
    # concrete examples, not <placeholders> (a small model copies a placeholder verbatim)
    assert format_placeholders([text_]) == set()
    assert (
        "Think: To know how many lines notes.txt has, I print only its line count.\n\n"
        "Act: bash\n\n```bash\nwc -l < notes.txt\n```" in text_
    )
    assert "Think: The output is 12, so notes.txt has 12 lines.\n\nAct: answer(12)" in text_
    assert "changed.\n\nAct: finish" in text_
    assert "Output longer than 800 characters is cut off" in text_
    assert "cut off" not in ReactOsFormat(output_limit=None).instructions(PROMPTS, Observation("t"))
    assert OS.task(PROMPTS, Observation("Count files."), after_demos=False) == (
        "The task is:\n\nCount files."
    )
    assert OS.task(PROMPTS, Observation("Count files."), after_demos=True).startswith(
        "That was an example. Now a new task starts, in a new operating system"
    )


# -- ReAct DB -----------------------------------------------------------------------------
DB = ReactDbFormat()


@pytest.mark.parametrize(
    ("turn", "action"),
    [
        (
            "Sum the sales.\nAction: Operation\n```sql\nSELECT SUM(total) FROM sales;\n```",
            Action(
                kind="call",
                name="sql",
                text="SELECT SUM(total) FROM sales;",
                thought="Sum the sales.",
            ),
        ),
        (  # several lines are joined into one statement; blank space tolerated
            "Two lines.\n\n  Action:  Operation \n\n```sql\nSELECT name\n  FROM `my table`\n```\n",
            Action(
                kind="call", name="sql", text="SELECT name FROM `my table`", thought="Two lines."
            ),
        ),
        (
            "It is 1250.\nAction: Answer\nFinal Answer: [1250]",
            Action(kind="answer", text="[1250]", thought="It is 1250."),
        ),
        (
            "Names.\nAction: Answer\nFinal Answer:  ['Oslo', \"Rome; Italy\"]  ",
            Action(kind="answer", text="['Oslo', \"Rome; Italy\"]", thought="Names."),
        ),
    ],
)
def test_db_format_parses_good_turns(turn: str, action: Action) -> None:
    assert DB.parse(text(turn), CTX) == action


@pytest.mark.parametrize(
    ("turn", "reason"),
    [
        (
            "SELECT 1",
            "no 'Action:' line: end the turn with 'Action: Operation' and a sql block, or "
            "'Action: Answer' and 'Final Answer: [...]'",
        ),
        (
            "x\nAction: Operation\nAction: Answer",
            "more than one 'Action:' line: take exactly one action per turn",
        ),
        (
            "Action: Answer\nFinal Answer: [1]",
            "no explanation before 'Action:': explain your reasoning, then act",
        ),
        (
            "x\nAction: Query\n```sql\nSELECT 1\n```",
            "unknown action 'Query': use Operation or Answer",
        ),
        (
            "x\nAction: Operation\nSELECT 1",
            "'Action: Operation' must be followed by a ```sql code block",
        ),
        (
            "x\nAction: Operation\n```sql\nSELECT 1",
            "the sql code block is not closed with ``` (cut off?)",
        ),
        (
            "x\nAction: Operation\n```sql\nSELECT 1; DELETE FROM t;\n```",
            "one SQL statement per operation: run the next one in the next turn",
        ),
        (
            "x\nAction: Answer\n[1]",
            "'Action: Answer' must be followed by a 'Final Answer: [...]' line",
        ),
        (
            "x\nAction: Answer\nFinal Answer: 42",
            'the final answer must be a list, such as ["Paris"] or [42]',
        ),
        (
            "x\nAction: Answer\nFinal Answer: [1, 2",
            "the final answer list is not closed with ] (cut off?)",
        ),
        (
            "x\nAction: Answer\nFinal Answer: [Oslo]",
            'the final answer is not a list of literals, such as ["Paris"] or [42]',
        ),
        (
            "x\nAction: Answer\nFinal Answer: [1] [2]",
            'the final answer is not a list of literals, such as ["Paris"] or [42]',
        ),
        (
            "<the owner knows the data but not SQL>\nAction: Operation\n```sql\nSELECT 1\n```",
            "the reasoning '<the owner knows the data but not SQL>' is a placeholder in angle "
            "brackets: write your own reasoning in its place",
        ),
    ],
)
def test_db_format_names_what_is_wrong(turn: str, reason: str) -> None:
    with pytest.raises(ParseError) as exc:
        DB.parse(text(turn), CTX)
    assert exc.value.reason == reason


def test_db_format_writes_each_action_and_acknowledges() -> None:
    assert DB.write(Action(kind="call", name="sql", text="SELECT 1", thought="One.")) == (
        "One.\nAction: Operation\n```sql\nSELECT 1\n```"
    )
    assert DB.write(Action(kind="answer", text="[1]")) == "Action: Answer\nFinal Answer: [1]"
    assert DB.acknowledgement(PROMPTS) == "Ok."
    assert ReactDbFormat(acknowledgement_template=None).acknowledgement(PROMPTS) is None
    result = StepResult(observation="[(28,)]")
    assert DB.observation(PROMPTS, Action(kind="call", name="sql"), result) == message(
        "user", "[(28,)]"
    )
    shown = DB.instructions(PROMPTS, Observation("q"))
    # concrete examples, not <placeholders> (a small model copies a placeholder verbatim)
    assert format_placeholders([shown]) == set()
    assert (
        "so I count the rows of Ferry whose port is Bergen.\nAction: Operation\n```sql\n"
        "SELECT COUNT(*) FROM Ferry WHERE port = 'Bergen'\n```" in shown
    )
    assert "4 ferries leave from Bergen.\nAction: Answer\nFinal Answer: [4]" in shown


@pytest.mark.parametrize(
    "turn",
    [
        "Sum them.\nAction: Operation\n```sql\nSELECT SUM(total) FROM `sales 2024` WHERE id = 3;\n```",
        'Known.\nAction: Answer\nFinal Answer: ["Oslo", 4, -2.5]',
        "Empty.\nAction: Answer\nFinal Answer: []",
    ],
)
def test_db_grammar_accepts_written_turns(matcher: Callable[[str, str], bool], turn: str) -> None:
    assert matcher(DB.grammar(CTX) or "", turn)
    DB.parse(text(turn), CTX)


@pytest.mark.parametrize(
    "turn",
    [
        "x\nAction: Operation\n```sql\nSELECT 1; SELECT 2\n```",
        "x\nAction: Operation\n```sql\nSELECT 1\nFROM t\n```",
        "x\nAction: Answer\nFinal Answer: 42",
        "Action: Answer\nFinal Answer: [1]",
    ],
)
def test_db_grammar_rejects_malformed_turns(matcher: Callable[[str, str], bool], turn: str) -> None:
    assert not matcher(DB.grammar(CTX) or "", turn)


# -- function calling ---------------------------------------------------------------------
FC = FunctionCallingFormat()
LOOKUP = ToolSpec(
    name="lookup",
    description="The value of a key.",
    parameters={
        "type": "object",
        "properties": {"key": {"type": "string"}, "default": {"type": "string"}},
        "required": ["key"],
    },
)
FC_CTX = TurnContext(tools=(LOOKUP,), turn=2)


def calls(*items: tuple[str, str, str]) -> Completion:
    return Completion(
        text="",
        tool_calls=tuple(ToolCall(id=i, name=n, arguments=a) for i, n, a in items),
        finish_reason="tool_calls",
    )


def test_function_calling_parses_calls_and_answers() -> None:
    got = FC.parse(
        calls(("c1", "lookup", '{"key": "apple"}'), ("", "lookup", '{"key": "pear"}')), FC_CTX
    )
    assert got == Action(
        kind="tool_calls",
        calls=(
            Action(kind="call", name="lookup", arguments={"key": "apple"}, call_id="c1"),
            Action(kind="call", name="lookup", arguments={"key": "pear"}, call_id="call_2_1"),
        ),
    )
    assert FC.parse(text("  The value is 3. "), FC_CTX) == Action(
        kind="answer", text="The value is 3."
    )


@pytest.mark.parametrize(
    ("completion", "reason"),
    [
        (text("  "), "empty answer: call a function or answer in text"),
        (calls(("c", "fetch", "{}")), "fetch is not one of the functions (lookup)"),
        (
            calls(("c", "lookup", '{"key": ')),
            "lookup: the arguments are not valid JSON: Expecting value at column 8",
        ),
        (calls(("c", "lookup", '["apple"]')), "lookup: the arguments must be a JSON object"),
        (calls(("c", "lookup", "{}")), "lookup is missing required parameter key"),
        (calls(("c", "lookup", '{"key": "a", "size": 1}')), "lookup has no parameter size"),
    ],
)
def test_function_calling_names_what_is_wrong(completion: Completion, reason: str) -> None:
    with pytest.raises(ParseError) as exc:
        FC.parse(completion, FC_CTX)
    assert exc.value.reason == reason


def test_function_calling_turns_and_observations() -> None:
    completion = Completion(
        text="Looking it up.", tool_calls=(ToolCall(id="", name="lookup", arguments='{"key":"a"}'),)
    )
    action = FC.parse(completion, FC_CTX)
    turn = FC.turn(completion, action)
    assert turn == {
        "role": "assistant",
        "content": "Looking it up.",
        "tool_calls": [{"id": "call_2_0", "name": "lookup", "arguments": '{"key":"a"}'}],
    }
    call = action.calls[0]
    assert FC.observation(PROMPTS, call, StepResult(observation="3")) == {
        "role": "tool",
        "content": "3",
        "tool_call_id": "call_2_0",
        "name": "lookup",
    }
    failed = FC.observation(PROMPTS, call, StepResult(observation="no such key", error=True))
    assert failed["content"] == "Error: no such key"
    rejected = FC.observation(
        PROMPTS, Action(kind="answer", text="x"), StepResult(observation="No.")
    )
    assert rejected == message("user", "No.")
    assert FC.render(Action(kind="tool_calls", calls=(call,))) == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "call_2_0", "name": "lookup", "arguments": '{"key": "a"}'}],
    }
    assert FC.tools(FC_CTX) == (LOOKUP,) and FC.grammar(FC_CTX) is None and FC.stop == ()
    assert FC.instructions(PROMPTS, Observation("q", tools=(LOOKUP,))).startswith(
        "You can call the functions provided with this conversation (lookup)."
    )
    assert (
        FunctionCallingFormat(instructions_template=None).instructions(PROMPTS, Observation("q"))
        == ""
    )


# -- tool use (ACTION) --------------------------------------------------------------------
APIS = [
    ApiSpec(
        name="get_weather",
        description="Weather for a city.",
        parameters=[
            ApiParam(name="city", description="City name."),
            ApiParam(name="days", type="integer", required=False),
            ApiParam(name="when", type="date", required=False),
        ],
        returns="temp_c and sky",
    ),
    ApiSpec(name="list_cities", description="Every city known."),
]
TOOLS = tuple(api_tool(a) for a in APIS)
TU = ToolUseFormat()
TU_CTX = TurnContext(tools=TOOLS)


def test_apis_become_functions_and_back() -> None:
    assert TOOLS[0] == ToolSpec(
        name="get_weather",
        description="Weather for a city.\nReturns: temp_c and sky",
        parameters={
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name."},
                "days": {"type": "integer"},
                "when": {"format": "date"},
            },
            "required": ["city"],
        },
    )
    assert [tool_api(t).model_dump() for t in TOOLS] == [a.model_dump() for a in APIS]


def test_tool_use_format_parses_calls_and_stops() -> None:
    call = 'Paris first.\nACTION_TYPE : API_CALL\nACTION: get_weather(city="Paris", days=2)'
    assert TU.parse(text(call), TU_CTX) == Action(
        kind="call",
        name="get_weather",
        arguments={"city": "Paris", "days": 2},
        thought="Paris first.",
    )
    done = 'Known.\nACTION_TYPE : STOP\nACTION: FINAL_ANSWER("18 degrees.")'
    assert TU.parse(text(done), TU_CTX) == Action(
        kind="answer", text="18 degrees.", thought="Known."
    )
    failed = 'ACTION_TYPE : STOP\nACTION: FAILED("which city?")'
    assert TU.parse(text(failed), TU_CTX) == Action(kind="fail", text="which city?")


@pytest.mark.parametrize(
    ("turn", "ctx", "reason"),
    [
        (
            "I will check.",
            TU_CTX,
            "no 'ACTION_TYPE : ...' line: every turn must end with one action",
        ),
        (
            'x\nACTION_TYPE : API_CALL\nACTION: get_forecast(city="Paris")',
            TU_CTX,
            "get_forecast is not in the API list (get_weather, list_cities)",
        ),
        (
            'x\nACTION_TYPE : API_CALL\nACTION: get_weather(city="Paris"',
            TU_CTX,
            "the API call is not of the form name(param=value, ...): '(' was never closed",
        ),
        (
            f'x\nACTION_TYPE : STOP\nACTION: FINAL_ANSWER("{FORMAT_EXAMPLES["final_answer"]}")',
            TU_CTX,
            "the FINAL_ANSWER message repeats the format example's wording: the examples only "
            "show the format; write the message for this request, from its own APIs and results",
        ),
        (
            "x\nACTION_TYPE : API_CALL\nACTION: list_cities()",
            TurnContext(tools=TOOLS, last=True),
            "this is the last step of the conversation: stop now with FINAL_ANSWER(...) from the "
            "results so far, or FAILED(...) saying what is still missing",
        ),
        (
            "x\nACTION_TYPE : API_CALL\nACTION: list_cities()",
            TurnContext(tools=TOOLS, history=(Action(kind="call", name="list_cities"),)),
            "list_cities was already called with these arguments and its result is above: use "
            "it, make a different call, or stop",
        ),
    ],
)
def test_tool_use_format_names_what_is_wrong(turn: str, ctx: TurnContext, reason: str) -> None:
    with pytest.raises(ParseError) as exc:
        TU.parse(text(turn), ctx)
    assert exc.value.reason == reason


def test_tool_use_format_grammar_observation_and_instructions() -> None:
    assert TU.grammar(TU_CTX) == action_grammar([tool_api(t) for t in TOOLS])
    assert TU.grammar(TurnContext(tools=TOOLS, last=True)) == action_grammar([])
    called = TurnContext(tools=TOOLS, history=(Action(kind="call", name="list_cities"),))
    assert TU.grammar(called) == action_grammar([tool_api(TOOLS[0])])
    weather = Action(kind="call", name="get_weather", arguments={"city": "Paris"})
    ok = TU.observation(PROMPTS, weather, StepResult(observation='{"temp_c": 18}'))
    assert ok == message("user", 'API_RESULT get_weather: {"temp_c": 18}')
    err = TU.observation(PROMPTS, weather, StepResult(observation="", error=True))
    assert err == message("user", "API_ERROR get_weather: the call failed")
    assert TU.write(Action(kind="fail", text='no "city"', thought="Missing.")) == (
        'Missing.\nACTION_TYPE : STOP\nACTION: FAILED("no \\"city\\"")'
    )
    shown = TU.instructions(PROMPTS, Observation("q", tools=TOOLS))
    assert (
        'ACTION_TYPE : API_CALL\nACTION: get_exchange_rate(base="EUR", target="JPY", '
        'date="2025-03-14")' in shown
    )
    assert f'ACTION_TYPE : STOP\nACTION: FAILED("{FORMAT_EXAMPLES["failed"]}")' in shown
    assert shown.endswith(
        "Available APIs:\n1. get_weather: Weather for a city.\n  Parameters:\n"
        "  - city (string, required): City name.\n  - days (integer, optional)\n"
        "  - when (date, optional)\n  Returns: temp_c and sky\n\n"
        "2. list_cities: Every city known.\n  Parameters: none\n  Returns: not documented"
    )


def test_every_format_describes_a_valid_turn_for_repairs() -> None:
    assert [f.hint(PROMPTS) for f in (OS, DB, FC, TU)] == [
        'one line "Think: ..." followed by exactly one action: "Act: bash" and one ```bash code '
        'block, "Act: answer(...)", or "Act: finish"',
        'your reasoning followed by exactly one action: "Action: Operation" and one ```sql block '
        'holding one statement on one line, or "Action: Answer" and "Final Answer: [...]" (a list)',
        "either calls of the provided functions with JSON object arguments, or your final answer "
        "as plain text",
        'a short explanation followed by exactly one action: "ACTION_TYPE : API_CALL" then '
        '"ACTION: name(param=value, ...)", or "ACTION_TYPE : STOP" then "ACTION: '
        'FINAL_ANSWER("...")" or "ACTION: FAILED("reason")"',
    ]


def test_public_names_are_what_the_runtime_exports() -> None:
    import genteach.runtime as runtime

    assert sorted(runtime.__all__) == sorted(set(runtime.__all__))
    for name in runtime.__all__:
        assert hasattr(runtime, name), name
    public = {n for n in dir(runtime) if not n.startswith("_") and n[0].isupper()}
    assert public <= set(runtime.__all__), public - set(runtime.__all__)
    assert {"Environment", "ActionFormat", "run_episode", "Episode", "ToolLoop"} <= set(
        runtime.__all__
    )
