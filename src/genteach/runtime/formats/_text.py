"""What the text formats share: templates by name, the model's own text as its turn, an
``example`` function that lets instruction templates show turns written by the format's
own renderer, and small parsing helpers."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from genteach.agents.base import REPAIR_TEMPLATE, RETRY_NOTE_TEMPLATE
from genteach.agents.parsing import ParseError
from genteach.models.base import Completion, Message, ToolSpec, message
from genteach.prompts import PromptLibrary
from genteach.runtime.base import Action, ActionKind, Observation, Placement, TurnContext


class TextFormat:
    """Base of the formats whose turns are plain text (every shipped format but function
    calling). A subclass sets the template names and implements :meth:`write`,
    :meth:`parse`, :meth:`grammar` and :meth:`observation`.

    Args:
        placement: where the instructions go (see :data:`~genteach.runtime.Placement`).
        stop: stop sequences sent with every call.
        instructions_template / hint_template: templates of the instructions and of the
            one-line description used in repair requests.
        task_template: the first user turn (``text``, ``after_demos``); ``None``: the
            observation's text as it is.
        acknowledgement_template: a scripted assistant reply to instructions placed in
            a user turn; ``None``: no reply.
    """

    name = "text"

    def __init__(
        self,
        *,
        placement: Placement,
        stop: tuple[str, ...],
        instructions_template: str,
        hint_template: str,
        task_template: str | None = None,
        acknowledgement_template: str | None = None,
    ) -> None:
        self.placement: Placement = placement
        self.stop = tuple(stop)
        self.instructions_template = instructions_template
        self.hint_template = hint_template
        self.task_template = task_template
        self.acknowledgement_template = acknowledgement_template

    def templates(self) -> list[str]:
        """Every template this format renders (read by the checks made before a run and
        recorded in run.json)."""
        own = [v for k, v in vars(self).items() if k.endswith("_template") and isinstance(v, str)]
        return [*own, REPAIR_TEMPLATE, RETRY_NOTE_TEMPLATE]

    # -- what subclasses implement -------------------------------------------------------
    def write(self, action: Action) -> str:
        """The text of a turn that takes ``action``."""
        raise NotImplementedError

    def variables(self, first: Observation) -> dict[str, Any]:
        """Extra variables of the instructions template."""
        return {}

    # -- shared --------------------------------------------------------------------------
    def action_text(self, action: Action) -> str:
        """``action`` as :meth:`write` writes it without its thought (compared by BLEU)."""
        return self.write(replace(action, thought=""))

    def example(self, kind: ActionKind, thought: str = "", text: str = "", name: str = "") -> str:
        """A turn written by :meth:`write`, for instruction templates (``{{ example(...) }}``):
        the template gives the placeholders, the format gives the syntax."""
        return self.write(Action(kind=kind, name=name, text=text, thought=thought))

    def instructions(self, prompts: PromptLibrary, first: Observation) -> str:
        return prompts.render(
            self.instructions_template, example=self.example, **self.variables(first)
        )

    def acknowledgement(self, prompts: PromptLibrary) -> str | None:
        if self.acknowledgement_template is None:
            return None
        return prompts.render(self.acknowledgement_template)

    def task(self, prompts: PromptLibrary, first: Observation, *, after_demos: bool) -> str:
        if self.task_template is None:
            return first.text
        return prompts.render(self.task_template, text=first.text, after_demos=after_demos)

    def hint(self, prompts: PromptLibrary) -> str:
        return prompts.render(self.hint_template)

    def tools(self, ctx: TurnContext) -> tuple[ToolSpec, ...]:
        return ()

    def turn(self, completion: Completion, action: Action) -> Message:
        return message("assistant", completion.text.strip())

    def render(self, action: Action) -> Message:
        return message("assistant", self.write(action))

    def action_span(self, completion: Completion) -> str:
        return completion.text.strip()


#: One line that names an action, e.g. ``Act: bash`` (``marker`` is ``Act``).
def from_last_marker(text: str, marker: str) -> str:
    """``text`` from its last ``marker:`` line on (the whole text if it has none): the
    part of an output that states its action, for BLEU."""
    lines = marker_lines(marker, text)
    return text[lines[-1].start() :].strip() if lines else text.strip()


def marker_lines(marker: str, text: str) -> list[re.Match[str]]:
    """Every line of ``text`` that starts (after blanks) with ``marker:``."""
    pattern = re.compile(rf"^[ \t]*{re.escape(marker)}[ \t]*:[ \t]*(?P<rest>.*?)[ \t]*$", re.M)
    return list(pattern.finditer(text))


def fenced_block(text: str, language: str, what: str) -> str:
    """The code of the one ```language block that ``text`` must consist of (blank space
    around it allowed). Raises :class:`ParseError` naming ``what`` (e.g. ``"'Act: bash'"``)."""
    m = re.match(rf"\s*```{re.escape(language)}[ \t]*\n(?P<body>.*)\Z", text, re.DOTALL)
    if m is None:
        raise ParseError(f"{what} must be followed by a ```{language} code block")
    body = m.group("body")
    end = body.find("```")
    if end < 0:
        raise ParseError(f"the {language} code block is not closed with ``` (cut off?)")
    if body[end + 3 :].strip():
        raise ParseError(f"write nothing after the {language} code block")
    code = body[:end].strip("\n").rstrip()
    if not code.strip():
        raise ParseError(f"the {language} code block is empty")
    return code


_PLACEHOLDER = re.compile(r"<[^<>\n]{1,200}>")


def check_thought(thought: str) -> None:
    """Raise :class:`ParseError` when a turn's reasoning is only a placeholder in angle
    brackets (``<your reasoning>``, ``<the owner knows the data>``): the model copied the
    format's example instead of reasoning, and a trained turn would teach it to."""
    if _PLACEHOLDER.fullmatch(thought.strip()):
        raise ParseError(
            f"the reasoning {thought.strip()[:60]!r} is a placeholder in angle brackets: "
            "write your own reasoning in its place"
        )


def truncate(text: str, limit: int | None, keep: int) -> tuple[str, bool]:
    """``text`` cut to its first ``keep`` characters when longer than ``limit`` (AgentBench
    cuts OS output over 800 characters to 780), and whether it was cut."""
    if limit is None or len(text) <= limit:
        return text, False
    return text[:keep], True


__all__ = [
    "TextFormat",
    "check_thought",
    "fenced_block",
    "from_last_marker",
    "marker_lines",
    "truncate",
]
