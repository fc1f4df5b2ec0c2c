"""ApiModuleFlow: the tool-use material read from the user's own executor module.

Instead of a teacher-written API list, the unit's material is the API list of a Python
module (:func:`~genteach.runtime.executor.load_executor`): its public functions, their
docstrings and type hints. The tool conversation then runs those functions
(:class:`~genteach.runtime.executor.ExecutorEnvironment`) instead of a simulated API.
No model call is made.
"""

from __future__ import annotations

from pydantic import Field

from genteach.agents.tool_use import API_LIST_TEMPLATE
from genteach.flows.base import FlowBuild, FlowSettings, RunContext, WorkItem
from genteach.runtime.executor import ModuleExecutor, load_executor
from genteach.taxonomy import Skill


class ApiModuleFlow:
    """Makes every unit's material the executor module's API list.

    The module is imported when the flow is built, so a missing file, an import error or
    a function that cannot be described stops the run before any model call. It is
    imported once: the tool conversation that runs its functions gets the same module
    (see :func:`~genteach.runtime.executor.load_executor`).
    """

    name = "api_module"
    #: It makes the unit's material, not tasks (the pipeline goes on without tasks).
    material_stage = True

    class Settings(FlowSettings):
        """Attributes:
        executor: the module whose functions are the APIs: a ``.py`` file (relative to
            the working directory, else to the taxonomy's folder) or a dotted module name.
        """

        executor: str = Field(min_length=1)

    def __init__(self, skill: Skill, executor: ModuleExecutor, settings: Settings) -> None:
        self.skill = skill
        self.executor = executor
        self.settings = settings

    @classmethod
    def from_config(cls, skill: Skill, settings: Settings, build: FlowBuild) -> ApiModuleFlow:
        del build
        return cls(skill, load_executor(settings.executor, folder=skill.folder), settings)

    def templates(self) -> list[str]:
        return [API_LIST_TEMPLATE]

    def expected_calls(self, tasks: float) -> tuple[float, float]:
        """For ``--dry-run``: no model call; the tasks pass through."""
        return 0.0, tasks

    async def __call__(self, item: WorkItem, ctx: RunContext) -> None:
        item.material = self.executor.api_list()
        item.templates.append(API_LIST_TEMPLATE)


__all__ = ["ApiModuleFlow"]
