"""The web format: one grounded action per turn on a page's element ids::

    Thought: The search box is e3.
    Action: type [e3] "trail shoes"

The actions: ``click [e2]``, ``type [e3] "text"``, ``select [e5] "option"``, ``scroll
down`` / ``scroll up``, ``answer "..."`` and ``stop "reason"``. Quoted text stays on one
line, with ``\\"`` for a double quote and ``\\\\`` for a backslash (curly quotes are read
too). A "Thought:" line is optional; exactly one "Action:" line ends the turn.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from genteach.agents.parsing import ParseError
from genteach.models.base import Completion, Message, message
from genteach.prompts import PromptLibrary
from genteach.runtime.base import Action, ActionKind, Placement, StepResult, TurnContext
from genteach.runtime.formats._text import TextFormat, from_last_marker, marker_lines

#: The verbs of the format, in the order the instructions list them.
VERBS: tuple[str, ...] = ("click", "type", "select", "scroll", "answer", "stop")
_ELEMENT = r"\[[ \t]*(?P<element>e[0-9]+)[ \t]*\]"
_QUOTED = r"(?P<quoted>[\"“”].*)"
_SHAPES = {
    "click": re.compile(rf"{_ELEMENT}"),
    "type": re.compile(rf"{_ELEMENT}[ \t]*{_QUOTED}"),
    "select": re.compile(rf"{_ELEMENT}[ \t]*{_QUOTED}"),
    "scroll": re.compile(r"(?P<direction>up|down)", re.IGNORECASE),
    "answer": re.compile(_QUOTED),
    "stop": re.compile(_QUOTED),
}
_USAGE = {
    "click": "click [e2]",
    "type": 'type [e3] "text"',
    "select": 'select [e5] "option"',
    "scroll": "scroll down or scroll up",
    "answer": 'answer "the answer"',
    "stop": 'stop "the reason"',
}


class WebFormat(TextFormat):
    """Actions on a web page's elements, one per turn, after an optional thought.

    ``click``/``type``/``select``/``scroll`` become ``Action(kind="call", name=<verb>,
    arguments={"element": ..., "text": ..., "option": ..., "direction": ...})``; ``answer``
    an ``answer`` action and ``stop`` a ``finish`` action whose text is the reason.
    Observations are user turns that start with "Observation:".

    Args:
        placement: where the instructions go (default the system turn).
        require_thought: a turn without a "Thought:" line is malformed, and the grammar
            requires one.
        thought_tokens: the grammar's bound on the thought line, in tokens.
        text_chars: the grammar's bound on quoted text, in characters.
        stop: stop sequences (by default a line that opens an observation, so a model that
            goes on to invent the page is cut there).
    """

    name = "web"

    def __init__(
        self,
        *,
        placement: Placement = "system",
        require_thought: bool = False,
        thought_tokens: int = 200,
        text_chars: int = 300,
        stop: tuple[str, ...] = ("\nObservation:",),
        instructions_template: str = "runtime/web/instructions.j2",
        hint_template: str = "runtime/web/hint.j2",
        task_template: str | None = "runtime/web/task.j2",
        observation_template: str = "runtime/web/observation.j2",
    ) -> None:
        super().__init__(
            placement=placement,
            stop=stop,
            instructions_template=instructions_template,
            hint_template=hint_template,
            task_template=task_template,
        )
        self.require_thought = require_thought
        self.thought_tokens = thought_tokens
        self.text_chars = text_chars
        self.observation_template = observation_template

    def example(
        self,
        kind: ActionKind,
        thought: str = "",
        text: str = "",
        name: str = "",
        **arguments: str,
    ) -> str:
        """A turn written by :meth:`write`, for the instructions template:
        ``{{ example("call", name="type", element="e3", text="Oslo") }}``."""
        if kind == "call" and name == "type":
            arguments = {**arguments, "text": text}
        return self.write(
            Action(kind=kind, name=name, arguments=arguments, text=text, thought=thought)
        )

    def write(self, action: Action) -> str:
        args = action.arguments
        if action.kind == "call":
            verb = action.name
            if verb == "click":
                act = f"click [{args['element']}]"
            elif verb == "type":
                act = f"type [{args['element']}] {_quote(str(args.get('text', '')))}"
            elif verb == "select":
                act = f"select [{args['element']}] {_quote(str(args.get('option', '')))}"
            elif verb == "scroll":
                act = f"scroll {args.get('direction', 'down')}"
            else:
                raise ValueError(f"the web format has no {verb!r} action")
        elif action.kind in ("answer", "finish", "fail"):
            if not action.text.strip():
                raise ValueError(f"a web {action.kind} action needs a text (the answer or reason)")
            verb = "answer" if action.kind == "answer" else "stop"
            act = f"{verb} {_quote(action.text)}"
        else:
            raise ValueError(f"the web format has no {action.kind} action")
        line = f"Action: {act}"
        return f"Thought: {action.thought}\n{line}" if action.thought else line

    def parse(self, completion: Completion, ctx: TurnContext) -> Action:
        text = completion.text.strip()
        acts = marker_lines("Action", text)
        if not acts:
            raise ParseError(
                "no 'Action:' line: end the turn with one action, such as Action: click [e2]"
            )
        if len(acts) > 1:
            raise ParseError("more than one 'Action:' line: take exactly one action per turn")
        act = acts[0]
        if text[act.end() :].strip():
            raise ParseError("write nothing after the 'Action:' line")
        before = text[: act.start()].strip()
        think = re.match(r"Thought[ \t]*:", before)
        if before and think is None:
            raise ParseError(
                "write your reasoning on one 'Thought:' line before the action, or nothing"
            )
        thought = before[think.end() :].strip() if think else ""
        if self.require_thought and not thought:
            raise ParseError("no 'Thought:' line before the action: write your thought, then act")
        return replace(_action(act.group("rest")), thought=thought)

    def grammar(self, ctx: TurnContext) -> str | None:
        """An optional thought line (required with ``require_thought``), then one action
        line; nothing after it. Quoted text stays on one line (escapes: ``\\"`` and
        ``\\\\``); only ``type`` may write an empty one."""
        thought = r'"Thought: " thought "\n"'
        opening = thought if self.require_thought else f"({thought})?"
        char = r'([^"\\\n]|\\["\\])'
        first = r'([^"\\\n \t]|\\["\\])'
        n = self.text_chars
        return "\n".join(
            [
                f'start: {opening} "Action: " act',
                "act: click | type | select | scroll | answer | stop",
                'click: "click [" ID "]"',
                'type: "type [" ID "] " STRING',
                'select: "select [" ID "] " TEXT',
                'scroll: "scroll " ("down" | "up")',
                'answer: "answer " TEXT',
                'stop: "stop " TEXT',
                f"thought[max_tokens={self.thought_tokens}]: THOUGHT",
                r"THOUGHT: /[^\n]+/ & ~/.*Action[ \t]*:.*/",
                "ID: /e[0-9]{1,5}/",
                f'STRING: /"{char}{{0,{n}}}"/',
                f'TEXT: /"{first}{char}{{0,{n - 1}}}"/',
            ]
        )

    def observation(self, prompts: PromptLibrary, action: Action, result: StepResult) -> Message:
        return message(
            "user",
            prompts.render(
                self.observation_template, output=result.observation, error=result.error
            ),
        )

    def action_span(self, completion: Completion) -> str:
        return from_last_marker(completion.text, "Action")


def _action(rest: str) -> Action:
    """The action of an ``Action:`` line's ``rest``."""
    m = re.match(r"(?P<verb>[A-Za-z_]+)[ \t]*(?P<args>.*)\Z", rest)
    if m is None:
        raise ParseError(f"'Action:' names no action: use one of {', '.join(VERBS)}")
    verb, args = m.group("verb").lower(), m.group("args").strip()
    if verb not in VERBS:
        raise ParseError(f"unknown action {m.group('verb')!r}: use one of {', '.join(VERBS)}")
    shape = _SHAPES[verb].fullmatch(args)
    if shape is None:
        raise ParseError(f"write the action as {_USAGE[verb]}, got {rest!r}")
    found: dict[str, Any] = shape.groupdict()
    quoted = _unquote(found["quoted"], verb) if "quoted" in found else ""
    if verb == "click":
        return Action(kind="call", name="click", arguments={"element": found["element"]})
    if verb == "type":
        return Action(
            kind="call", name="type", arguments={"element": found["element"], "text": quoted}
        )
    if verb == "select":
        if not quoted.strip():
            raise ParseError('select needs an option in double quotes: select [e5] "option"')
        return Action(
            kind="call", name="select", arguments={"element": found["element"], "option": quoted}
        )
    if verb == "scroll":
        return Action(
            kind="call", name="scroll", arguments={"direction": found["direction"].lower()}
        )
    if verb == "answer":
        if not quoted.strip():
            raise ParseError('the answer is empty: write it in the quotes, answer "..."')
        return Action(kind="answer", text=quoted)
    if not quoted.strip():
        raise ParseError('give the reason in the quotes: stop "done", or stop "<what is missing>"')
    return Action(kind="finish", text=quoted)


def _unquote(quoted: str, verb: str) -> str:
    """The text of a double-quoted string (curly quotes accepted): ``\\"`` and ``\\\\``
    are read as escapes when every backslash starts one; otherwise the text is taken as
    written (``"C:\\temp"``)."""
    if len(quoted) < 2 or quoted[0] not in '"“”' or quoted[-1] not in '"“”':
        raise ParseError(
            f"the text of {verb} is not closed with a double quote (cut off?): "
            f"write it as {_USAGE[verb]}"
        )
    inner = quoted[1:-1]
    if re.fullmatch(r'([^"\\]|\\["\\])*', inner):
        inner = re.sub(r'\\(["\\])', r"\1", inner)
    return inner.strip()


def _quote(text: str) -> str:
    """``text`` in double quotes on one line, ``"`` and ``\\`` escaped."""
    flat = " ".join(text.splitlines())
    return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'


__all__ = ["VERBS", "WebFormat"]
