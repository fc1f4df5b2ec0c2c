"""The user simulator of multi-turn conversations (the follow_up skill): it reads a
conversation so far and writes the user's next message, making one *move* drawn in code
(ask for an example, challenge a claim, ask for a summary, change a constraint...).

A move may set limits on the reply that code can check ("in at most 40 words", "use the
word 'toll'"): the simulator states them in its message and gives them in ``constraints``;
the parser turns them into a :class:`~genteach.keys.ConstraintsKey` and checks that the
message states each one, so the reply to that turn is verified like a task's answer.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from genteach.agents.base import Agent
from genteach.agents.parsing import ParseError, shares_words
from genteach.agents.views import CategoryView, SkillView
from genteach.keys import ConstraintsKey, TextFormat, count_words, normalize
from genteach.models.base import Message

#: The fewest and most words of a user message.
MIN_MESSAGE_WORDS = 4
MAX_MESSAGE_WORDS = 150
#: A message repeating this many consecutive words of the assistant's last reply quotes
#: instead of asking; one repeating this many of an earlier follow-up repeats itself.
QUOTE_WORDS = 12
REPEAT_WORDS = 8


class Move(BaseModel):
    """One kind of follow-up a user may make (taxonomy data: the conversation stage's
    ``moves``). ``constraint``: the message must set a limit code can check (a word limit,
    required or banned words, a structure); ``weight``: how often it is drawn."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    description: str
    constraint: bool = False
    weight: float = Field(default=1.0, ge=0)


class FollowUpInput(BaseModel):
    """What the user simulator sees: the conversation so far (the user's first message,
    with its material, and each reply; the last turn is the assistant's), the move to make
    and where the conversation stands (``turn``: the number of the user message to write;
    ``turns``: the user messages planned in all)."""

    skill: SkillView
    category: CategoryView
    conversation: list[Message] = Field(min_length=2)
    move: Move
    turn: int = Field(ge=2)
    turns: int = Field(ge=2)


class TurnConstraints(BaseModel):
    """The limits a user message sets on the reply, each stated in the message."""

    model_config = ConfigDict(extra="forbid")

    max_words: int | None = Field(
        default=None, ge=5, description="the most words the message allows the reply"
    )
    min_words: int | None = Field(
        default=None, ge=1, description="the fewest words the message asks of the reply"
    )
    include: list[str] = Field(
        default_factory=list,
        max_length=5,
        description="words or phrases the message tells the reply to use, each quoted in it",
    )
    exclude: list[str] = Field(
        default_factory=list,
        max_length=5,
        description="words or phrases the message tells the reply not to use, each quoted in it",
    )
    format: TextFormat = Field(
        default="any", description="the structure the message asks the whole reply to have"
    )
    line_count: int | None = Field(
        default=None, ge=1, le=30, description="the exact number of lines asked for"
    )

    def key(self) -> ConstraintsKey:
        """The constraints as a key that checks the reply."""
        return ConstraintsKey(**self.model_dump())


class FollowUp(BaseModel):
    """The user simulator's answer: the next user message and the limits it sets."""

    model_config = ConfigDict(extra="forbid")

    message: str = Field(
        min_length=1,
        description="the user's next message, in the user's own words, about the "
        "assistant's last reply",
    )
    constraints: TurnConstraints | None = Field(
        default=None,
        description="the limits the message sets on the reply",
    )

    def key(self) -> ConstraintsKey | None:
        """The key that checks the reply to this message, or None (nothing code can check)."""
        return None if self.constraints is None else self.constraints.key()


class UserSimulator(Agent[FollowUpInput, FollowUp]):
    """Writes the user's next message of a conversation, making the move it is given.

    The parser refuses a message that is too short or too long, quotes the assistant's
    last reply at length, repeats an earlier follow-up, lacks the checkable limit its move
    requires, or gives a limit its wording does not state. A ``skip`` answer (the move
    does not fit this conversation) raises :class:`~genteach.agents.AgentSkipped`.
    """

    input_model = FollowUpInput
    output_model = FollowUp
    default_system_template = "common/user_simulator_system.j2"
    default_user_template = "common/user_simulator_user.j2"

    def parse(self, text: str, inputs: FollowUpInput | None = None) -> FollowUp:
        out = super().parse(text, inputs)
        words = count_words(out.message)
        if words < MIN_MESSAGE_WORDS:
            raise ParseError(f"the message has {words} words: write a complete user message")
        if words > MAX_MESSAGE_WORDS:
            raise ParseError(
                f"the message has {words} words, more than {MAX_MESSAGE_WORDS}: keep it to what "
                "a user would type"
            )
        key = out.key()
        if key is not None:
            problem = key.fit_task(out.message, None)
            if problem is not None:
                raise ParseError(f"constraints: {problem}")
            # What the message does not state was dropped from the key: keep only the rest.
            kept = key.model_dump(include=set(TurnConstraints.model_fields))
            out = out.model_copy(update={"constraints": TurnConstraints.model_validate(kept)})
        if inputs is None:
            return out
        if inputs.move.constraint and key is None:
            raise ParseError(
                f'the move "{inputs.move.name}" sets a limit code can check: state it in the '
                'message and give it in "constraints"'
            )
        replies = [m["content"] for m in inputs.conversation if m["role"] == "assistant"]
        if replies and shares_words(out.message, replies[-1], QUOTE_WORDS):
            raise ParseError(
                "the message copies a long run of words from the assistant's last reply: ask "
                "in the user's own words, quoting at most a few words"
            )
        asked = [m["content"] for m in inputs.conversation if m["role"] == "user"][1:]
        if any(
            normalize(out.message) == normalize(a) or shares_words(out.message, a, REPEAT_WORDS)
            for a in asked
        ):
            raise ParseError(
                "the message repeats an earlier user message: make the move named for this turn"
            )
        return out


__all__ = [
    "FollowUp",
    "FollowUpInput",
    "Move",
    "TurnConstraints",
    "UserSimulator",
]
