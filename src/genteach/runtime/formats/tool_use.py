"""The tool-use ACTION format (AgentInstruct's), over any environment whose tools are
APIs::

    The weather first.
    ACTION_TYPE : API_CALL
    ACTION: get_weather(city="Paris", unit="celsius")

    ACTION_TYPE : STOP
    ACTION: FINAL_ANSWER("It is 18 degrees in Paris.")      # or FAILED("reason")

Parsing and the grammar are :func:`genteach.agents.tool_use.parse_action` and
:func:`~genteach.agents.tool_use.action_grammar`; results come back as
``API_RESULT <name>: <JSON>`` or ``API_ERROR <name>: <message>`` user turns.
"""

from __future__ import annotations

import json
from typing import Any

from genteach.agents.parsing import ParseError
from genteach.agents.tool_use import (
    FORMAT_EXAMPLES,
    ApiParam,
    ApiSpec,
    action_grammar,
    copies_format_example,
    parse_action,
)
from genteach.models.base import Completion, Message, ToolSpec, message
from genteach.prompts import PromptLibrary
from genteach.runtime.base import (
    Action,
    ActionKind,
    Observation,
    Placement,
    StepResult,
    TurnContext,
)
from genteach.runtime.formats._text import TextFormat

#: JSON-schema types of the API parameter types the ACTION grammar knows.
_JSON_TYPES = {
    "string": "string",
    "str": "string",
    "integer": "integer",
    "int": "integer",
    "number": "number",
    "float": "number",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "object": "object",
    "dict": "object",
}
#: Where :func:`api_tool` puts an API's ``returns`` in the tool's description.
_RETURNS = "\nReturns: "


def api_tool(api: ApiSpec) -> ToolSpec:
    """An API as a function (JSON schema of its parameters).

    A parameter type JSON schema does not know (``date``) becomes its ``format``; the
    API's ``returns`` ends the description after a ``Returns:`` line, so
    :func:`tool_api` gives the API back.
    """
    properties: dict[str, Any] = {}
    for p in api.parameters:
        kind = _JSON_TYPES.get(p.type.strip().lower())
        prop: dict[str, Any] = {"type": kind} if kind else {"format": p.type}
        if p.description:
            prop["description"] = p.description
        properties[p.name] = prop
    description = api.description + (_RETURNS + api.returns if api.returns else "")
    parameters = {"type": "object", "properties": properties, "required": api.required}
    return ToolSpec(name=api.name, description=description, parameters=parameters)


def tool_api(tool: ToolSpec) -> ApiSpec:
    """A function as an API of the ACTION format (the inverse of :func:`api_tool`).

    Not validated: a function's name or description need not follow the API-list rules.
    """
    description, _, returns = tool.description.partition(_RETURNS)
    properties = tool.parameters.get("properties") or {}
    required = set(tool.parameters.get("required") or [])
    params = [
        ApiParam.model_construct(
            name=name,
            type=str(prop.get("type") or prop.get("format") or "any"),
            description=str(prop.get("description", "")),
            required=name in required,
        )
        for name, prop in properties.items()
    ]
    return ApiSpec.model_construct(
        name=tool.name, description=description, parameters=params, returns=returns
    )


class ToolUseFormat(TextFormat):
    """The ACTION format: brief reasoning, then one ``ACTION_TYPE``/``ACTION`` pair.

    An API call is ``Action(kind="call", name=..., arguments=...)``; ``FINAL_ANSWER`` is
    ``Action(kind="answer")`` and ``FAILED`` ``Action(kind="fail")``, with the message in
    ``text``.

    Args:
        placement: ``"system"`` (the default) or ``"user"``.
        stop_on_last_turn: on the budget's last turn a call is malformed and the grammar
            allows only STOP (answer from the results so far, or FAILED).
        reject_repeated_calls: a call repeating an earlier one (same API, same
            arguments) is malformed: its result is already in the conversation.
        stop: stop sequences (none by default; the grammar ends the turn).
        observation_template: the ``API_RESULT``/``API_ERROR`` turn.
    """

    name = "tool_use"

    def __init__(
        self,
        *,
        placement: Placement = "system",
        stop_on_last_turn: bool = True,
        reject_repeated_calls: bool = True,
        stop: tuple[str, ...] = (),
        instructions_template: str = "runtime/tool_use/instructions.j2",
        hint_template: str = "runtime/tool_use/hint.j2",
        observation_template: str = "runtime/tool_use/observation.j2",
    ) -> None:
        super().__init__(
            placement=placement,
            stop=stop,
            instructions_template=instructions_template,
            hint_template=hint_template,
        )
        self.stop_on_last_turn = stop_on_last_turn
        self.reject_repeated_calls = reject_repeated_calls
        self.observation_template = observation_template

    def variables(self, first: Observation) -> dict[str, Any]:
        """The API list and the shapes of the three actions, written from
        :data:`~genteach.agents.tool_use.FORMAT_EXAMPLES` (whose wording a STOP message
        may not copy)."""
        call = parse_action("ACTION_TYPE : API_CALL\nACTION: " + FORMAT_EXAMPLES["call"])
        shapes = {
            "call": self.write(Action(kind="call", name=call.name, arguments=call.arguments)),
            "answer": self.write(Action(kind="answer", text=FORMAT_EXAMPLES["final_answer"])),
            "fail": self.write(Action(kind="fail", text=FORMAT_EXAMPLES["failed"])),
        }
        return {"apis": [tool_api(t) for t in first.tools], "shapes": shapes}

    def write(self, action: Action) -> str:
        if action.kind == "call":
            arguments = ", ".join(f"{k}={_literal(v)}" for k, v in action.arguments.items())
            act = f"ACTION_TYPE : API_CALL\nACTION: {action.name}({arguments})"
        elif action.kind in ("answer", "fail"):
            stop = "FINAL_ANSWER" if action.kind == "answer" else "FAILED"
            act = f"ACTION_TYPE : STOP\nACTION: {stop}({_literal(action.text)})"
        else:
            raise ValueError(f"the ACTION format has no {action.kind} action")
        return f"{action.thought}\n{act}" if action.thought else act

    def parse(self, completion: Completion, ctx: TurnContext) -> Action:
        """:func:`~genteach.agents.tool_use.parse_action` against the task's APIs; a
        STOP message that copies the format example's wording, a call on the last turn
        and a call repeating an earlier one are malformed too."""
        text = completion.text.strip()
        parsed = parse_action(text, [tool_api(t) for t in ctx.tools])
        thought = text[: text.rfind("ACTION_TYPE")].strip()
        if parsed.kind != "api_call":
            if copies_format_example(parsed.value) is not None:
                raise ParseError(
                    f"the {parsed.name} message repeats the format example's wording: the "
                    "examples only show the format; write the message for this request, "
                    "from its own APIs and results"
                )
            kind: ActionKind = "answer" if parsed.kind == "final_answer" else "fail"
            return Action(kind=kind, text=parsed.value, thought=thought)
        if ctx.last and self.stop_on_last_turn:
            raise ParseError(
                "this is the last step of the conversation: stop now with FINAL_ANSWER(...) "
                "from the results so far, or FAILED(...) saying what is still missing"
            )
        action = Action(kind="call", name=parsed.name, arguments=parsed.arguments, thought=thought)
        if self.reject_repeated_calls and any(_same_call(action, h) for h in ctx.history):
            raise ParseError(
                f"{parsed.name} was already called with these arguments and its result "
                "is above: use it, make a different call, or stop"
            )
        return action

    def grammar(self, ctx: TurnContext) -> str | None:
        """:func:`~genteach.agents.tool_use.action_grammar` over the APIs that can still
        be called: none on the last turn, not an API without parameters that was already
        called (any call of it would repeat the earlier one), and, in a repair, not an API
        whose rejected call repeated an earlier one (use that result, call another API or
        stop)."""
        if ctx.last and self.stop_on_last_turn:
            return action_grammar([])
        apis = [tool_api(t) for t in ctx.tools]
        if self.reject_repeated_calls:
            calls = [h for h in ctx.history if h.kind == "call"]
            excluded = {c.name for c in calls if not _takes_arguments(c.name, apis)}
            for raw in ctx.rejected:
                try:
                    parsed = parse_action(raw, apis)
                except ParseError:
                    continue
                again = Action(kind="call", name=parsed.name, arguments=parsed.arguments)
                if parsed.kind == "api_call" and any(_same_call(again, c) for c in calls):
                    excluded.add(parsed.name)
            apis = [a for a in apis if a.name not in excluded]
        return action_grammar(apis)

    def observation(self, prompts: PromptLibrary, action: Action, result: StepResult) -> Message:
        return message(
            "user",
            prompts.render(
                self.observation_template,
                api_name=action.name,
                output=result.observation,
                error=result.error,
            ),
        )

    def action_span(self, completion: Completion) -> str:
        text = completion.text.strip()
        start = text.rfind("ACTION_TYPE")
        return text[start:] if start >= 0 else text


def _literal(value: Any) -> str:
    """A value as the ACTION format writes it: JSON (strings in double quotes)."""
    return json.dumps(value, ensure_ascii=False)


def _takes_arguments(name: str, apis: list[ApiSpec]) -> bool:
    return any(a.name == name and a.parameters for a in apis)


def _same_call(a: Action, b: Action) -> bool:
    return b.kind == "call" and a.name == b.name and dict(a.arguments) == dict(b.arguments)


__all__ = ["ToolUseFormat", "api_tool", "tool_api"]
