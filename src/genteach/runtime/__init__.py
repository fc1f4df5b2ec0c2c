"""The runtime for agents that act: environments, action formats and one episode loop.

An :class:`Environment` runs a task and answers typed :class:`Action` objects; an
:class:`ActionFormat` says how a model writes actions and sees observations;
:func:`run_episode` drives a model through an episode and returns an :class:`Episode`
with per-turn ``trained`` flags, ready for a record. See ``docs/runtime.md``. The teacher's
tools: a sandboxed code interpreter (:class:`Sandbox`, ``docs/sandbox.md``) and a calculator
(:func:`evaluate`, ``docs/calculator.md``); retrieval over the seeds is
:mod:`genteach.retrieval`. Environments: the web-page simulator (:class:`WebEnvironment`,
``docs/web_environment.md``), an SQLite database (:class:`DbEnvironment`,
``docs/db_environment.md``) and a shell in the sandbox (:class:`OsEnvironment`,
``docs/os_environment.md``); tool use runs against simulated APIs
(:class:`SimulatedApiEnvironment`) or the user's own module (:class:`ExecutorEnvironment`).
"""

from __future__ import annotations

from genteach.runtime.base import (
    Action,
    ActionFormat,
    ActionKind,
    Environment,
    EnvironmentFailure,
    Observation,
    Placement,
    StepResult,
    TurnContext,
)
from genteach.runtime.calculator import (
    ArithmeticStep,
    CalculatorError,
    CalculatorTool,
    Quantity,
    StepCheck,
    check_step,
    evaluate,
    find_steps,
)
from genteach.runtime.conversation import (
    ConversationEnvironment,
    ConversationTask,
    ReplyFormat,
    check_reply,
)
from genteach.runtime.db import (
    Column,
    Database,
    DbEnvironment,
    DbTask,
    Table,
    derive,
    state_hash,
)
from genteach.runtime.episode import (
    END_REASONS,
    EndReason,
    Episode,
    EpisodeSettings,
    MappedAction,
    Step,
    Turn,
    demonstration,
    derive_seed,
    opening,
    run_episode,
)
from genteach.runtime.executor import (
    ExecutorEnvironment,
    ExecutorError,
    ModuleApiList,
    ModuleExecutor,
    load_executor,
)
from genteach.runtime.formats import (
    FunctionCallingFormat,
    ReactDbFormat,
    ReactOsFormat,
    TextFormat,
    ToolUseFormat,
    WebFormat,
    answer_list,
    api_tool,
    tool_api,
    truncate,
)
from genteach.runtime.os_env import OsCheck, OsEnvironment, OsTask, self_check
from genteach.runtime.repair import Rejection, closest_action, repair_messages
from genteach.runtime.sandbox import (
    CodeInterpreterTool,
    ExecutionResult,
    Sandbox,
    SandboxLimits,
    SandboxUnavailable,
)
from genteach.runtime.simulated_api import (
    ApiEnvironment,
    ApiTask,
    RewardCheck,
    SimulatedApiEnvironment,
    final_answer_reward,
)
from genteach.runtime.tools import (
    Tool,
    ToolEnvironment,
    ToolError,
    ToolLoop,
    ToolLoopResult,
    ToolTask,
)
from genteach.runtime.web import (
    Element,
    WebEnvironment,
    WebPage,
    WebSite,
    WebState,
    WebTask,
    check_goal,
    check_goal_fits,
)

__all__ = [
    "END_REASONS",
    "Action",
    "ActionFormat",
    "ActionKind",
    "ApiEnvironment",
    "ApiTask",
    "ArithmeticStep",
    "CalculatorError",
    "CalculatorTool",
    "CodeInterpreterTool",
    "Column",
    "ConversationEnvironment",
    "ConversationTask",
    "Database",
    "DbEnvironment",
    "DbTask",
    "Element",
    "EndReason",
    "Environment",
    "EnvironmentFailure",
    "Episode",
    "EpisodeSettings",
    "ExecutionResult",
    "ExecutorEnvironment",
    "ExecutorError",
    "FunctionCallingFormat",
    "MappedAction",
    "ModuleApiList",
    "ModuleExecutor",
    "Observation",
    "OsCheck",
    "OsEnvironment",
    "OsTask",
    "Placement",
    "Quantity",
    "ReactDbFormat",
    "ReactOsFormat",
    "Rejection",
    "ReplyFormat",
    "RewardCheck",
    "Sandbox",
    "SandboxLimits",
    "SandboxUnavailable",
    "SimulatedApiEnvironment",
    "Step",
    "StepCheck",
    "StepResult",
    "Table",
    "TextFormat",
    "Tool",
    "ToolEnvironment",
    "ToolError",
    "ToolLoop",
    "ToolLoopResult",
    "ToolTask",
    "ToolUseFormat",
    "Turn",
    "TurnContext",
    "WebEnvironment",
    "WebFormat",
    "WebPage",
    "WebSite",
    "WebState",
    "WebTask",
    "answer_list",
    "api_tool",
    "check_goal",
    "check_goal_fits",
    "check_reply",
    "check_step",
    "closest_action",
    "demonstration",
    "derive",
    "derive_seed",
    "evaluate",
    "final_answer_reward",
    "find_steps",
    "load_executor",
    "opening",
    "repair_messages",
    "run_episode",
    "self_check",
    "state_hash",
    "tool_api",
    "truncate",
]
