"""A scripted model client for tests and examples: no network, exact answers.

Use it to test your own agents and flows the way genteach tests its own (as DSPy's
``DummyLM`` or httpx's ``MockTransport``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

from pydantic import BaseModel

from genteach.models.base import Completion, Message, ModelError, ModelRequest, Usage


class ScriptExhausted(ModelError):
    """The script has no answer left for a call."""


#: One scripted answer: its text, or a whole :class:`Completion` (tool calls, a finish
#: reason such as ``"length"``, samples).
Answer = str | Completion
Responder = Callable[[Sequence[Message]], Answer]


class ScriptedModel:
    """Answers calls from a script.

    Args:
        script: a list of answers given in call order; or a mapping from a marker
            string to a list of answers, where a call takes the next answer of the first
            marker found in its system message (robust to concurrent calls); or a function
            of the messages. An answer is a text or a whole :class:`Completion`.
        name: the model name written into records.

    Every call is kept in ``requests`` (the :class:`ModelRequest` objects) for assertions,
    and, for convenience, its messages, schema, grammar and temperature in ``calls``,
    ``schemas``, ``grammars`` and ``temperatures``.
    Usage counts are the number of whitespace-separated words, so they are deterministic.

    Example:
        >>> model = ScriptedModel({"content transformation agent": ['{"title": ...}']})
    """

    def __init__(
        self,
        script: Iterable[Answer] | Mapping[str, Iterable[Answer]] | Responder,
        *,
        name: str = "scripted",
    ) -> None:
        self._name = name
        self._fn: Responder | None = None
        self._queue: deque[Answer] | None = None
        self._routes: dict[str, deque[Answer]] | None = None
        if callable(script):
            self._fn = script
        elif isinstance(script, Mapping):
            self._routes = {k: deque(v) for k, v in script.items()}
        else:
            self._queue = deque(script)
        self.requests: list[ModelRequest] = []
        self.calls: list[list[Message]] = []
        self.schemas: list[type[BaseModel] | None] = []
        self.grammars: list[str | None] = []
        self.temperatures: list[float | None] = []

    @property
    def model_name(self) -> str:
        return self._name

    def answer(self, messages: Sequence[Message]) -> Answer:
        if self._fn is not None:
            return self._fn(messages)
        if self._queue is not None:
            if not self._queue:
                raise ScriptExhausted(f"no scripted answer left for call {len(self.calls)}")
            return self._queue.popleft()
        assert self._routes is not None
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
        for marker, answers in self._routes.items():
            if marker in system:
                if not answers:
                    raise ScriptExhausted(f"no scripted answer left for {marker!r}")
                return answers.popleft()
        raise ScriptExhausted(
            f"no route matches the system message: {system[:120]!r}... "
            f"(routes: {list(self._routes)})"
        )

    async def complete(self, request: ModelRequest) -> Completion:
        messages = list(request.messages)
        self.requests.append(request)
        self.calls.append(messages)
        self.schemas.append(request.response_schema)
        self.grammars.append(request.grammar)
        self.temperatures.append(request.temperature)
        answer = self.answer(messages)
        if isinstance(answer, Completion):
            return answer if answer.model else replace(answer, model=self._name)
        prompt = sum(len(m["content"].split()) for m in messages)
        return Completion(
            text=answer, usage=Usage(prompt, len(answer.split()), 1), model=self._name
        )

    def remaining(self) -> int:
        """Answers not yet used (scripts and routes)."""
        if self._queue is not None:
            return len(self._queue)
        if self._routes is not None:
            return sum(len(v) for v in self._routes.values())
        return 0

    async def close(self) -> None:
        return None


__all__ = ["Answer", "ScriptExhausted", "ScriptedModel"]
