"""The flows of AgentInstruct, and the table that maps a taxonomy ``flow:`` name to one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from genteach.flows.api_module import ApiModuleFlow
from genteach.flows.base import (
    Flow,
    FlowBuild,
    FlowSettings,
    FlowType,
    RunContext,
    Task,
    WorkItem,
    validate_settings,
)
from genteach.flows.conversation import ConversationFlow
from genteach.flows.db import DbEpisodeFlow
from genteach.flows.documents import DocumentSetFlow
from genteach.flows.instruct import SeedInstructionFlow
from genteach.flows.os import OsEpisodeFlow
from genteach.flows.refine import RefinementFlow
from genteach.flows.respond import ResponseFlow
from genteach.flows.tool import ToolConversationFlow
from genteach.flows.transform import ContentTransformationFlow
from genteach.flows.web import WebEpisodeFlow
from genteach.taxonomy import Skill, TaxonomyError

#: Flow names usable in a skill's ``pipeline:``. Pass ``flows=`` to the Pipeline to add more.
FLOWS: dict[str, type[Any]] = {
    "content_transformation": ContentTransformationFlow,
    "seed_instruction": SeedInstructionFlow,
    "refinement": RefinementFlow,
    "response": ResponseFlow,
    "tool_conversation": ToolConversationFlow,
    "conversation": ConversationFlow,
    "document_set": DocumentSetFlow,
    "api_module": ApiModuleFlow,
    "web_episode": WebEpisodeFlow,
    "db_episode": DbEpisodeFlow,
    "os_episode": OsEpisodeFlow,
}


def flow_table(extra: Mapping[str, FlowType] | None = None) -> dict[str, Any]:
    """genteach's flows and ``extra`` ones by name."""
    return {**FLOWS, **(extra or {})}


def stage_settings(
    skill: Skill,
    source: str = "",
    *,
    extra: Mapping[str, FlowType] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> list[tuple[Any, FlowSettings]]:
    """Each stage's flow class and its validated settings: the taxonomy's stage keys,
    with ``overrides`` (``--set``) applied to every stage whose flow has the setting.

    Raises:
        TaxonomyError: an unknown flow, or a setting that is unknown, of the wrong type or
            out of range; the message names the file and key path (and ``--set`` for an
            override).
    """
    table = flow_table(extra)
    out = []
    for i, stage in enumerate(skill.pipeline):
        prefix = f"{source}: " if source else ""
        where = f"skills.{skill.id}.pipeline[{i}]"
        cls = table.get(stage.flow)
        if cls is None:
            raise TaxonomyError(
                f"{prefix}{where}.flow: unknown flow {stage.flow!r} (flows: {', '.join(table)})"
            )
        settings = validate_settings(cls.Settings, stage.settings, prefix + where)
        applied = {k: v for k, v in (overrides or {}).items() if k in cls.Settings.model_fields}
        if applied:
            merged = {**settings.model_dump(exclude_unset=True), **applied}
            names = ", ".join(f"{k}={v}" for k, v in applied.items())
            settings = validate_settings(cls.Settings, merged, f"{prefix}--set {names}: {where}")
        out.append((cls, settings))
    return out


def known_settings(
    skills: Iterable[Skill], extra: Mapping[str, FlowType] | None = None
) -> set[str]:
    """Every setting name some stage of ``skills`` takes (what ``--set`` may name)."""
    table = flow_table(extra)
    return {
        name
        for skill in skills
        for stage in skill.pipeline
        if stage.flow in table
        for name in table[stage.flow].Settings.model_fields
    }


def build_flows(
    skill: Skill,
    build: FlowBuild,
    *,
    source: str = "",
    extra: Mapping[str, FlowType] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> list[Flow]:
    """Build a skill's pipeline from its ``pipeline:`` stages (see :func:`stage_settings`
    for how settings are validated)."""
    return [
        cls.from_config(skill, settings, build)
        for cls, settings in stage_settings(skill, source, extra=extra, overrides=overrides)
    ]


__all__ = [
    "FLOWS",
    "ApiModuleFlow",
    "ContentTransformationFlow",
    "ConversationFlow",
    "DbEpisodeFlow",
    "DocumentSetFlow",
    "Flow",
    "FlowBuild",
    "FlowSettings",
    "FlowType",
    "OsEpisodeFlow",
    "RefinementFlow",
    "ResponseFlow",
    "RunContext",
    "SeedInstructionFlow",
    "Task",
    "ToolConversationFlow",
    "WebEpisodeFlow",
    "WorkItem",
    "build_flows",
    "flow_table",
    "known_settings",
    "stage_settings",
]
