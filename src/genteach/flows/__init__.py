"""The flows of AgentInstruct, and the table that maps a taxonomy ``flow:`` name to one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genteach.flows.base import Flow, FlowFactory, RunContext, Task, WorkItem
from genteach.flows.instruct import SeedInstructionFlow
from genteach.flows.refine import RefinementFlow
from genteach.flows.respond import ResponseFlow
from genteach.flows.tool import ToolConversationFlow
from genteach.flows.transform import ContentTransformationFlow
from genteach.prompts import PromptLibrary
from genteach.taxonomy import Skill, TaxonomyError

#: Flow names usable in a skill's ``pipeline:``. Pass ``flows=`` to the Pipeline to add more.
FLOWS: dict[str, FlowFactory] = {
    "content_transformation": ContentTransformationFlow.from_config,
    "seed_instruction": SeedInstructionFlow.from_config,
    "refinement": RefinementFlow.from_config,
    "response": ResponseFlow.from_config,
    "tool_conversation": ToolConversationFlow.from_config,
}


def build_flows(
    skill: Skill,
    prompts: PromptLibrary,
    *,
    options: Mapping[str, Any] | None = None,
    extra: Mapping[str, FlowFactory] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> list[Flow]:
    """Build a skill's pipeline from its ``pipeline:`` stages.

    ``overrides`` replaces stage settings by name in every stage that has them (e.g.
    ``{"suggestions": 1}``); a name no stage of any selected skill knows is an error
    raised by the caller (see :class:`genteach.Pipeline`).
    """
    table = {**FLOWS, **(extra or {})}
    flows = []
    for i, stage in enumerate(skill.pipeline):
        settings = stage.settings
        for key, value in (overrides or {}).items():
            if key in settings:
                settings[key] = value
        factory = table.get(stage.flow)
        if factory is None:
            raise TaxonomyError(
                f"skills.{skill.id}.pipeline[{i}].flow: unknown flow {stage.flow!r} "
                f"(flows: {', '.join(table)})"
            )
        flows.append(factory(skill, settings, prompts, dict(options or {})))
    return flows


__all__ = [
    "FLOWS",
    "ContentTransformationFlow",
    "Flow",
    "FlowFactory",
    "RefinementFlow",
    "ResponseFlow",
    "RunContext",
    "SeedInstructionFlow",
    "Task",
    "ToolConversationFlow",
    "WorkItem",
    "build_flows",
]
