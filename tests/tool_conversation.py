"""One fixed tool-use conversation, run through the skill's tool_conversation flow with
scripted answers: the assistant looks a port up, books a berth with a malformed date (the
simulated API answers an error), books again and answers. Tests read the record and every
request the teacher and the simulated API received."""

from __future__ import annotations

import asyncio
import json
import random

from genteach.agents.tool_use import ApiList, ApiParam, ApiSpec
from genteach.flows import ToolConversationFlow
from genteach.flows.base import FlowBuild, RunContext, StudentView, Task, WorkItem
from genteach.keys import Layout, ToolOutcomeKey
from genteach.models import ScriptedModel
from genteach.prompts import PromptLibrary
from genteach.records import Record, Seed
from genteach.taxonomy import Skill

API_LIST = ApiList(
    library="harbor",
    description="Search ports and book berths.",
    apis=[
        ApiSpec(
            name="find_port",
            description="Search ports by name; returns matching ports with their ids.",
            parameters=[
                ApiParam(name="query", description="Part of the port name."),
                ApiParam(name="country", description="ISO 3166 code.", required=False),
            ],
            returns="a list of objects with port_id (string) and name (string)",
        ),
        ApiSpec(
            name="berths.book",
            description="Book a berth at a port for a given arrival date.",
            parameters=[
                ApiParam(name="port_id", description="From find_port."),
                ApiParam(name="arrival", description="YYYY-MM-DD."),
                ApiParam(name="paid", type="boolean", required=False),
            ],
            returns="an object with booking_id (string) and status (string)",
        ),
        ApiSpec(name="ping", description="Check that the service is up.", parameters=[]),
    ],
)
KEY = ToolOutcomeKey(
    outcome="final_answer",
    required_apis=["find_port", "berths.book"],
    reference='find_port(query="Porto Santo") -> berths.book(port_id, arrival) -> FINAL_ANSWER',
)
REQUEST = "Please book me a berth at Porto Santo arriving on 3 June 2025."
ASSISTANT = [
    'I need the port id of Porto Santo first.\nACTION_TYPE : API_CALL\nACTION: find_port(query="Porto Santo")',
    'Porto Santo is P-0412; now the booking.\nACTION_TYPE : API_CALL\nACTION: berths.book(port_id="P-0412", arrival="3 June 2025")',
    'The date must be YYYY-MM-DD.\nACTION_TYPE : API_CALL\nACTION: berths.book(port_id="P-0412", arrival="2025-06-03")',
    'The berth is booked.\nACTION_TYPE : STOP\nACTION: FINAL_ANSWER("Your berth at Porto Santo is booked for 3 June 2025 (booking B-7781).")',
]
SIMULATOR = [
    {"status": "ok", "result": [{"port_id": "P-0412", "name": "Porto Santo"}]},
    {"status": "error", "error": "arrival must be YYYY-MM-DD"},
    {"status": "ok", "result": {"booking_id": "B-7781", "status": "confirmed"}},
]
#: Markers of the two agents' system prompts.
ASSISTANT_MARKER = "acting in a tool-use conversation"
SIMULATOR_MARKER = "You simulate an API"


def play(skill: Skill, prompts: PromptLibrary, model: ScriptedModel) -> WorkItem:
    """The fixed request's tool conversation, played by ``model``: the work item after it."""
    flow = ToolConversationFlow.from_config(
        skill, ToolConversationFlow.Settings(max_steps=8), FlowBuild(prompts=prompts)
    )
    view = StudentView(system=None, framing="", delimiter=None, layout=Layout())
    task = Task(
        sub_category=skill.task_types[0].id,
        material=API_LIST,
        instruction=REQUEST,
        key=KEY,
        view=view,
    )
    item = WorkItem(seed=Seed.from_text(REQUEST), skill=skill, rng=random.Random(0))
    item.tasks.append(task)
    asyncio.run(flow(item, RunContext(client=model, prompts=prompts, teacher="scripted")))
    return item


def run_conversation(skill: Skill, prompts: PromptLibrary) -> tuple[Record, ScriptedModel]:
    """The record of the fixed conversation and the scripted model that played it."""
    model = ScriptedModel(
        {
            ASSISTANT_MARKER: list(ASSISTANT),
            SIMULATOR_MARKER: [json.dumps(r) for r in SIMULATOR],
        }
    )
    item = play(skill, prompts, model)
    assert not item.rejects, item.rejects
    (record,) = item.records
    assert model.remaining() == 0
    return record, model


def requests_of(model: ScriptedModel, marker: str) -> list[list[dict[str, str]]]:
    """The messages of every call whose system prompt holds ``marker``."""
    return [
        [{"role": m["role"], "content": m["content"]} for m in call]
        for call in model.calls
        if marker in call[0]["content"]
    ]
