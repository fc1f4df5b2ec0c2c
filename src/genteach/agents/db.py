"""The database-agent skill's material: tables built from a seed.

:class:`DbTablesBuilder` decodes one to a few typed tables with realistic rows (the
:class:`~genteach.runtime.db.Table` model validates names, types and row shapes); the
:class:`DatabaseMaterial` it makes is what task writers see (each table's schema and rows)
and what every episode's fresh database is built from.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from genteach.agents.base import Agent
from genteach.agents.instruct import InstructInput, SeedInstructionAgent, TaskDraft
from genteach.agents.parsing import ParseError
from genteach.agents.transform import TransformInput
from genteach.keys import DbReferenceKey
from genteach.material import Audience, Material
from genteach.prompts import PromptLibrary
from genteach.runtime.db import Database, Table

#: The template a database material renders with.
TABLES_TEMPLATE = "runtime/db/tables.j2"
#: Rows a table needs for questions worth asking.
MIN_ROWS = 4


class DatabaseMaterial(BaseModel):
    """Tables, as tasks are written about them and episodes start from them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["database"] = "database"
    title: str = ""
    database: Database

    def render(self, prompts: PromptLibrary, audience: Audience) -> str:
        return prompts.render(
            TABLES_TEMPLATE,
            tables=[
                {
                    "name": t.name,
                    "columns": [c.model_dump() for c in t.columns],
                    "rows": [list(r) for r in t.rows],
                }
                for t in self.database.tables
            ],
        )


class DbTables(BaseModel):
    """A table builder's answer: a title and the tables."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(default="", max_length=200, description="what the database is about")
    tables: list[Table] = Field(min_length=1, max_length=6, description="the tables")

    @model_validator(mode="after")
    def _database(self) -> DbTables:
        Database(tables=tuple(self.tables))  # unique names
        return self

    def material(self) -> Material:
        return DatabaseMaterial(
            title=self.title.strip(), database=Database(tables=tuple(self.tables))
        )


class DbTablesBuilder(Agent[TransformInput, DbTables]):
    """Builds ``min_items`` to ``max_items`` tables from a seed (in the style its
    transformer's guidance names: a register, a log, a catalogue...). The parser adds the
    bounds on the number of tables and that each has at least :data:`MIN_ROWS` rows."""

    input_model = TransformInput
    output_model = DbTables
    default_system_template = "db/tables_system.j2"
    default_user_template = "db/tables_user.j2"

    def templates(self) -> list[str]:
        """Its prompts, and the template its material renders with."""
        return [self.system_template, self.user_template, TABLES_TEMPLATE]

    def parse(self, text: str, inputs: TransformInput | None = None) -> DbTables:
        out = super().parse(text, inputs)
        if inputs is not None and not inputs.min_items <= len(out.tables) <= inputs.max_items:
            raise ParseError(
                f"the database has {len(out.tables)} tables; build between {inputs.min_items} "
                f"and {inputs.max_items}"
            )
        for t in out.tables:
            if len(t.rows) < MIN_ROWS:
                raise ParseError(
                    f"table {t.name} has {len(t.rows)} rows; give each table at least {MIN_ROWS}"
                )
        return out


#: The operation each change task type needs (every other task type asks a question).
CHANGE_TYPES = ("insert", "update", "delete")


class DbTaskAgent(SeedInstructionAgent):
    """Writes database tasks of one type: the key's operation must be the type's
    (``insert``, ``update``, ``delete``; ``select`` for every question type), and its
    reference SQL is run on the tables when the task is written
    (:meth:`~genteach.keys.DbReferenceKey.fit_material`)."""

    def check_task(self, i: int, task: TaskDraft, inputs: InstructInput | None) -> None:
        super().check_task(i, task, inputs)
        if inputs is None or not isinstance(task.key, DbReferenceKey):
            return
        wanted = inputs.category.id if inputs.category.id in CHANGE_TYPES else "select"
        if task.key.operation != wanted:
            raise ParseError(
                f'task {i}: a "{inputs.category.name}" task needs operation "{wanted}", not '
                f'"{task.key.operation}"'
            )


__all__ = [
    "CHANGE_TYPES",
    "MIN_ROWS",
    "TABLES_TEMPLATE",
    "DatabaseMaterial",
    "DbTables",
    "DbTablesBuilder",
    "DbTaskAgent",
]
