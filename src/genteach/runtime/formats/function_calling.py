"""OpenAI function calling: the functions travel with the request (``ModelRequest.tools``),
the model answers with tool calls or with plain text.

An assistant turn with tool calls is ``Action(kind="tool_calls", calls=...)``, each call
``Action(kind="call", name=..., arguments=..., call_id=...)``; each result goes back as a
``tool`` turn carrying the call's id. A turn of plain text is the answer
(``Action(kind="answer")``), which ends the episode in most environments.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from genteach.agents.base import REPAIR_TEMPLATE, RETRY_NOTE_TEMPLATE
from genteach.agents.parsing import ParseError
from genteach.models.base import Completion, Message, ToolCall, ToolSpec, message
from genteach.prompts import PromptLibrary
from genteach.runtime.base import Action, Observation, Placement, StepResult, TurnContext


class FunctionCallingFormat:
    """Function calling: tools in the request, tool calls in assistant turns, results in
    ``tool`` turns.

    Args:
        placement: where the instructions go (``"system"`` by default).
        instructions_template: short instructions on using the functions and answering;
            ``None``: none (the chat template already lists the tools).
        hint_template: the one-line description used in repair requests.
        error_template: how a failed call's message is returned in its ``tool`` turn.
        check_arguments: reject calls that miss a required argument or give one the
            function does not take (by the function's JSON schema).
    """

    name = "function_calling"
    stop: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        placement: Placement = "system",
        instructions_template: str | None = "runtime/function_calling/instructions.j2",
        hint_template: str = "runtime/function_calling/hint.j2",
        error_template: str = "runtime/function_calling/error.j2",
        check_arguments: bool = True,
    ) -> None:
        self.placement: Placement = placement
        self.instructions_template = instructions_template
        self.hint_template = hint_template
        self.error_template = error_template
        self.check_arguments = check_arguments

    def templates(self) -> list[str]:
        """Every template this format renders (read by the checks made before a run and
        recorded in run.json)."""
        own = [v for k, v in vars(self).items() if k.endswith("_template") and isinstance(v, str)]
        return [*own, REPAIR_TEMPLATE, RETRY_NOTE_TEMPLATE]

    def instructions(self, prompts: PromptLibrary, first: Observation) -> str:
        if self.instructions_template is None:
            return ""
        return prompts.render(self.instructions_template, tools=[t.name for t in first.tools])

    def acknowledgement(self, prompts: PromptLibrary) -> str | None:
        return None

    def task(self, prompts: PromptLibrary, first: Observation, *, after_demos: bool) -> str:
        return first.text

    def hint(self, prompts: PromptLibrary) -> str:
        return prompts.render(self.hint_template)

    def grammar(self, ctx: TurnContext) -> str | None:
        return None

    def tools(self, ctx: TurnContext) -> tuple[ToolSpec, ...]:
        return ctx.tools

    def parse(self, completion: Completion, ctx: TurnContext) -> Action:
        """Tool calls become a ``tool_calls`` action (each checked against the tools);
        plain text is the answer. A call without an id gets ``call_<turn>_<n>``."""
        text = completion.text.strip()
        if not completion.tool_calls:
            if not text:
                raise ParseError("empty answer: call a function or answer in text")
            return Action(kind="answer", text=text)
        tools = {t.name: t for t in ctx.tools}
        calls = []
        for n, call in enumerate(completion.tool_calls):
            spec = tools.get(call["name"])
            if spec is None:
                listed = ", ".join(tools) or "none"
                raise ParseError(f"{call['name']} is not one of the functions ({listed})")
            arguments = _arguments(call)
            if self.check_arguments:
                _check(spec, arguments)
            calls.append(
                Action(
                    kind="call",
                    name=call["name"],
                    arguments=arguments,
                    call_id=call["id"] or f"call_{ctx.turn}_{n}",
                )
            )
        return Action(kind="tool_calls", thought=text, calls=tuple(calls))

    def turn(self, completion: Completion, action: Action) -> Message:
        """The model's text and its calls (ids filled in as :meth:`parse` did)."""
        if action.kind != "tool_calls":
            return message("assistant", completion.text.strip())
        turn = message("assistant", completion.text.strip())
        turn["tool_calls"] = [
            ToolCall(id=call.call_id, name=raw["name"], arguments=raw["arguments"])
            for call, raw in zip(action.calls, completion.tool_calls, strict=True)
        ]
        return turn

    def render(self, action: Action) -> Message:
        if action.kind == "answer":
            return message("assistant", action.text)
        calls = action.steps
        if any(c.kind != "call" for c in calls):
            raise ValueError(f"function calling cannot write a {action.kind} action")
        turn = message("assistant", action.thought)
        turn["tool_calls"] = [
            ToolCall(
                id=c.call_id or f"call_{n}",
                name=c.name,
                arguments=json.dumps(dict(c.arguments), ensure_ascii=False),
            )
            for n, c in enumerate(calls)
        ]
        return turn

    def observation(self, prompts: PromptLibrary, action: Action, result: StepResult) -> Message:
        """A ``tool`` turn for a call's result; a ``user`` turn for anything else (an
        answer the environment did not accept)."""
        content = result.observation
        if result.error:
            content = prompts.render(self.error_template, error=result.observation)
        if action.kind != "call":
            return message("user", content)
        turn = message("tool", content)
        turn["tool_call_id"] = action.call_id
        turn["name"] = action.name
        return turn

    def action_text(self, action: Action) -> str:
        if action.kind == "call":
            return f"{action.name}({json.dumps(dict(action.arguments), sort_keys=True)})"
        if action.kind == "tool_calls":
            return "\n".join(self.action_text(c) for c in action.calls)
        return action.text

    def action_span(self, completion: Completion) -> str:
        """The calls as ``name(arguments)`` lines, else the text."""
        if completion.tool_calls:
            return "\n".join(f"{c['name']}({c['arguments']})" for c in completion.tool_calls)
        return completion.text.strip()


def _arguments(call: ToolCall) -> dict[str, Any]:
    raw = call["arguments"].strip() or "{}"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"{call['name']}: the arguments are not valid JSON: {exc.msg} at column {exc.colno}"
        ) from exc
    if not isinstance(value, dict):
        raise ParseError(f"{call['name']}: the arguments must be a JSON object")
    return value


def _check(spec: ToolSpec, arguments: Mapping[str, Any]) -> None:
    """Required arguments present and no argument the schema does not name."""
    properties = spec.parameters.get("properties")
    if isinstance(properties, dict):
        unknown = sorted(set(arguments) - set(properties))
        if unknown:
            raise ParseError(f"{spec.name} has no parameter {', '.join(unknown)}")
    missing = [p for p in spec.parameters.get("required", []) if p not in arguments]
    if missing:
        raise ParseError(f"{spec.name} is missing required parameter {', '.join(missing)}")


__all__ = ["FunctionCallingFormat"]
