"""Model clients: genteach's interface, its own HTTP client, the AutoGen adapter, the
scripted client, the retry and limit layer, the model stack every command wraps its model
in (:mod:`genteach.models.stack`) and the builder from config. The embedded local
model lives in :mod:`genteach.models.local` (``genteach[local]``) and is imported only when
used."""

from __future__ import annotations

from genteach.models.autogen import AutoGenModel
from genteach.models.base import (
    Choice,
    Completion,
    FatalModelError,
    Message,
    ModelClient,
    ModelError,
    ModelRequest,
    OutageError,
    ToolCall,
    ToolSpec,
    TransientModelError,
    UnreachableError,
    Usage,
    message,
)
from genteach.models.config import LOCAL_MODEL_WARNING, ModelConfig, build_client
from genteach.models.http import HttpModel
from genteach.models.resilient import ResilientModel
from genteach.models.scripted import ScriptedModel, ScriptExhausted
from genteach.models.stack import CallSettings, ModelStack

__all__ = [
    "LOCAL_MODEL_WARNING",
    "AutoGenModel",
    "CallSettings",
    "Choice",
    "Completion",
    "FatalModelError",
    "HttpModel",
    "Message",
    "ModelClient",
    "ModelConfig",
    "ModelError",
    "ModelRequest",
    "ModelStack",
    "OutageError",
    "ResilientModel",
    "ScriptExhausted",
    "ScriptedModel",
    "ToolCall",
    "ToolSpec",
    "TransientModelError",
    "UnreachableError",
    "Usage",
    "build_client",
    "message",
]
