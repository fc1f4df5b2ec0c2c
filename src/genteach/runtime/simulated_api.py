"""The tool-use environment: APIs that a model simulates.

Each call is answered by :class:`~genteach.agents.tool_use.SimulatedApi` (an agent),
which sees the earlier calls of the episode so its answers stay consistent. The episode
ends when the assistant stops; its reward comes from a check that the caller plugs in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from genteach.agents.base import AgentError
from genteach.agents.tool_use import ApiCallInput, ApiExchange, ApiSpec, SimulatedApi
from genteach.models.base import (
    FatalModelError,
    ModelClient,
    ModelError,
    TransientModelError,
)
from genteach.prompts import PromptLibrary
from genteach.runtime.base import Action, EnvironmentFailure, Observation, StepResult
from genteach.runtime.episode import derive_seed
from genteach.runtime.formats.tool_use import api_tool


@dataclass(frozen=True)
class ApiTask:
    """A tool-use task: the user's request and the APIs the assistant is shown.

    Attributes:
        request: the user's request (the first user turn).
        library: the library's name.
        apis: the APIs shown (withheld ones already left out).
        description: what the library is for (optional).
    """

    request: str
    library: str
    apis: tuple[ApiSpec, ...]
    description: str = ""


#: The environment's context before the format's instructions (the library's name).
SYSTEM_TEMPLATE = "runtime/simulated_api/system.j2"

#: The reward of a stop action: ``(task, the stop action, the calls made) -> [0, 1]``.
RewardCheck = Callable[[ApiTask, Action, Sequence[ApiExchange]], float]


def final_answer_reward(task: ApiTask, action: Action, calls: Sequence[ApiExchange]) -> float:
    """The default check: 1 for a final answer, 0 for FAILED. A skill whose right outcome
    may be FAILED (a missing parameter) plugs in its own check."""
    return 1.0 if action.kind == "answer" else 0.0


class ApiEnvironment:
    """What every tool-use environment shares: the library's context and the task's APIs at
    ``reset``, the reward of ``reward`` at a stop action (``answer``, ``fail``, ``finish``),
    and :attr:`calls`, the exchanges so far. A subclass answers a call of a shown API in
    :meth:`call`.

    Args:
        prompts: renders the environment's context (``system_template``).
        reward: the check that scores a stop action (:data:`RewardCheck`).
        system_template: the context before the format's instructions (the library).
    """

    def __init__(
        self,
        prompts: PromptLibrary,
        *,
        reward: RewardCheck = final_answer_reward,
        system_template: str = SYSTEM_TEMPLATE,
    ) -> None:
        self.prompts = prompts
        self.reward = reward
        self.system_template = system_template
        self.calls: list[ApiExchange] = []
        self._task: ApiTask | None = None
        self._seed: int | None = None

    async def reset(self, task: ApiTask, *, seed: int | None = None) -> Observation:
        self._task, self._seed, self.calls = task, seed, []
        system = self.prompts.render(
            self.system_template, library=task.library, description=task.description
        )
        return Observation(
            text=task.request, system=system, tools=tuple(api_tool(a) for a in task.apis)
        )

    async def step(self, action: Action) -> StepResult:
        task = self._task
        if task is None:
            raise RuntimeError(f"{type(self).__name__}.step before reset")
        if action.kind != "call":
            reward = self.reward(task, action, tuple(self.calls))
            return StepResult(reward=reward, done=True, info={"outcome": action.kind})
        api = next((a for a in task.apis if a.name == action.name), None)
        if api is None:
            raise EnvironmentFailure(f"{action.name} is not an API of this task")
        return await self.call(task, api, dict(action.arguments))

    async def call(self, task: ApiTask, api: ApiSpec, arguments: dict[str, Any]) -> StepResult:
        """Answer one call of ``api`` (shown in ``task``) and record it in :attr:`calls`."""
        raise NotImplementedError

    def admissible_actions(self) -> None:
        return None

    async def close(self) -> None:
        return None


class SimulatedApiEnvironment(ApiEnvironment):
    """APIs answered by a simulated-API agent.

    A ``call`` action returns the agent's JSON result (an error result is an error
    observation), the agent seeing the earlier calls so its answers stay consistent; stops
    are scored as :class:`ApiEnvironment` says.

    Args:
        simulator: the agent that plays the API.
        client: the model behind the simulator.
        prompts: renders the environment's context (``system_template``).
        reward: the check that scores a stop action (:data:`RewardCheck`).
        system_template: the context before the format's instructions (the library).
    """

    def __init__(
        self,
        simulator: SimulatedApi,
        client: ModelClient,
        prompts: PromptLibrary,
        *,
        reward: RewardCheck = final_answer_reward,
        system_template: str = SYSTEM_TEMPLATE,
    ) -> None:
        super().__init__(prompts, reward=reward, system_template=system_template)
        self.simulator = simulator
        self.client = client

    async def call(self, task: ApiTask, api: ApiSpec, arguments: dict[str, Any]) -> StepResult:
        call = ApiCallInput(
            library=task.library,
            api=api,
            arguments=arguments,
            request=task.request,
            history=list(self.calls),
        )
        try:
            answered = await self.simulator.run(
                self.client, call, seed=derive_seed(self._seed, len(self.calls))
            )
        except AgentError as exc:
            raise EnvironmentFailure(
                f"{exc.agent}: {exc.reason}", raw=exc.raw, usage=exc.usage
            ) from exc
        except (FatalModelError, TransientModelError):
            raise
        except ModelError as exc:
            raise EnvironmentFailure(f"{self.simulator.name}: model error: {exc}") from exc
        result = answered.output
        self.calls.append(
            ApiExchange(
                api=api.name,
                arguments=call.arguments,
                status=result.status,
                result=result.result,
                error=result.error,
            )
        )
        ok = result.status == "ok"
        return StepResult(
            observation=json.dumps(result.result, ensure_ascii=False) if ok else result.error,
            error=not ok,
            info={"status": result.status},
            usage=answered.usage,
        )


__all__ = [
    "ApiEnvironment",
    "ApiTask",
    "RewardCheck",
    "SimulatedApiEnvironment",
    "final_answer_reward",
]
