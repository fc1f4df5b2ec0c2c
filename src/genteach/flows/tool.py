"""ToolConversationFlow: multi-turn tool-use conversations.

The teacher acts as the assistant in the fixed ACTION format; a simulated-API agent
answers each call; the conversation ends with FINAL_ANSWER or FAILED. The record holds
the student-facing system message (the API list and the format), the user's request and
every turn.
"""

from __future__ import annotations

import asyncio

from pydantic import Field

from genteach.agents.base import AgentError
from genteach.agents.tool_use import (
    FORMAT_EXAMPLES,
    ApiCallInput,
    ApiExchange,
    ApiList,
    ConversationInput,
    SimulatedApi,
    ToolUseAssistant,
)
from genteach.flows.base import (
    FlowBuild,
    FlowSettings,
    RunContext,
    Task,
    WorkItem,
    category_view,
    make_agent,
    skill_view,
    task_type,
)
from genteach.flows.respond import make_record
from genteach.keys import ToolOutcomeKey, Verification
from genteach.models.base import Message, ModelError, Usage, message
from genteach.records import Record
from genteach.taxonomy import Skill


class ToolConversationFlow:
    """Runs each tool-use task as a conversation of at most ``max_steps`` assistant turns.

    The conversation is checked against the task's key (:class:`~genteach.keys.ToolOutcomeKey`):
    it must end as the key expects (FINAL_ANSWER or FAILED) and, for a final answer, call
    every required API the assistant was shown. A conversation that fails the check is a
    reject with that reason, never a record.
    """

    name = "tool_conversation"

    class Settings(FlowSettings):
        """Attributes:
        max_steps: most assistant turns of a conversation.
        """

        max_steps: int = Field(default=8, ge=1, le=30)

    def __init__(
        self,
        skill: Skill,
        assistant: ToolUseAssistant,
        simulator: SimulatedApi,
        *,
        system_template: str,
        observation_template: str,
        max_steps: int = 8,
    ) -> None:
        self.skill = skill
        self.assistant = assistant
        self.simulator = simulator
        self.system_template = system_template
        self.observation_template = observation_template
        self.max_steps = max_steps

    @classmethod
    def from_config(
        cls, skill: Skill, settings: Settings, build: FlowBuild
    ) -> ToolConversationFlow:
        assistant = make_agent(
            ToolUseAssistant, "tool_assistant", skill, build.prompts, {}, build.options,
            system_key="assistant_system",
        )  # fmt: skip
        simulator = make_agent(
            SimulatedApi, "api_simulator", skill, build.prompts, {}, build.options,
            system_key="simulator_system", user_key="simulator_user",
        )  # fmt: skip
        return cls(
            skill,
            assistant,
            simulator,
            system_template=skill.template(
                "conversation_system", "tool_use/conversation_system.j2"
            ),
            observation_template=skill.template("observation", "tool_use/observation.j2"),
            max_steps=settings.max_steps,
        )

    #: Assistant turns a conversation is assumed to take, for ``--dry-run`` estimates.
    expected_turns = 3

    def expected_calls(self, tasks: float) -> tuple[float, float]:
        """For ``--dry-run``: per task, ``expected_turns`` assistant turns (at most
        ``max_steps``), each but the last answered by the simulated API."""
        turns = min(self.expected_turns, self.max_steps)
        return tasks * (2 * turns - 1), tasks

    async def __call__(self, item: WorkItem, ctx: RunContext) -> None:
        records = await asyncio.gather(*(self._converse(item, ctx, t) for t in item.tasks))
        item.records.extend(r for r in records if r is not None)

    async def _converse(self, item: WorkItem, ctx: RunContext, task: Task) -> Record | None:
        apis = task.material
        key = task.key
        if not isinstance(apis, ApiList) or not isinstance(key, ToolOutcomeKey):
            raise RuntimeError(
                f"{self.name} needs tasks on an API list with tool_outcome keys: use an "
                "api_list transformer and tool_task agents"
            )
        seed = task.stream(item.run_seed, "converse").randrange(2**31)
        shown = apis.shown
        system = ctx.prompts.render(
            self.system_template,
            library=apis.library,
            description=apis.description,
            apis=[a.model_dump() for a in shown],
            examples=FORMAT_EXAMPLES,
        )
        conversation: list[Message] = [message("system", system), message("user", task.instruction)]
        category = category_view(self.skill, "task_types", task_type(self.skill, task.sub_category))
        usage = Usage()
        agents = [*task.agents]
        outcome: str | None = None
        history: list[ApiExchange] = []
        try:
            for step in range(self.max_steps):
                result = await self.assistant.run(
                    ctx.client,
                    ConversationInput(
                        skill=skill_view(self.skill),
                        category=category,
                        apis=shown,
                        conversation=conversation,
                        last_step=step == self.max_steps - 1,
                    ),
                    seed=seed + 2 * step,
                )
                usage = usage + result.usage
                action = result.output
                conversation.append(message("assistant", action.text))
                agents.append(self.assistant.name)
                if action.kind != "api_call":
                    outcome = action.kind
                    break
                spec = next(a for a in shown if a.name == action.name)
                sim = await self.simulator.run(
                    ctx.client,
                    ApiCallInput(
                        library=apis.library,
                        api=spec,
                        arguments=action.arguments,
                        request=task.instruction,
                        history=list(history),
                    ),
                    seed=seed + 2 * step + 1,
                )
                usage = usage + sim.usage
                agents.append(self.simulator.name)
                observed = sim.output
                history.append(
                    ApiExchange(
                        api=action.name,
                        arguments=action.arguments,
                        status=observed.status,
                        result=observed.result,
                        error=observed.error,
                    )
                )
                conversation.append(
                    message(
                        "user",
                        ctx.prompts.render(
                            self.observation_template,
                            api_name=action.name,
                            status=observed.status,
                            result=observed.result,
                            error=observed.error,
                        ),
                    )
                )
        except AgentError as exc:
            item.add_usage(usage + exc.usage)
            item.reject(self.name, exc.agent, exc.reason, exc.raw)
            return None
        except ModelError as exc:
            item.add_usage(usage)
            item.reject(self.name, self.assistant.name, f"model error: {exc}")
            return None
        item.add_usage(usage)
        if outcome is None:
            item.reject(
                self.name, self.assistant.name, f"no STOP action within {self.max_steps} steps"
            )
            return None
        called = [h.api for h in history]
        verification: Verification = key.check_conversation(
            outcome, called, [a.name for a in shown]
        )
        item.count(verification)
        if verification.status == "failed":
            item.reject(
                self.name, self.assistant.name, verification.detail, conversation[-1]["content"]
            )
            return None
        return make_record(
            item, ctx, task, conversation, agents, usage, verification, outcome=outcome
        )
