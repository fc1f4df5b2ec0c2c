"""One fixed database episode, run through the db skill's db_episode flow with scripted
actions: the assistant counts with one query, then answers. Tests read the record and the
requests the acting teacher received."""

from __future__ import annotations

import asyncio
import random

from genteach.agents.db import DatabaseMaterial
from genteach.flows import DbEpisodeFlow
from genteach.flows.base import FlowBuild, RunContext, StudentView, Task, WorkItem
from genteach.keys import DbReferenceKey, Layout
from genteach.models import ScriptedModel
from genteach.prompts import PromptLibrary
from genteach.records import Record, Seed
from genteach.runtime.db import Column, Database, Table
from genteach.taxonomy import Skill

DATABASE = DatabaseMaterial(
    title="Harwick road closures",
    database=Database(
        tables=(
            Table(
                name="closures",
                columns=(
                    Column(name="road", type="TEXT"),
                    Column(name="voted_on", type="DATE"),
                    Column(name="weeks", type="INTEGER"),
                    Column(name="votes_for", type="INTEGER"),
                ),
                rows=(
                    ("Mill Road", "2021-05-04", 12, 7),
                    ("Quay Street", "2022-03-15", 4, 5),
                    ("Station Lane", "2022-09-01", 8, 6),
                    ("Market Row", "2023-01-20", 2, 9),
                ),
            ),
        )
    ),
)
QUESTION = "How many road closures lasted more than five weeks?"
SQL = "SELECT COUNT(*) FROM closures WHERE weeks > 5"
ACTIONS = [
    f"I count the closures longer than five weeks.\nAction: Operation\n```sql\n{SQL};\n```",
    "Two closures lasted more than five weeks.\nAction: Answer\nFinal Answer: [2]",
]
#: The marker of the acting teacher's system prompt.
ASSISTANT_MARKER = "expert database agent"


def db_key() -> DbReferenceKey:
    key = DbReferenceKey(operation="select", sql=SQL)
    assert key.fit_material(DATABASE) is None
    return key


def run_db_episode(skill: Skill, prompts: PromptLibrary) -> tuple[Record, ScriptedModel]:
    """The record of the fixed episode and the scripted model that played it."""
    flow = DbEpisodeFlow.from_config(
        skill, DbEpisodeFlow.Settings(max_steps=5), FlowBuild(prompts=prompts)
    )
    model = ScriptedModel({ASSISTANT_MARKER: list(ACTIONS)})
    view = StudentView(system=None, framing="", delimiter=None, layout=Layout())
    task = Task(
        sub_category="counting", material=DATABASE, instruction=QUESTION, key=db_key(), view=view
    )
    item = WorkItem(seed=Seed.from_text(QUESTION), skill=skill, rng=random.Random(0))
    item.tasks.append(task)
    asyncio.run(flow(item, RunContext(client=model, prompts=prompts, teacher="scripted")))
    assert not item.rejects, item.rejects
    (record,) = item.records
    assert model.remaining() == 0
    return record, model
