"""The database-agent skill's material: tables built from a seed.

:class:`DbTablesBuilder` decodes one to a few typed tables with realistic rows (the
:class:`~genteach.runtime.db.Table` model validates names, types and row shapes); the
:class:`DatabaseMaterial` it makes is what task writers see (each table's schema and rows)
and what every episode's fresh database is built from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from genteach.agents.base import Agent, AgentError, AgentResult
from genteach.agents.instruct import InstructInput, SeedInstructionAgent, TaskDraft
from genteach.agents.parsing import ParseError
from genteach.agents.transform import TransformInput
from genteach.keys import DbReferenceKey
from genteach.material import Audience, Material
from genteach.models.base import ModelClient, Usage
from genteach.prompts import PromptLibrary
from genteach.runtime.db import Database, Table

#: The template a database material renders with.
TABLES_TEMPLATE = "runtime/db/tables.j2"
#: Rows a table needs for questions worth asking.
MIN_ROWS = 4
#: Rows of each table the task writers see (a user's file may hold thousands; the
#: reference SQL always runs on every row).
SHOWN_ROWS = 40


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
                    "rows": [list(r) for r in t.rows[:SHOWN_ROWS]],
                    "count": len(t.rows),
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


class FileTables(BaseModel):
    """The tables of a user's file, as many as it has (no builder's bounds)."""

    title: str
    database: Database

    def material(self) -> Material:
        return DatabaseMaterial(title=self.title, database=self.database)


@dataclass
class DatabaseFileReader:
    """A ``database`` seed (a user's SQLite file, read by :func:`genteach.seeds.iter_seeds`)
    becomes the unit's material as it is: no model call, the file's own tables and rows.
    Task derivation and episodes then run as on tables a teacher built."""

    name: str = "db_file"
    system_template: str | None = None
    user_template: str | None = None
    #: The transformation stage makes no model call (no template, no cost).
    model_free: ClassVar[bool] = True

    async def run(
        self, client: ModelClient, inputs: TransformInput, *, seed: int | None = None
    ) -> AgentResult[FileTables]:
        del client, seed
        try:
            database = Database.model_validate_json(inputs.seed.text)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise AgentError(
                self.name,
                f"seed {inputs.seed.source or inputs.seed.id} is not a database read by "
                f"genteach ({first['msg']}): give SQLite files as seeds",
            ) from None
        title = PurePath(inputs.seed.source).stem if inputs.seed.source else ""
        out = FileTables(title=title, database=database)
        return AgentResult(output=out, raw="", usage=Usage(), attempts=0)


#: The operation each change task type needs (every other task type asks a question).
CHANGE_TYPES = ("insert", "update", "delete")


class DbTaskAgent(SeedInstructionAgent):
    """Writes database tasks of one type: the key's operation must be the type's
    (``insert``, ``update``, ``delete``; ``select`` for every question type), and its
    reference SQL is run on the tables when the task is written
    (:meth:`~genteach.keys.DbReferenceKey.fit_material`)."""

    def check_task(self, i: int, task: TaskDraft, inputs: InstructInput | None) -> None:
        super().check_task(i, task, inputs)
        if task.instruction.rstrip().endswith(":"):
            # The request is the whole user turn here (the tables' headers follow it), so a
            # request that stops at "... asks:" asks nothing.
            raise ParseError(
                f"task {i}: the instruction ends with a colon and nothing after it: write the "
                "whole request"
            )
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
    "SHOWN_ROWS",
    "TABLES_TEMPLATE",
    "DatabaseFileReader",
    "DatabaseMaterial",
    "DbTables",
    "DbTablesBuilder",
    "DbTaskAgent",
    "FileTables",
]
