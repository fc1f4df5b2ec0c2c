"""A custom agent for the text-extraction example: the seed-instruction agent of the
entity_table task type, whose parser also checks that every answer key is a JSON table.

One small subclass is all it takes: render and the model call are inherited; ``parse``
adds the skill's own check, and a failure is sent back to the model for repair like any
other malformed answer.
"""

from __future__ import annotations

import json

from genteach.agents import InstructInput, InstructionBatch, ParseError, SeedInstructionAgent


class TableTaskAgent(SeedInstructionAgent):
    """Writes entity-table tasks; each answer key must be a JSON array of objects."""

    def parse(self, text: str, inputs: InstructInput | None = None) -> InstructionBatch:
        batch = super().parse(text, inputs)
        for i, task in enumerate(batch.tasks, 1):
            try:
                table = json.loads(task.answer)
            except json.JSONDecodeError as exc:
                raise ParseError(f"task {i}: the answer key is not valid JSON ({exc.msg})") from exc
            if not (isinstance(table, list) and table and all(isinstance(r, dict) for r in table)):
                raise ParseError(
                    f"task {i}: the answer key must be a non-empty JSON array of objects"
                )
        return batch
