"""Task agents of the RAG skill: questions about a numbered document set.

Tasks on a :class:`~genteach.material.DocumentSet` are written by the ordinary
instruction agent: a ``cited`` key is checked against the set itself
(:meth:`~genteach.keys.CitedKey.fit_material`). :class:`WithheldDocumentsAgent` writes the
unanswerable variant: an answerable question whose supporting documents code then removes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from genteach.agents.instruct import InstructInput, SeedInstructionAgent, TaskDraft
from genteach.agents.parsing import ParseError
from genteach.keys import CitedKey, UnanswerableKey, grounded_in
from genteach.material import DocumentSet, Material


class WithheldDraft(TaskDraft):
    """A task whose supporting documents are withheld from the set it is shown with."""

    # Set by code (never asked of a model): the ids of the documents removed.
    withheld: SkipJsonSchema[list[str]] = Field(default_factory=list)

    def material(self, base: Material) -> Material:
        if self.withheld and isinstance(base, DocumentSet):
            return base.without(self.withheld)
        return base


class WithheldDocumentsAgent(SeedInstructionAgent):
    """Writes questions that only their supporting documents answer, then withholds
    those documents: the task is shown with the rest of the set and its key becomes
    ``unanswerable`` (the response must say the documents do not give the answer).

    The model writes an ordinary ``cited`` key, checked against the whole set first; code
    then checks that no remaining document states the answer, so the question really
    cannot be answered from what the student sees.
    """

    draft_model: ClassVar[type[TaskDraft]] = WithheldDraft

    def __init__(self, name: str, **kwargs: Any) -> None:
        kwargs["key_kinds"] = [CitedKey]
        super().__init__(name, **kwargs)

    def check_task(self, i: int, task: TaskDraft, inputs: InstructInput | None) -> None:
        super().check_task(i, task, inputs)
        assert isinstance(task, WithheldDraft)
        if inputs is None or not isinstance(task.key, CitedKey):
            return
        docs = inputs.material
        if not isinstance(docs, DocumentSet):
            raise ParseError(f"task {i}: this task type needs a document set")
        problem = task.key.fit_material(docs)
        if problem:
            raise ParseError(f"task {i}: {problem}")
        support = task.key.support_ids
        left = docs.without(support)  # raises when nothing would be left
        for doc in left.documents:
            if grounded_in(task.key.answer, doc.snippet):
                raise ParseError(
                    f"task {i}: document {doc.id} also states the answer "
                    f'"{task.key.answer[:60]}": ask about a fact only the supporting documents give'
                )
        quote = task.key.support[0].quote.strip()
        task.withheld = support
        # shown: the cited key, so the question keeps its form (JSON or prose with citations)
        task.key = UnanswerableKey(
            missing=f'the document that states "{quote}"', shown=task.key.written()
        )


__all__ = ["WithheldDocumentsAgent", "WithheldDraft"]
