"""The exceptions an agent's parser raises, in a module that imports nothing of genteach, so
that any module (materials, keys, runtime formats) can raise them without importing the
agents package. :mod:`genteach.agents.parsing` re-exports both."""

from __future__ import annotations


class ParseError(ValueError):
    """The model's answer does not have the required shape; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SkipItem(Exception):
    """The agent declined the input on purpose (its ``skip`` field), with a reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


__all__ = ["ParseError", "SkipItem"]
