"""genteach: generative teaching with agentic flows.

A strong teacher model, organised as cooperating agents (AgentInstruct's content
transformation, seed instruction and suggester-editor refinement), turns raw documents
and code into diverse, hard chat pairs; :mod:`genteach.train` post-trains a smaller
model on them.
"""

from __future__ import annotations

__version__ = "0.1.0"

from genteach.agents import Agent, AgentError, AgentResult, ParseError
from genteach.cost import Price, PriceTable
from genteach.estimate import RunEstimate, estimate_run
from genteach.export import export_dataset
from genteach.flows import FLOWS, Flow, RunContext, Task, WorkItem
from genteach.interop import as_autogen_agent
from genteach.models import (
    AutoGenModel,
    Completion,
    FatalModelError,
    Message,
    ModelClient,
    ModelConfig,
    ModelError,
    ModelRequest,
    OutageError,
    ScriptedModel,
    TransientModelError,
    Usage,
    build_client,
)
from genteach.pipeline import Pipeline, Progress, RunSettings, RunSummary
from genteach.prompts import PromptError, PromptLibrary
from genteach.records import Record, RecordMeta, Reject, Seed, read_records
from genteach.seeds import SeedReport, SeedSourceError, iter_seeds, load_seeds
from genteach.taxonomy import Skill, Taxonomy, TaxonomyError, load_taxonomy

__all__ = [
    "FLOWS",
    "Agent",
    "AgentError",
    "AgentResult",
    "AutoGenModel",
    "Completion",
    "FatalModelError",
    "Flow",
    "Message",
    "ModelClient",
    "ModelConfig",
    "ModelError",
    "ModelRequest",
    "OutageError",
    "ParseError",
    "Pipeline",
    "Price",
    "PriceTable",
    "Progress",
    "PromptError",
    "PromptLibrary",
    "Record",
    "RecordMeta",
    "Reject",
    "RunContext",
    "RunEstimate",
    "RunSettings",
    "RunSummary",
    "ScriptedModel",
    "Seed",
    "SeedReport",
    "SeedSourceError",
    "Skill",
    "Task",
    "Taxonomy",
    "TaxonomyError",
    "TransientModelError",
    "Usage",
    "WorkItem",
    "__version__",
    "as_autogen_agent",
    "build_client",
    "estimate_run",
    "export_dataset",
    "iter_seeds",
    "load_seeds",
    "load_taxonomy",
    "read_records",
]
