"""WebEpisodeFlow: web-agent tasks as episodes on a simulated web site.

The teacher acts in the ``web`` format (:class:`~genteach.runtime.formats.web.WebFormat`:
one grounded action per turn on element ids) in the page simulator
(:class:`~genteach.runtime.web.WebEnvironment`); the episode is kept only when the state
it leaves meets the task's key (:class:`~genteach.keys.WebGoalKey`). Its messages, each
with its trained flag, are the record.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field

from genteach.flows.base import (
    FlowBuild,
    FlowSettings,
    RunContext,
    Task,
    WorkItem,
    category_view,
    episode_settings,
    skill_view,
    task_type,
)
from genteach.flows.respond import make_record
from genteach.keys import WebGoalKey
from genteach.records import Record
from genteach.runtime import Action, run_episode
from genteach.runtime.formats.web import WebFormat
from genteach.runtime.web import (
    PAGE_TEMPLATE,
    START_TEMPLATE,
    SYSTEM_TEMPLATE,
    WebEnvironment,
    WebSite,
    WebState,
    WebTask,
    check_goal,
)
from genteach.taxonomy import Skill

#: The partial the page templates import.
PAGE_PARTIAL = "runtime/web/_page.j2"
#: The teacher's own guidance for acting (not part of the record).
GUIDANCE_TEMPLATE = "webagent_flow/assistant_system.j2"


class WebEpisodeFlow:
    """Runs each web task as an episode of at most ``max_steps`` actions.

    An episode that ends in a state the key does not accept, or without ending (a budget,
    a repeated output, an action still malformed after its repairs), is a reject with its
    reason (the check's own words: which field holds what, which click is missing).
    """

    name = "web_episode"

    class Settings(FlowSettings):
        """Attributes:
        max_steps: most actions of an episode.
        """

        max_steps: int = Field(default=12, ge=1, le=40)

    #: Actions an episode is assumed to take, for ``--dry-run`` estimates.
    expected_turns = 5

    def __init__(
        self,
        skill: Skill,
        settings: Settings,
        *,
        options: dict[str, Any],
        guidance_template: str = GUIDANCE_TEMPLATE,
    ) -> None:
        self.skill = skill
        self.settings = settings
        self.guidance_template = guidance_template
        self.format = WebFormat()
        self.episode = episode_settings(options, settings.max_steps)

    @classmethod
    def from_config(cls, skill: Skill, settings: Settings, build: FlowBuild) -> WebEpisodeFlow:
        return cls(
            skill,
            settings,
            options=dict(build.options),
            guidance_template=skill.template("assistant_system", GUIDANCE_TEMPLATE),
        )

    def templates(self) -> list[str]:
        """The templates the episodes render: the guidance, the format's and the page
        simulator's (its context, first turn and pages, with their partial)."""
        env = [SYSTEM_TEMPLATE, START_TEMPLATE, PAGE_TEMPLATE, PAGE_PARTIAL]
        return [self.guidance_template, *self.format.templates(), *env]

    def expected_calls(self, tasks: float) -> tuple[float, float]:
        """For ``--dry-run``: per task, ``expected_turns`` model calls (at most
        ``max_steps``); the page simulator makes none."""
        return tasks * min(self.expected_turns, self.settings.max_steps), tasks

    async def __call__(self, item: WorkItem, ctx: RunContext) -> None:
        records = await asyncio.gather(*(self._act(item, ctx, t) for t in item.tasks))
        item.records.extend(r for r in records if r is not None)

    async def _act(self, item: WorkItem, ctx: RunContext, task: Task) -> Record | None:
        site, key = task.material, task.key
        if not isinstance(site, WebSite) or not isinstance(key, WebGoalKey):
            raise RuntimeError(
                f"{self.name} needs tasks on a web site with web_goal keys: use a web_site "
                "transformer"
            )

        def check(site: WebSite, state: WebState, final: Action) -> tuple[bool, str]:
            return check_goal(site, state, final, **key.goal())

        guidance = ctx.prompts.render(
            self.guidance_template,
            skill=skill_view(self.skill).model_dump(),
            category=category_view(
                self.skill, "task_types", task_type(self.skill, task.sub_category)
            ).model_dump(),
        )
        env = WebEnvironment(ctx.prompts)
        try:
            episode = await run_episode(
                ctx.client,
                env,
                WebTask(goal=task.instruction, site=site, start=key.start, check=check),
                self.format,
                prompts=ctx.prompts,
                seed=task.stream(item.run_seed, "act").randrange(2**31),
                settings=self.episode,
                guidance=guidance,
            )
        finally:
            await env.close()
        item.add_usage(episode.usage)
        if episode.end != "finished":
            item.reject(self.name, "web_assistant", f"{episode.end}: {episode.detail}", episode.raw)
            return None
        final = episode.turns[-1].steps[-1].result if episode.turns[-1].steps else None
        detail = str(final.info.get("check", "")) if final is not None else ""
        passed = episode.reward >= 1.0
        verification = key.result(
            "passed" if passed else "failed", None, detail or key.summary(task.view.layout)
        )
        item.count(verification)
        if not passed:
            item.reject(self.name, "web_assistant", verification.detail, episode.raw)
            return None
        return make_record(
            item,
            ctx,
            task,
            list(episode.messages),
            [*task.agents, *("web_assistant" for _ in episode.turns)],
            episode.usage,
            verification,
            outcome=key.outcome,
            templates=self.templates(),
        )


__all__ = ["GUIDANCE_TEMPLATE", "WebEpisodeFlow"]
