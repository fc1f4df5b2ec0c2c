"""Build the teacher client from explicit settings or the environment.

Environment: ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``GENTEACH_MODEL`` (or
``OPENAI_MODEL``), ``GENTEACH_TEMPERATURE``, ``GENTEACH_MAX_TOKENS``,
``GENTEACH_TRANSPORT`` (``aiohttp`` or ``openai-sdk``). With no endpoint and
no key configured, the embedded local model is used (``genteach[local]``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic.fields import FieldInfo

from genteach.models.base import ModelClient

if TYPE_CHECKING:
    from genteach.agents.base import RepairStyle

DEFAULT_OPENAI_MODEL = "gpt-4o"
OPENAI_BASE_URL = "https://api.openai.com/v1"

#: Printed whenever the embedded model is used.
LOCAL_MODEL_WARNING = (
    "Using the embedded local model (a small model on this CPU): smoke-test "
    "quality only. Real data needs a capable teacher: set OPENAI_BASE_URL/OPENAI_API_KEY or pass "
    "--base-url/--model."
)

#: How the embedded model is asked to repair a malformed answer
#: (``RunSettings.repair_style`` / ``repair_temperature``): shown its rejected answer, a
#: 0.5B model copies it token for token, so it is asked afresh, with a note of what was
#: wrong, and sampled hotter than its nearly greedy default (temperature 0.7, top-p 0.8).
LOCAL_REPAIR_STYLE: RepairStyle = "fresh"
LOCAL_REPAIR_TEMPERATURE = 1.0


@pydantic_dataclass(config=ConfigDict(extra="forbid", validate_assignment=True))
class ModelConfig:
    """Which teacher to call and how. Every field has a description, which is also the help
    of its ``genteach generate`` flag (``--base-url`` for ``base_url``), and may name the
    environment variables :meth:`from_env` reads it from.

    The key is left out of ``repr``; record :attr:`endpoint` (scheme, host and port only)
    to say where a run's teacher was.
    """

    model: str | None = Field(
        default=None,
        description=f"teacher model name at the endpoint (default: {DEFAULT_OPENAI_MODEL} for "
        "OpenAI)",
        json_schema_extra={"env": ["GENTEACH_MODEL", "OPENAI_MODEL"]},
    )
    base_url: str | None = Field(
        default=None,
        description="an OpenAI-compatible endpoint (vLLM, SGLang, Ollama, transformers serve)",
        json_schema_extra={"env": ["OPENAI_BASE_URL"]},
    )
    api_key: str | None = Field(
        default=None,
        repr=False,
        description='the API key ("EMPTY" for keyless local servers; prefer the environment '
        "variable: a flag shows in the process list)",
        json_schema_extra={"env": ["OPENAI_API_KEY"]},
    )
    temperature: float | None = Field(
        default=None,
        ge=0,
        description="sampling temperature of every call (default: the backend's)",
        json_schema_extra={"env": ["GENTEACH_TEMPERATURE"]},
    )
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="most tokens of one model answer",
        json_schema_extra={"env": ["GENTEACH_MAX_TOKENS"]},
    )
    structured_output: bool | None = Field(
        default=None,
        description="the endpoint supports JSON-schema output (default: yes for OpenAI "
        "itself, no for other endpoints)",
    )
    local_model: str | None = Field(
        default=None,
        description="the local model: a shipped one's name (qwen2.5-coder-1.5b-instruct, the "
        "default; qwen2.5-coder-0.5b-instruct), a .gguf file, or an HF folder or model id",
        json_schema_extra={"env": ["GENTEACH_LOCAL_MODEL"]},
    )
    local: bool = Field(
        default=False, description="use the embedded local model even if an endpoint is configured"
    )
    local_engine: Literal["auto", "llama.cpp", "transformers"] = Field(
        default="auto",
        description="engine of the local model: llama.cpp (GGUF files, the default where "
        "llama-cpp-python is installed) or transformers (Hugging Face folders and ids)",
        json_schema_extra={"env": ["GENTEACH_LOCAL_ENGINE"]},
    )
    transport: Literal["aiohttp", "openai-sdk"] = Field(
        default="aiohttp",
        description="HTTP client for endpoints: aiohttp (genteach's own, built for many "
        "concurrent calls) or openai-sdk (AutoGen's client on the openai SDK)",
        json_schema_extra={"env": ["GENTEACH_TRANSPORT"]},
    )

    @classmethod
    def from_env(cls, **overrides: object) -> ModelConfig:
        """Settings from the environment (each field's ``env`` variables, first set wins);
        non-None ``overrides`` win over them.

        Raises:
            TypeError: an override names no field.
            pydantic.ValidationError: a value (from the environment or given) is invalid.
        """
        values: dict[str, object] = {}
        fields: dict[str, FieldInfo] = cls.__pydantic_fields__  # type: ignore[attr-defined]
        for name, info in fields.items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            env = extra.get("env")
            for var in env if isinstance(env, list) else []:
                if os.environ.get(str(var)):
                    values[name] = os.environ[str(var)]
                    break
        for key, value in overrides.items():
            if key not in fields:
                raise TypeError(f"ModelConfig has no field {key!r}")
            if value is not None:
                values[key] = value
        return cls(**values)  # type: ignore[arg-type]

    @property
    def uses_local(self) -> bool:
        """Whether the embedded model is the teacher (asked for, or nothing configured)."""
        return self.local or (self.base_url is None and self.api_key is None)

    @property
    def endpoint(self) -> str:
        """Where the teacher is: ``scheme://host[:port]`` of the endpoint (never a path,
        user or key), or ``embedded`` for the local model."""
        if self.uses_local:
            return "embedded"
        return endpoint_host(self.base_url or OPENAI_BASE_URL)


def endpoint_host(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what may be recorded of an endpoint (user
    names, passwords, paths and queries can hold secrets)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return "(unparsed endpoint)"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme or 'http'}://{host}" + (f":{port}" if port else "")


def build_client(config: ModelConfig | None = None) -> ModelClient:
    """Return the teacher client described by ``config`` (default: the environment):
    :class:`~genteach.models.llamacpp.LlamaCppModel` or
    :class:`~genteach.models.local.LocalModel` for the embedded backend (see ``local_engine``),
    :class:`~genteach.models.http.HttpModel` for an endpoint, or, with
    ``transport="openai-sdk"``, AutoGen's ``OpenAIChatCompletionClient`` behind
    :class:`~genteach.models.autogen.AutoGenModel`."""
    cfg = config or ModelConfig.from_env()
    if cfg.uses_local:
        from genteach.models.local import local_model_client

        return local_model_client(
            cfg.local_model,
            engine=cfg.local_engine,
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
        )
    model = cfg.model or DEFAULT_OPENAI_MODEL
    if cfg.transport not in ("aiohttp", "openai-sdk"):
        raise ValueError(f"transport {cfg.transport!r}: use 'aiohttp' or 'openai-sdk'")
    if cfg.transport == "aiohttp":
        from genteach.models.http import HttpModel

        structured = (
            cfg.structured_output if cfg.structured_output is not None else cfg.base_url is None
        )
        return HttpModel(
            model,
            cfg.base_url or OPENAI_BASE_URL,
            cfg.api_key or "EMPTY",
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            structured_output=structured,
        )
    from autogen_core.models import ModelFamily, ModelInfo
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    from genteach.models.autogen import AutoGenModel

    # max_retries=0: genteach's ResilientModel does the retrying (with Retry-After),
    # so the SDK must not retry on its own as well.
    kwargs: dict[str, object] = {
        "model": model,
        "api_key": cfg.api_key or "EMPTY",
        "max_retries": 0,
    }
    if cfg.base_url:
        kwargs["base_url"] = cfg.base_url
        structured = bool(cfg.structured_output)
        kwargs["model_info"] = ModelInfo(
            vision=False,
            function_calling=True,
            json_output=structured,
            family=ModelFamily.UNKNOWN,
            structured_output=structured,
        )
        kwargs["include_name_in_message"] = False
    client = OpenAIChatCompletionClient(**kwargs)  # type: ignore[arg-type]
    return AutoGenModel(client, name=model, temperature=cfg.temperature, max_tokens=cfg.max_tokens)


__all__ = [
    "LOCAL_MODEL_WARNING",
    "LOCAL_REPAIR_STYLE",
    "LOCAL_REPAIR_TEMPERATURE",
    "ModelConfig",
    "build_client",
    "endpoint_host",
]
