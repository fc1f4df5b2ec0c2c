"""genteach: generative teaching with agentic flows.

A strong teacher model, organised as cooperating agents (AgentInstruct's content
transformation, seed instruction and suggester-editor refinement), turns raw documents
and code into diverse, hard chat pairs; :mod:`genteach.train` post-trains a smaller
model on them.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

__version__ = "0.1.0"

#: Public name -> the module that defines it. Imported on first use (PEP 562), so that
#: ``import genteach.train`` or ``import genteach.records`` does not load AutoGen, OpenAI
#: or tiktoken.
_LAZY: dict[str, str] = {
    "Agent": "genteach.agents",
    "AgentError": "genteach.agents",
    "AgentResult": "genteach.agents",
    "AutoGenModel": "genteach.models",
    "Completion": "genteach.models",
    "FLOWS": "genteach.flows",
    "FatalModelError": "genteach.models",
    "Flow": "genteach.flows",
    "Message": "genteach.models",
    "ModelClient": "genteach.models",
    "ModelConfig": "genteach.models",
    "ModelError": "genteach.models",
    "ModelRequest": "genteach.models",
    "OutageError": "genteach.models",
    "ParseError": "genteach.agents",
    "Pipeline": "genteach.pipeline",
    "Price": "genteach.cost",
    "PriceTable": "genteach.cost",
    "Progress": "genteach.pipeline",
    "PromptError": "genteach.prompts",
    "PromptLibrary": "genteach.prompts",
    "Record": "genteach.records",
    "RecordMeta": "genteach.records",
    "Reject": "genteach.records",
    "RunContext": "genteach.flows",
    "RunEstimate": "genteach.estimate",
    "RunSettings": "genteach.pipeline",
    "RunSummary": "genteach.pipeline",
    "ScriptedModel": "genteach.models",
    "Seed": "genteach.records",
    "SeedReport": "genteach.seeds",
    "SeedSourceError": "genteach.seeds",
    "Skill": "genteach.taxonomy",
    "Task": "genteach.flows",
    "Taxonomy": "genteach.taxonomy",
    "TaxonomyError": "genteach.taxonomy",
    "TransientModelError": "genteach.models",
    "Usage": "genteach.models",
    "WorkItem": "genteach.flows",
    "as_autogen_agent": "genteach.interop",
    "build_client": "genteach.models",
    "estimate_run": "genteach.estimate",
    "export_dataset": "genteach.export",
    "iter_seeds": "genteach.seeds",
    "load_seeds": "genteach.seeds",
    "load_taxonomy": "genteach.taxonomy",
    "read_records": "genteach.records",
}


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


def __getattr__(name: str) -> _typing.Any:
    """Import a public name's module on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'genteach' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if _typing.TYPE_CHECKING:  # for type checkers and IDEs: the names as plain imports
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
