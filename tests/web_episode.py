"""One fixed web episode, run through the web-agent skill's web_episode flow with scripted
actions: the assistant opens the sensors page, answers a question from it. Tests read the
record and the requests the acting teacher received."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from genteach.flows import WebEpisodeFlow
from genteach.flows.base import FlowBuild, RunContext, StudentView, Task, WorkItem
from genteach.keys import Layout, WebGoalKey
from genteach.models import ScriptedModel
from genteach.prompts import PromptLibrary
from genteach.records import Record, Seed
from genteach.runtime.web import WebSite
from genteach.taxonomy import Skill

SITE = WebSite.model_validate_json(
    (Path(__file__).resolve().parent / "data" / "web_site.json").read_text()
)
KEY = WebGoalKey(start="/", outcome="answered", answer="Tidewatch S2", evidence="e9")
REQUEST = "Which sensor that is in stock has the best rating?"
ACTIONS = [
    "Thought: The ratings are on the sensors page.\nAction: click [e2]",
    "Thought: S3 rates highest but is out of stock; S2 (4.7) is the best in stock.\n"
    'Action: answer "Tidewatch S2, rated 4.7 / 5"',
]
#: The marker of the acting teacher's system prompt.
ASSISTANT_MARKER = "expert web agent"


def run_web_episode(skill: Skill, prompts: PromptLibrary) -> tuple[Record, ScriptedModel]:
    """The record of the fixed episode and the scripted model that played it."""
    flow = WebEpisodeFlow.from_config(
        skill, WebEpisodeFlow.Settings(max_steps=6), FlowBuild(prompts=prompts)
    )
    model = ScriptedModel({ASSISTANT_MARKER: list(ACTIONS)})
    view = StudentView(system=None, framing="", delimiter=None, layout=Layout())
    task = Task(
        sub_category=skill.task_types[0].id, material=SITE, instruction=REQUEST, key=KEY, view=view
    )
    item = WorkItem(seed=Seed.from_text(REQUEST), skill=skill, rng=random.Random(0))
    item.tasks.append(task)
    asyncio.run(flow(item, RunContext(client=model, prompts=prompts, teacher="scripted")))
    assert not item.rejects, item.rejects
    (record,) = item.records
    assert model.remaining() == 0
    return record, model
