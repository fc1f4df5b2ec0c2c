"""The responder: the teacher's answer to a student-facing conversation."""

from __future__ import annotations

from pydantic import BaseModel, Field

from genteach.agents.base import Agent
from genteach.agents.parsing import ParseError
from genteach.agents.views import CategoryView, SkillView
from genteach.models.base import Message, message


class RespondInput(BaseModel):
    """The conversation the student will see, up to the turn to answer."""

    skill: SkillView
    category: CategoryView
    conversation: list[Message] = Field(min_length=1)


class Answer(BaseModel):
    """The teacher's answer (plain text)."""

    text: str = Field(min_length=1)


class Responder(Agent[RespondInput, Answer]):
    """Answers the student's last turn as a careful teacher.

    The system template holds the teacher's guidance (reason step by step, stay grounded
    in the given text...). It is not part of the record: the student learns the answer
    without the guidance (as in Orca's prompt erasure). A system message of the student
    conversation (e.g. tool-use instructions) is appended to the teacher's system prompt.
    """

    input_model = RespondInput
    output_model = Answer
    default_system_template = "common/respond_system.j2"
    default_user_template = (
        "common/respond_system.j2"  # unused: the user turns are the conversation
    )
    format_hint = "the answer itself, in plain text"

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

    def parse(self, text: str, inputs: RespondInput | None = None) -> Answer:
        answer = text.strip()
        if not answer:
            raise ParseError("empty answer")
        if answer.startswith('{"skip"'):
            raise ParseError("the answer is a JSON skip object, not an answer")
        return Answer(text=answer)


__all__ = ["Answer", "RespondInput", "Responder"]
