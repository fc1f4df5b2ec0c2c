"""Model clients: genteach's interface, the AutoGen adapter, the scripted client and the
builder from config. The embedded local model lives in :mod:`genteach.models.local`
(``genteach[local]``) and is imported only when used."""

from __future__ import annotations

from genteach.models.autogen import AutoGenModel
from genteach.models.base import (
    Completion,
    Message,
    ModelClient,
    ModelError,
    TransientModelError,
    Usage,
    message,
)
from genteach.models.config import LOCAL_MODEL_WARNING, ModelConfig, build_client
from genteach.models.http import AioHttpChatCompletionClient
from genteach.models.resilient import ResilientModel
from genteach.models.scripted import ScriptedModel, ScriptExhausted

__all__ = [
    "LOCAL_MODEL_WARNING",
    "AioHttpChatCompletionClient",
    "AutoGenModel",
    "Completion",
    "Message",
    "ModelClient",
    "ModelConfig",
    "ModelError",
    "ResilientModel",
    "ScriptExhausted",
    "ScriptedModel",
    "TransientModelError",
    "Usage",
    "build_client",
    "message",
]
