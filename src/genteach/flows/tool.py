"""ToolConversationFlow: multi-turn tool-use conversations, as episodes of the runtime.

The teacher acts in the ACTION format (:class:`~genteach.runtime.ToolUseFormat`) against
the simulated-API environment (:class:`~genteach.runtime.SimulatedApiEnvironment`); the
episode's messages (the system prompt with the APIs shown and the format, the user's
request, every turn and observation, each with its trained flag) become the record once
the conversation passes the task's key. When the material came from the user's executor
module (the ``api_module`` stage), the calls run its functions instead
(:class:`~genteach.runtime.executor.ExecutorEnvironment`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from genteach.agents.tool_use import ApiExchange, ApiList, SimulatedApi
from genteach.flows.base import (
    FlowBuild,
    FlowSettings,
    RunContext,
    Task,
    WorkItem,
    category_view,
    episode_settings,
    make_agent,
    skill_view,
    task_type,
    templates_of,
)
from genteach.flows.respond import make_record
from genteach.keys import ToolOutcomeKey, Verification
from genteach.records import Record
from genteach.runtime import (
    Action,
    ApiEnvironment,
    ApiTask,
    SimulatedApiEnvironment,
    ToolUseFormat,
    run_episode,
)
from genteach.runtime.executor import (
    ExecutorEnvironment,
    ModuleApiList,
    ModuleExecutor,
    load_executor,
)
from genteach.runtime.simulated_api import SYSTEM_TEMPLATE as SIMULATED_API_TEMPLATE
from genteach.taxonomy import Skill

#: The teacher's own guidance for the acting assistant (not part of the record).
GUIDANCE_TEMPLATE = "tool_use/assistant_system.j2"
#: How a stop action names the conversation's outcome.
OUTCOMES = {"answer": "final_answer", "fail": "failed"}


class ToolConversationFlow:
    """Runs each tool-use task as an episode of at most ``max_steps`` assistant turns.

    The conversation is checked against the task's key
    (:class:`~genteach.keys.ToolOutcomeKey`): it must end as the key expects (FINAL_ANSWER
    or FAILED) and, for a final answer, call every required API the assistant was shown.
    An episode that fails the check, or ends without stopping (a budget, a repeated
    output, an action still malformed after its repairs), is a reject with its reason.
    """

    name = "tool_conversation"

    class Settings(FlowSettings):
        """Attributes:
        max_steps: most assistant turns of a conversation.
        call_timeout: seconds one call of an executor module's function may take.
        max_result_chars: the most characters of an executor result shown to the model.
        """

        max_steps: int = Field(default=8, ge=1, le=30)
        call_timeout: float = Field(default=10.0, gt=0, le=600)
        max_result_chars: int = Field(default=2000, ge=100, le=100_000)

    def __init__(
        self,
        skill: Skill,
        simulator: SimulatedApi,
        settings: Settings,
        *,
        options: dict[str, Any],
        guidance_template: str = GUIDANCE_TEMPLATE,
    ) -> None:
        self.skill = skill
        self.simulator = simulator
        self.settings = settings
        self.guidance_template = guidance_template
        self.format = ToolUseFormat()
        self.episode = episode_settings(options, settings.max_steps)
        self._executors: dict[str, ModuleExecutor] = {}

    @classmethod
    def from_config(
        cls, skill: Skill, settings: Settings, build: FlowBuild
    ) -> ToolConversationFlow:
        simulator = make_agent(
            SimulatedApi, "api_simulator", skill, build.prompts, {}, build.options,
            system_key="simulator_system", user_key="simulator_user",
        )  # fmt: skip
        return cls(
            skill,
            simulator,
            settings,
            options=dict(build.options),
            guidance_template=skill.template("assistant_system", GUIDANCE_TEMPLATE),
        )

    def templates(self) -> list[str]:
        """The templates the episodes render besides the simulator's and the format's."""
        return [self.guidance_template, SIMULATED_API_TEMPLATE]

    #: Assistant turns a conversation is assumed to take, for ``--dry-run`` estimates.
    expected_turns = 3

    def expected_calls(self, tasks: float) -> tuple[float, float]:
        """For ``--dry-run``: per task, ``expected_turns`` assistant turns (at most
        ``max_steps``), each but the last answered by the simulated API."""
        turns = min(self.expected_turns, self.settings.max_steps)
        return tasks * (2 * turns - 1), tasks

    async def __call__(self, item: WorkItem, ctx: RunContext) -> None:
        records = await asyncio.gather(*(self._converse(item, ctx, t) for t in item.tasks))
        item.records.extend(r for r in records if r is not None)

    async def _converse(self, item: WorkItem, ctx: RunContext, task: Task) -> Record | None:
        apis, key = task.material, task.key
        if not isinstance(apis, ApiList) or not isinstance(key, ToolOutcomeKey):
            raise RuntimeError(
                f"{self.name} needs tasks on an API list with tool_outcome keys: use an "
                "api_list transformer and tool_task agents"
            )
        shown = [a.name for a in apis.shown]

        def reward(_: ApiTask, stop: Action, calls: Sequence[ApiExchange]) -> float:
            return float(self.check(key, stop, calls, shown).status == "passed")

        env: ApiEnvironment
        if isinstance(apis, ModuleApiList):
            env = ExecutorEnvironment(
                self.executor(apis.executor),
                ctx.prompts,
                reward=reward,
                timeout=self.settings.call_timeout,
                max_chars=self.settings.max_result_chars,
            )
        else:
            env = SimulatedApiEnvironment(self.simulator, ctx.client, ctx.prompts, reward=reward)
        guidance = ctx.prompts.render(
            self.guidance_template,
            skill=skill_view(self.skill).model_dump(),
            category=category_view(
                self.skill, "task_types", task_type(self.skill, task.sub_category)
            ).model_dump(),
        )
        episode = await run_episode(
            ctx.client,
            env,
            ApiTask(task.instruction, apis.library, tuple(apis.shown), apis.description),
            self.format,
            prompts=ctx.prompts,
            seed=task.stream(item.run_seed, "converse").randrange(2**31),
            settings=self.episode,
            guidance=guidance,
        )
        item.add_usage(episode.usage)
        stop = episode.final_action
        if episode.end != "finished" or stop is None:
            item.reject(
                self.name,
                "tool_assistant",
                f"{episode.end}: {episode.detail}",
                episode.raw,
                messages=episode.messages,
            )
            return None
        verification = self.check(key, stop, env.calls, shown)
        item.count(verification)
        if verification.status == "failed":
            item.reject(
                self.name,
                "tool_assistant",
                verification.detail,
                episode.raw,
                messages=episode.messages,
            )
            return None
        simulated = isinstance(env, SimulatedApiEnvironment)
        agents = [*task.agents]
        for turn in episode.turns:
            agents.append("tool_assistant")
            if simulated:
                agents += [self.simulator.name for s in turn.steps if s.action.kind == "call"]
        return make_record(
            item,
            ctx,
            task,
            list(episode.messages),
            agents,
            episode.usage,
            verification,
            outcome=OUTCOMES.get(stop.kind, stop.kind),
            templates=[
                *self.templates(),
                *self.format.templates(),
                *(templates_of(self.simulator) if simulated else []),
            ],
        )

    def executor(self, spec: str) -> ModuleExecutor:
        """The executor module ``spec`` (loaded once per flow; a relative path may be in
        the taxonomy's folder)."""
        if spec not in self._executors:
            self._executors[spec] = load_executor(spec, folder=self.skill.folder)
        return self._executors[spec]

    @staticmethod
    def check(
        key: ToolOutcomeKey, stop: Action, calls: Sequence[ApiExchange], shown: Sequence[str]
    ) -> Verification:
        """The conversation against its key: how it ended and which APIs it called."""
        outcome = OUTCOMES.get(stop.kind, stop.kind)
        return key.check_conversation(outcome, [c.api for c in calls], shown)
