"""Build the teacher client from explicit settings or the environment.

Environment: ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``GENTEACH_MODEL`` (or
``OPENAI_MODEL``), ``GENTEACH_TEMPERATURE``, ``GENTEACH_MAX_TOKENS``,
``GENTEACH_TRANSPORT`` (``aiohttp`` or ``openai-sdk``). With no endpoint and
no key configured, the embedded local model is used (``genteach[local]``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from genteach.models.base import ModelClient

if TYPE_CHECKING:
    from genteach.agents.base import RepairStyle

DEFAULT_OPENAI_MODEL = "gpt-4o"
OPENAI_BASE_URL = "https://api.openai.com/v1"

#: Printed whenever the embedded model is used.
LOCAL_MODEL_WARNING = (
    "Using the embedded local model (Qwen2.5-Coder-0.5B-Instruct on CPU): smoke-test quality "
    "only. Real data needs a capable teacher: set OPENAI_BASE_URL/OPENAI_API_KEY or pass "
    "--base-url/--model."
)

#: How the embedded model is asked to repair a malformed answer
#: (``RunSettings.repair_style`` / ``repair_temperature``): shown its rejected answer, a
#: 0.5B model copies it token for token, so it is asked afresh, with a note of what was
#: wrong, and sampled hotter than its nearly greedy default (temperature 0.7, top-p 0.8).
LOCAL_REPAIR_STYLE: RepairStyle = "fresh"
LOCAL_REPAIR_TEMPERATURE = 1.0


@dataclass
class ModelConfig:
    """Which teacher to call and how.

    Attributes:
        model: model name at the endpoint (default: env, else gpt-4o for OpenAI).
        base_url: an OpenAI-compatible endpoint (vLLM, SGLang, Ollama, transformers serve).
        api_key: the key (default: env OPENAI_API_KEY; "EMPTY" for keyless local servers).
        temperature / max_tokens: defaults sent with each call.
        structured_output: whether the endpoint supports JSON-schema output (None: yes for
            OpenAI itself, no for other endpoints).
        transport: ``"aiohttp"`` (default): genteach's lean OpenAI-compatible client
            (:class:`~genteach.models.http.HttpModel`), built for many concurrent calls;
            ``"openai-sdk"``: AutoGen's ``OpenAIChatCompletionClient`` on the openai SDK.
        local_model: HF folder or id for the embedded backend (default: the shipped model).
        local: force the embedded backend even if an endpoint is configured.
    """

    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    structured_output: bool | None = None
    local_model: str | None = None
    local: bool = False
    transport: str = "aiohttp"

    @classmethod
    def from_env(cls, **overrides: object) -> ModelConfig:
        """Settings from the environment; non-None ``overrides`` win."""
        env = os.environ
        cfg = cls(
            model=env.get("GENTEACH_MODEL") or env.get("OPENAI_MODEL"),
            base_url=env.get("OPENAI_BASE_URL"),
            api_key=env.get("OPENAI_API_KEY"),
            temperature=_float(env.get("GENTEACH_TEMPERATURE")),
            max_tokens=_int(env.get("GENTEACH_MAX_TOKENS")),
            transport=env.get("GENTEACH_TRANSPORT") or "aiohttp",
        )
        for key, value in overrides.items():
            if not hasattr(cfg, key):
                raise TypeError(f"ModelConfig has no field {key!r}")
            if value is not None:
                setattr(cfg, key, value)
        return cfg

    @property
    def uses_local(self) -> bool:
        return self.local or (self.base_url is None and self.api_key is None)


def build_client(config: ModelConfig | None = None) -> ModelClient:
    """Return the teacher client described by ``config`` (default: the environment):
    :class:`~genteach.models.local.LocalModel` for the embedded backend,
    :class:`~genteach.models.http.HttpModel` for an endpoint, or, with
    ``transport="openai-sdk"``, AutoGen's ``OpenAIChatCompletionClient`` behind
    :class:`~genteach.models.autogen.AutoGenModel`."""
    cfg = config or ModelConfig.from_env()
    if cfg.uses_local:
        from genteach.models.local import local_model_client

        return local_model_client(
            cfg.local_model, temperature=cfg.temperature, max_tokens=cfg.max_tokens
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


def _float(v: str | None) -> float | None:
    return float(v) if v else None


def _int(v: str | None) -> int | None:
    return int(v) if v else None


__all__ = [
    "LOCAL_MODEL_WARNING",
    "LOCAL_REPAIR_STYLE",
    "LOCAL_REPAIR_TEMPERATURE",
    "ModelConfig",
    "build_client",
]
