"""WebEpisodeFlow: web-agent tasks as episodes on a simulated web site.

The teacher acts in the ``web`` format (:class:`~genteach.runtime.formats.web.WebFormat`:
one grounded action per turn on element ids) in the page simulator
(:class:`~genteach.runtime.web.WebEnvironment`); the episode is kept only when the state
it leaves meets the task's key (:class:`~genteach.keys.WebGoalKey`). Its messages, each
with its trained flag, are the record.
"""

from __future__ import annotations

from pydantic import Field

from genteach.flows.acting import ActingFlow, final_info
from genteach.flows.base import FlowSettings, RunContext, Task, WorkItem
from genteach.keys import WebGoalKey
from genteach.records import Record
from genteach.runtime import Action
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

#: The partial the page templates import.
PAGE_PARTIAL = "runtime/web/_page.j2"
#: The teacher's own guidance for acting (not part of the record).
GUIDANCE_TEMPLATE = "webagent_flow/assistant_system.j2"


class WebEpisodeFlow(ActingFlow):
    """Runs each web task as an episode of at most ``max_steps`` actions.

    An episode that ends in a state the key does not accept, or without ending (a budget,
    a repeated output, an action still malformed after its repairs), is a reject with its
    reason (the check's own words: which field holds what, which click is missing).
    """

    name = "web_episode"
    actor = "web_assistant"
    guidance = GUIDANCE_TEMPLATE
    expected_turns = 5

    class Settings(FlowSettings):
        """Attributes:
        max_steps: most actions of an episode.
        """

        max_steps: int = Field(default=12, ge=1, le=40)

    def format_for(self) -> WebFormat:
        return WebFormat()

    def environment_templates(self) -> list[str]:
        """The page simulator's context, first turn and pages, with their partial."""
        return [SYSTEM_TEMPLATE, START_TEMPLATE, PAGE_TEMPLATE, PAGE_PARTIAL]

    async def act(self, item: WorkItem, ctx: RunContext, task: Task) -> Record | None:
        site, key = task.material, task.key
        if not isinstance(site, WebSite) or not isinstance(key, WebGoalKey):
            raise RuntimeError(
                f"{self.name} needs tasks on a web site with web_goal keys: use a web_site "
                "transformer"
            )

        def check(site: WebSite, state: WebState, final: Action) -> tuple[bool, str]:
            return check_goal(site, state, final, **key.goal())

        web_task = WebTask(goal=task.instruction, site=site, start=key.start, check=check)
        episode = await self.play(
            item, ctx, task, WebEnvironment(ctx.prompts), web_task, self.format
        )
        detail = str(final_info(episode).get("check", "")) or key.summary(task.view.layout)
        return self.settle(
            item, ctx, task, episode, kept=episode.reward >= 1.0, detail=detail,
            outcome=key.outcome,
        )  # fmt: skip


__all__ = ["GUIDANCE_TEMPLATE", "PAGE_PARTIAL", "WebEpisodeFlow"]
