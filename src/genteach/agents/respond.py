"""The responder: the teacher's answer to a student-facing conversation.

Its system prompt (not part of the record: the student learns the answer without it, as
in Orca's prompt erasure) holds the task type's description and the answer format of the
question's form: for closed forms the answer ends with one ``Final answer:`` line that
the verifier reads (:mod:`genteach.keys`); the parser sends an answer without it back.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from genteach.agents.base import Agent, PromptEcho
from genteach.agents.parsing import ParseError
from genteach.agents.views import CategoryView, SkillView
from genteach.keys import final_answer
from genteach.models.base import Message, message

#: A closed-form answer (Lark, llguidance's dialect): the reasoning, then one last line
#: ``Final answer: ...`` and nothing after it. One lexeme, as lexemes are greedy: the
#: negation allows no line break after a ``Final answer:``, so there is one, and last.
FINAL_LINE_GRAMMAR = "\n".join(
    [
        "start: ANSWER",
        r"ANSWER: /((.|\n)*\n)?Final answer: [^\n]*[^\s][^\n]*/"
        r" & ~/(.|\n)*Final answer:[^\n]*\n(.|\n)*/",
    ]
)


class RespondInput(BaseModel):
    """The conversation the student will see, up to the turn to answer, and how the
    question is put: ``form`` (``choice``, ``items``, ``matching``, ``labels``, ``short``
    or ``open``) and ``question``, the key's view (labels of options, label set...)."""

    skill: SkillView
    category: CategoryView
    conversation: list[Message] = Field(min_length=1)
    form: str = "open"
    question: dict[str, Any] = Field(default_factory=dict)


class Answer(BaseModel):
    """The teacher's answer (plain text)."""

    text: str = Field(min_length=1)


class Responder(Agent[RespondInput, Answer]):
    """Answers the student's last turn as a careful teacher.

    A system message of the student conversation (e.g. a system prompt variant) is
    appended to the teacher's system prompt, so the answer follows it too.
    """

    input_model = RespondInput
    output_model = Answer
    default_system_template = "common/respond_system.j2"
    default_user_template = "common/respond_system.j2"  # unused: the turns are the conversation
    format_hint = "the answer itself, in plain text, ending as the answer format says"

    @property
    def wants_json(self) -> bool:
        return False

    def render(self, inputs: RespondInput) -> list[Message]:
        variables = self.variables(inputs)
        system = self.prompts.render(self.system_template, **variables)
        turns = list(inputs.conversation)
        if turns and turns[0]["role"] == "system":
            if turns[0]["content"].strip():
                system = f"{system}\n\n{turns[0]['content']}"
            turns = turns[1:]
        return [message("system", system), *turns]

    def output_grammar(self, inputs: RespondInput) -> str | None:
        """For a closed form, any text that ends with one ``Final answer:`` line, as
        constrained decoding enforces it (the embedded model); ``None`` for open forms."""
        return None if inputs.form == "open" else FINAL_LINE_GRAMMAR

    def drop_echo(self, raw: str, guard: PromptEcho) -> str:
        """Small models often open with the answer format they were given, then answer:
        leading paragraphs that copy the instructions are cut off when an answer of its
        own follows them (an answer that is only an echo is still sent back)."""
        paragraphs = re.split(r"\n\s*\n", raw.strip())
        while len(paragraphs) > 1 and guard.copied(paragraphs[0], self.echo_words):
            paragraphs.pop(0)
        return "\n\n".join(paragraphs)

    def parse(self, text: str, inputs: RespondInput | None = None) -> Answer:
        answer = text.strip()
        if not answer:
            raise ParseError("empty answer")
        if answer.startswith('{"skip"'):
            raise ParseError("the answer is a JSON skip object, not an answer")
        if inputs is not None and inputs.form != "open" and final_answer(answer) is None:
            raise ParseError(
                'the answer does not end with the line "Final answer: ..." that the answer '
                "format asks for"
            )
        return Answer(text=answer)


__all__ = ["FINAL_LINE_GRAMMAR", "Answer", "RespondInput", "Responder"]
