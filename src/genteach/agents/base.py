"""The agent: a role with prompt templates, typed input and output, and one ``run()``.

``run()`` is three steps: a pure :meth:`Agent.render` (inputs -> messages), the model
call, and a pure :meth:`Agent.parse` (text -> output). Render and parse are testable
without any model. When parsing fails, the agent shows the model its answer and the
reason once per retry (``max_parse_retries``), then gives up with :class:`AgentError`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, TypeVar, get_args

from pydantic import BaseModel, Field, create_model

from genteach.agents.parsing import (
    ParseError,
    SkipItem,
    check_no_placeholders,
    format_placeholders,
    parse_json_as,
    shares_words,
)
from genteach.agents.shapes import json_shape
from genteach.models.base import Message, ModelClient, ModelRequest, Usage, message
from genteach.prompts import PromptLibrary

InT = TypeVar("InT", bound=BaseModel)
OutT = TypeVar("OutT", bound=BaseModel)

#: Seeds of the calls that ask again after an empty or cut-off answer step by this prime,
#: so they never meet the seeds of the next attempts (``seed + 1``, ``seed + 2``, ...).
_RETRY_SEED_STEP = 104_729

REPAIR_TEMPLATE = "common/repair.j2"
RETRY_NOTE_TEMPLATE = "common/retry_note.j2"
#: How a malformed answer is repaired (see :meth:`Agent.repair_messages`).
RepairStyle = Literal["show", "fresh"]
REPAIR_STYLES: tuple[str, ...] = get_args(RepairStyle)


class AgentError(Exception):
    """An agent could not produce a usable output; ``reason`` is what went wrong last."""

    def __init__(self, agent: str, reason: str, raw: str = "", usage: Usage | None = None):
        super().__init__(f"{agent}: {reason}")
        self.agent = agent
        self.reason = reason
        self.raw = raw
        self.usage = usage or Usage()


class AgentSkipped(AgentError):
    """The agent declined its input on purpose (e.g. the seed is unusable for the task)."""


@dataclass(frozen=True)
class AgentResult(Generic[OutT]):
    """An agent's parsed output, the raw text it came from, and the cost of getting it
    (``attempts``: the model calls it took, repairs and asking again included)."""

    output: OutT
    raw: str
    usage: Usage
    attempts: int


@dataclass(frozen=True)
class PromptEcho:
    """What an answer must not copy from its own prompt: the format's placeholders, and
    runs of words of the instructions (the system messages) that the material (the other
    messages) does not also contain."""

    placeholders: frozenset[str]
    instructions: tuple[str, ...]
    material: str

    @classmethod
    def of(cls, messages: Sequence[Message]) -> PromptEcho:
        system = [m["content"] for m in messages if m["role"] == "system"]
        other = "\n".join(m["content"] for m in messages if m["role"] != "system")
        return cls(frozenset(format_placeholders(system)), tuple(system), other)

    def copied(self, answer: str, n: int) -> str | None:
        """A run of ``n`` words of the instructions that ``answer`` repeats, or None."""
        if n <= 0:
            return None
        got = _grams(answer, n)
        if not got:
            return None
        allowed = _grams(self.material, n)
        for text in self.instructions:
            words = _words(text)
            for i in range(len(words) - n + 1):
                run = tuple(words[i : i + n])
                if run in got and run not in allowed:
                    return " ".join(run)
        return None


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _grams(text: str, n: int) -> set[tuple[str, ...]]:
    w = _words(text)
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


@functools.lru_cache(maxsize=256)
def list_bounded(
    model: type[BaseModel], field: str, min_length: int, max_length: int
) -> type[BaseModel]:
    """``model`` with its list field ``field`` held to ``min_length``..``max_length`` items:
    a narrower schema for :meth:`Agent.response_model` (made once per bounds)."""
    info = model.model_fields[field]
    bounded = Field(min_length=min_length, max_length=max_length, description=info.description)
    return create_model(  # type: ignore[call-overload]
        f"{model.__name__}_{min_length}_{max_length}",
        __base__=model,
        **{field: (info.annotation, bounded)},
    )


class Agent(Generic[InT, OutT]):
    """Base class of every genteach agent.

    Subclasses set ``input_model`` and ``output_model`` (pydantic) and usually the default
    templates; instances are configured, not subclassed, for each sub-category: the
    taxonomy gives each one its ``name``, its templates and its ``params`` (for example
    the guidance template of one question type).

    Args:
        name: the agent's name, recorded in each record's agent chain.
        prompts: the prompt library that renders the templates.
        system_template / user_template: template names under ``prompts/``.
        params: fixed template variables of this agent (merged under the inputs).
        temperature / max_tokens: sampling settings sent with each call.
        max_parse_retries: how many times a malformed answer is sent back for repair.
        repair_temperature: temperature of the repair calls; ``None`` (the default) keeps
            ``temperature``. A small model that samples almost greedily answers a repair
            request with the very answer it was told to fix; a hotter repair call (e.g.
            1.0) gives it another chance. Leave it unset for endpoints that accept only
            their default temperature (reasoning models).
        repair_style: ``"show"`` (the default) shows the model its rejected answer and
            asks for a repaired one; ``"fresh"`` asks again from the start with a note
            of what was wrong, without the rejected answer, for small models that copy
            an answer put in front of them (see :meth:`repair_messages`).
    """

    input_model: ClassVar[type[BaseModel]]
    #: The answer's model: a class attribute, or set per instance (agents whose answer
    #: shape depends on their configuration, e.g. the key kinds of a task type).
    output_model: type[BaseModel]
    default_system_template: ClassVar[str | None] = None
    default_user_template: ClassVar[str | None] = None
    #: A short description of the format, used when asking the model to repair an answer.
    format_hint: ClassVar[str] = "a single JSON object in the format described above"
    #: An answer repeating this many consecutive words of its system prompt (and not of
    #: the material in the user turns) copied its instructions; 0 turns the check off.
    echo_words: ClassVar[int] = 10
    #: Calls per run that ask again after an empty answer, without spending a repair.
    max_empty_retries: ClassVar[int] = 5
    #: Calls per run that ask again after an answer cut off at the token limit.
    max_cutoff_retries: ClassVar[int] = 1

    def __init__(
        self,
        name: str,
        *,
        prompts: PromptLibrary,
        system_template: str | None = None,
        user_template: str | None = None,
        params: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        max_parse_retries: int = 2,
        repair_temperature: float | None = None,
        repair_style: RepairStyle = "show",
    ) -> None:
        self.name = name
        self.prompts = prompts
        system = system_template or self.default_system_template
        user = user_template or self.default_user_template
        if system is None or user is None:
            raise ValueError(f"agent {name}: system_template and user_template are required")
        self.system_template: str = system
        self.user_template: str = user
        self.params: dict[str, Any] = dict(params or {})
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_parse_retries = max_parse_retries
        self.repair_temperature = repair_temperature
        if repair_style not in REPAIR_STYLES:
            raise ValueError(
                f"agent {name}: repair_style must be one of {', '.join(REPAIR_STYLES)}, "
                f"got {repair_style!r}"
            )
        self.repair_style: RepairStyle = repair_style
        self._shape: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, user_template={self.user_template!r})"

    # -- pure steps ---------------------------------------------------------------------
    def variables(self, inputs: InT) -> dict[str, Any]:
        """Template variables: the agent's params, then the inputs (inputs win), and, for
        JSON agents, ``output_shape``: the shape of the answer, generated from the output
        model (:func:`~genteach.agents.shapes.json_shape`), so the prompt's format section
        and the parser never disagree."""
        out = {**self.params, **inputs.model_dump()}
        if self.wants_json:
            out["output_shape"] = self.output_shape()
        return out

    def output_shape(self) -> str:
        """The shape of this agent's JSON answer, as shown in its prompt."""
        if self._shape is None:
            self._shape = json_shape(self.output_model, overrides=self.shape_overrides())
        return self._shape

    def shape_overrides(self) -> dict[str, str]:
        """Fields shown with another text than their own shape (see json_shape)."""
        return {}

    def render(self, inputs: InT) -> list[Message]:
        """Build the chat messages for ``inputs``. Pure: no model, no I/O."""
        variables = self.variables(inputs)
        return [
            message("system", self.prompts.render(self.system_template, **variables)),
            message("user", self.prompts.render(self.user_template, **variables)),
        ]

    def parse(self, text: str, inputs: InT | None = None) -> OutT:
        """Turn the model's text into the output model, or raise ParseError/SkipItem.

        ``inputs`` lets a parser check the answer against what was asked (e.g. that an
        API call names a listed API); pure either way."""
        return parse_json_as(text, self.output_model)  # type: ignore[return-value]

    # -- the call -----------------------------------------------------------------------
    async def run(
        self, client: ModelClient, inputs: InT, *, seed: int | None = None
    ) -> AgentResult[OutT]:
        """Render, call the model, parse; repair malformed answers a bounded number of times.

        An empty answer is asked for again (``max_empty_retries`` times per run, each time
        with another seed) and an answer cut off at the token limit once more
        (``max_cutoff_retries``); neither spends a repair. Past those budgets they count as
        malformed answers ("the answer was empty", "the answer was cut off at the token
        limit").

        Raises:
            AgentSkipped: the model declined the input (its ``skip`` answer), with reason.
            AgentError: no parseable answer after ``max_parse_retries`` repairs.
            genteach.models.ModelError: the model call itself failed.
        """
        first = self.render(inputs)
        # Format examples live in the system prompt; user messages carry content (a seed
        # may hold its own "<insert date>").
        guard = PromptEcho.of(first)
        usage = Usage()
        request = ModelRequest(
            messages=first,
            response_schema=self.response_model(inputs) if self.wants_json else None,
            grammar=self.output_grammar(inputs),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
        )
        last_reason = ""
        raw = ""
        rejected: list[tuple[str, str]] = []
        retries = {"empty": self.max_empty_retries, "cutoff": self.max_cutoff_retries}
        calls = 0
        for attempt in range(1, self.max_parse_retries + 2):
            if rejected:
                request = request.with_(
                    messages=self.repair_messages(first, rejected),
                    grammar=self.repair_grammar(inputs, [answer for answer, _ in rejected]),
                    temperature=self.temperature
                    if self.repair_temperature is None
                    else self.repair_temperature,
                )
            base = None if seed is None else seed + attempt - 1
            again = 0
            while True:
                completion = await client.complete(request.with_(seed=_retry_seed(base, again)))
                calls += 1
                usage = usage + completion.usage
                kind = "empty" if completion.empty else "cutoff" if completion.cut_off else ""
                if not kind or retries[kind] <= 0:
                    break
                retries[kind] -= 1
                again += 1
            raw = self.drop_echo(completion.text, guard)
            try:
                if completion.empty:
                    raise ParseError("the answer was empty")
                if completion.cut_off:
                    raise ParseError("the answer was cut off at the token limit")
                output = self.parse(raw, inputs)
                self.check_answer(raw, guard, [reason for _, reason in rejected])
            except SkipItem as exc:
                raise AgentSkipped(self.name, f"skipped: {exc.reason}", raw, usage) from exc
            except ParseError as exc:
                last_reason = exc.reason
                rejected.append((raw, exc.reason))
                continue
            return AgentResult(output=output, raw=raw, usage=usage, attempts=calls)
        raise AgentError(
            self.name,
            f"malformed answer after {self.max_parse_retries + 1} attempts: {last_reason}",
            raw,
            usage,
        )

    def drop_echo(self, raw: str, guard: PromptEcho) -> str:
        """The answer without what merely repeats the prompt, where that can be cut off
        cleanly (default: nothing is cut; an echo is then sent back by
        :meth:`check_answer`). Pure."""
        return raw

    def check_answer(self, raw: str, guard: PromptEcho, reasons: Sequence[str]) -> None:
        """Checks of a parsed answer against the call itself, for every agent: it must not
        contain a placeholder of the prompt's format example, nor copy a sentence of its
        instructions (small models repeat what they are shown), nor, after a ``"fresh"``
        repair, repeat the wording of the note about an earlier answer. Raises
        :class:`ParseError`. Pure."""
        check_no_placeholders(raw, guard.placeholders)
        copied = guard.copied(raw, self.echo_words)
        if copied is not None:
            raise ParseError(
                f'the answer copies the instructions ("{copied}"): write your own content'
            )
        if self.repair_style == "fresh":
            for reason in reasons:
                if shares_words(raw, reason, 8):
                    raise ParseError(
                        "the answer repeats the note about an earlier answer instead of "
                        "answering the request"
                    )

    def repair_messages(
        self, messages: Sequence[Message], rejected: Sequence[tuple[str, str]]
    ) -> list[Message]:
        """The messages of a repair call, from the first call's ``messages`` and the
        rejected ``(answer, reason)`` pairs so far (oldest first). Pure.

        ``repair_style == "show"``: the conversation goes on, each rejected answer
        followed by a request to repair it (``common/repair.j2``) with the reason.
        ``"fresh"``: the first messages again, the last one ending with a note of the
        reasons (``common/retry_note.j2``); the rejected answers are not shown.
        """
        if self.repair_style == "fresh":
            note = self.prompts.render(
                RETRY_NOTE_TEMPLATE,
                reasons=list(dict.fromkeys(reason for _, reason in rejected)),
                format_hint=self.format_hint,
            )
            last = messages[-1]
            if last["role"] == "user":
                return [*messages[:-1], message("user", f"{last['content']}\n\n{note}")]
            return [*messages, message("user", note)]
        out = list(messages)
        for answer, reason in rejected:
            out.append(message("assistant", answer))
            out.append(
                message(
                    "user",
                    self.prompts.render(
                        REPAIR_TEMPLATE, reason=reason, format_hint=self.format_hint
                    ),
                )
            )
        return out

    def response_model(self, inputs: InT) -> type[BaseModel]:
        """The JSON schema that constrains decoding for ``inputs`` (backends with
        structured output): by default :attr:`output_model`. A subclass can narrow it to
        what this call asks for (exactly ``n`` items), which a small model then cannot
        miss; the parser still checks the answer against :attr:`output_model`. Pure."""
        return self.output_model

    def output_grammar(self, inputs: InT) -> str | None:
        """A Lark grammar (llguidance dialect) the answer must match, for backends that
        constrain decoding (the embedded model); ``None`` (the default) for JSON agents,
        whose schema is used instead. Pure."""
        return None

    def repair_grammar(self, inputs: InT, rejected: Sequence[str]) -> str | None:
        """The grammar of a repair call, given this run's rejected answers (oldest first);
        by default :meth:`output_grammar`. A subclass can rule out what was rejected, so a
        constrained model cannot give the same wrong answer again. Pure."""
        return self.output_grammar(inputs)

    @property
    def wants_json(self) -> bool:
        """Whether the output is JSON (so structured output may be requested)."""
        return True


def _retry_seed(seed: int | None, again: int) -> int | None:
    """The seed of the ``again``-th call asking again for one attempt's answer (the
    attempt's own seed first); ``None`` stays ``None``."""
    if seed is None or again == 0:
        return seed
    return (seed + again * _RETRY_SEED_STEP) % 2**31


__all__ = ["Agent", "AgentError", "AgentResult", "AgentSkipped"]
