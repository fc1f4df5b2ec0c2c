"""OsEpisodeFlow: OS tasks as AgentTuning trajectories (self-instruct).

A task writer proposes each task with its set-up, its evaluation and a reference solution
(:class:`~genteach.keys.OsCheckKey`). Before the teacher acts, the reference runs in a
fresh set-up and must pass its own evaluation, while an empty answer must not
(:func:`~genteach.runtime.os_env.self_check`: the agreement rule). Then the teacher, in an
independent episode that never sees the reference, acts in AgentBench's OS format after
the one-shot demonstration (untrained turns), in the sandbox; the episode is kept when the
evaluation passes on its answer and the files it leaves.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from genteach.flows.acting import ActingFlow
from genteach.flows.base import FlowSettings, RunContext, Task, WorkItem
from genteach.keys import OsCheckKey
from genteach.models.base import Message
from genteach.prompts import PromptLibrary
from genteach.records import Record
from genteach.runtime import Action, ReactOsFormat, StepResult, demonstration
from genteach.runtime.os_env import (
    OS_LIMITS,
    OUTPUT_TEMPLATE,
    SYSTEM_TEMPLATE,
    OsEnvironment,
    self_check,
)
from genteach.runtime.sandbox import Sandbox, SandboxUnavailable

#: The teacher's own guidance for acting (not part of the record).
GUIDANCE_TEMPLATE = "os/assistant_system.j2"
#: AgentBench's one-shot demonstration, rendered as JSON.
DEMO_TEMPLATE = "runtime/react_os/demo.j2"


class OsEpisodeFlow(ActingFlow):
    """Checks each OS task against its own reference, then runs the teacher's episode
    of at most ``max_steps`` actions and keeps it when its reward reaches ``min_reward``.
    Where no sandbox works, the unit is rejected (model-written shell code never runs
    outside one)."""

    name = "os_episode"
    actor = "os_assistant"
    guidance = GUIDANCE_TEMPLATE
    expected_turns = 4

    class Settings(FlowSettings):
        """Attributes:
        max_steps: most actions of an episode (AgentBench: 8).
        min_reward: the reward an episode needs to be kept (AgentTuning: 1).
        demo: start with AgentBench's one-shot demonstration (untrained turns).
        """

        max_steps: int = Field(default=8, ge=1, le=30)
        min_reward: float = Field(default=1.0, ge=0.0, le=1.0)
        demo: bool = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sandbox: Sandbox | None = None

    def format_for(self) -> ReactOsFormat:
        return ReactOsFormat()

    def environment_templates(self) -> list[str]:
        """The shell's context and output, and the demonstration."""
        return [SYSTEM_TEMPLATE, OUTPUT_TEMPLATE, DEMO_TEMPLATE]

    def sandbox(self) -> Sandbox:
        """The flow's sandbox (the OS environment's limits), made on first use.

        Raises:
            SandboxUnavailable: no isolation works on this machine.
        """
        if self._sandbox is None:
            self._sandbox = Sandbox(OS_LIMITS)
        return self._sandbox

    def demo(self, prompts: PromptLibrary) -> list[Message]:
        """AgentBench's one-shot demonstration as untrained turns (the long listing cut
        as the format cuts any output)."""
        listing = "\n".join(f"file{i:03d}.conf" for i in range(1, 221))
        data = json.loads(prompts.render(DEMO_TEMPLATE, listing=listing))
        steps: list[tuple[Action, StepResult | None]] = []
        for s in data["steps"]:
            if "bash" in s:
                action = Action(kind="call", name="bash", text=s["bash"], thought=s["thought"])
                steps.append((action, StepResult(observation=s["output"])))
            else:
                steps.append((Action(kind="answer", text=s["answer"], thought=s["thought"]), None))
        return demonstration(self.format, prompts, data["task"], steps)

    async def act(self, item: WorkItem, ctx: RunContext, task: Task) -> Record | None:
        key = task.key
        if not isinstance(key, OsCheckKey):
            raise RuntimeError(f"{self.name} needs tasks with os_check keys")
        os_task = key.os_task(task.instruction)
        try:
            sandbox = self.sandbox()
        except SandboxUnavailable as exc:
            item.reject(self.name, self.name, f"no sandbox here: {exc}")
            return None
        problem = await self_check(os_task, prompts=ctx.prompts, sandbox=sandbox)
        if problem:
            item.reject(self.name, "os_reference", f"the task disagrees with itself: {problem}")
            return None
        episode = await self.play(
            item,
            ctx,
            task,
            OsEnvironment(ctx.prompts, sandbox=sandbox),
            os_task,
            self.format,
            demos=self.demo(ctx.prompts) if self.settings.demo else (),
        )
        return self.settle_by_reward(item, ctx, task, episode, outcome=key.evaluation)


__all__ = ["DEMO_TEMPLATE", "GUIDANCE_TEMPLATE", "OsEpisodeFlow"]
