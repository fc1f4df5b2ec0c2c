"""A lean OpenAI-compatible chat-completions client on aiohttp, as an AutoGen
``ChatCompletionClient``.

At high concurrency the ``openai`` SDK's transport, not the server, sets the pace (about
64% of the ideal call rate with 256 calls in flight against a server taking 1 s a call;
see docs/benchmarks/throughput.md). This client sends the same request through one shared
aiohttp session with no pool limit (:class:`~genteach.models.resilient.ResilientModel`
bounds the calls in flight) and raises genteach's own errors, which
:class:`~genteach.models.autogen.AutoGenModel` passes through unchanged.

Example:
    >>> inner = AioHttpChatCompletionClient("my-model", "http://127.0.0.1:8000/v1", "EMPTY")
    >>> teacher = AutoGenModel(inner, temperature=0.7)  # a genteach ModelClient
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import aiohttp
from autogen_core import CancellationToken
from autogen_core.models import (
    CreateResult,
    LLMMessage,
    ModelCapabilities,
    ModelFamily,
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

from genteach.models._autogen_base import NonStreamingClient, text_chat
from genteach.models.autogen import OVERLOAD_STATUS
from genteach.models.base import ModelError, TransientModelError

_FinishReason = Literal["stop", "length", "function_calls", "content_filter", "unknown"]
_TRANSIENT_STATUS = frozenset({408, 409, 425, 429})
_FINISH: dict[str, _FinishReason] = {
    "stop": "stop",
    "end_turn": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "function_calls",
    "function_call": "function_calls",
}
# Servers built on uvicorn (vLLM, SGLang, transformers serve) drop idle connections after
# 5 s; reusing one they just closed fails the request, so give ours up a little sooner.
_KEEPALIVE_S = 4.0


class AioHttpChatCompletionClient(NonStreamingClient):
    """POST ``{base_url}/chat/completions`` with aiohttp.

    Args:
        model: model name sent to the endpoint.
        base_url: the OpenAI-compatible endpoint, e.g. ``http://127.0.0.1:8000/v1``.
        api_key: sent as a bearer token; ``None`` sends no Authorization header.
        model_info: what the backend supports; default: text only, no JSON modes.
        timeout: seconds one request may take (``None``: no limit).
        max_connections: most open connections (0: no limit).
        default_headers: extra headers sent with every request.
        context_length: the model's context, for :meth:`remaining_tokens`.
        proxy: an HTTP proxy URL for every request.
        trust_env: with no ``proxy``, take one from ``HTTPS_PROXY``/``HTTP_PROXY`` (and
            ``NO_PROXY``), as the openai SDK does. Read once, here: aiohttp's own
            ``trust_env`` looks it up in a thread on every request.

    ``extra_create_args`` (``temperature``, ``max_tokens``, ``seed``, ``top_p``...) go into
    the request body as given. ``json_output=<pydantic model>`` asks for a JSON-schema
    ``response_format`` (needs ``model_info["structured_output"]``); ``json_output=True``
    asks for a JSON object (needs ``model_info["json_output"]``). Tools and images are not
    supported. An empty or null ``content`` is returned as ``""``: the caller's parser
    rejects it like any other unusable text.

    One ``aiohttp.ClientSession`` is made on the first call, inside the running event loop,
    and made again if a later call runs in another loop. :meth:`close` releases it; the
    client can still be used afterwards (a new session is made).
    """

    def __init__(
        self,
        model: str,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        *,
        model_info: ModelInfo | None = None,
        timeout: float | None = 600.0,
        max_connections: int = 0,
        default_headers: Mapping[str, str] | None = None,
        context_length: int = 128_000,
        proxy: str | None = None,
        trust_env: bool = True,
    ) -> None:
        super().__init__()
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.model_name = model
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.timeout = timeout
        self.max_connections = max_connections
        self.context_length = context_length
        self.proxy = proxy if proxy is not None or not trust_env else _env_proxy(self.url)
        self._model_info = model_info or ModelInfo(
            vision=False,
            function_calling=False,
            json_output=False,
            family=ModelFamily.UNKNOWN,
            structured_output=False,
        )
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key is not None:
            headers["Authorization"] = f"Bearer {api_key}"
        headers.update(default_headers or {})
        self._headers = headers
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ----------------------------------------------------------------- AutoGen API
    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        """One chat completion. Raises :class:`TransientModelError` or :class:`ModelError`."""
        if tools:
            raise ValueError(f"{type(self).__name__} does not support tools")
        if extra_create_args.get("stream"):
            raise ValueError("streaming is not supported; call create() without stream")
        body: dict[str, Any] = {
            "model": self.model_name,
            "messages": text_chat(messages, "the HTTP client"),
        }
        response_format = self._response_format(json_output)
        if response_format is not None:
            body["response_format"] = response_format
        body.update(extra_create_args)
        data = json.dumps(body).encode()
        if cancellation_token is None:
            result = await self._post(data)
        else:
            task = asyncio.ensure_future(self._post(data))
            cancellation_token.link_future(task)
            result = await task
        self._count(result.usage)
        return result

    async def close(self) -> None:
        """Close the session (a later call opens a new one)."""
        session, loop = self._session, self._loop
        self._session = self._loop = None
        if session is not None:
            await _release(session, loop)

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        """An estimate (4 characters a token, plus a few per message): no tokenizer is known."""
        chars = sum(len(m["content"]) for m in text_chat(messages, "the HTTP client"))
        return chars // 4 + 4 * len(messages)

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        return self.context_length - self.count_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:
        info = self._model_info
        return {
            "vision": info["vision"],
            "function_calling": info["function_calling"],
            "json_output": info["json_output"],
        }

    @property
    def model_info(self) -> ModelInfo:
        return self._model_info

    # ----------------------------------------------------------------- transport
    def _response_format(self, json_output: bool | type[BaseModel] | None) -> Any:
        if json_output is None or json_output is False:
            return None
        if json_output is True:
            if not self._model_info["json_output"]:
                raise ValueError("model_info says this model has no JSON output mode")
            return {"type": "json_object"}
        if not self._model_info.get("structured_output", False):
            raise ValueError("model_info says this model has no structured output")
        # strict=False: OpenAI's strict mode rejects ordinary pydantic schemas (optional
        # fields, open objects); the caller's parser validates the answer either way.
        return {
            "type": "json_schema",
            "json_schema": {
                "name": json_output.__name__,
                "schema": json_output.model_json_schema(),
                "strict": False,
            },
        }

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is not None and self._loop is loop and not session.closed:
            return session
        if session is not None and self._loop is not loop:
            # Made under another event loop (asyncio.run twice): it cannot be used here.
            _drop(session, self._loop)
        connector = aiohttp.TCPConnector(limit=self.max_connections, keepalive_timeout=_KEEPALIVE_S)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers=self._headers
        )
        self._loop = loop
        return self._session

    async def _post(self, data: bytes) -> CreateResult:
        session = self._get_session()
        try:
            async with session.post(self.url, data=data, proxy=self.proxy) as resp:
                status = resp.status
                raw = await resp.read()
                headers = resp.headers
        except aiohttp.InvalidURL as exc:
            raise ModelError(f"invalid URL {self.url!r}: {exc}") from exc
        except asyncio.TimeoutError as exc:  # aiohttp's timeouts included; the server is slow
            text = f"{type(exc).__name__}: no answer within {self.timeout}s"
            raise TransientModelError(text, overload=True) from exc
        except (aiohttp.ClientError, OSError) as exc:
            # Connection refused or reset, server disconnected, body cut off.
            raise TransientModelError(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= status < 300:
            raise _status_error(status, raw, headers)
        return _parse(raw)


# --------------------------------------------------------------------------- helpers


def _parse(raw: bytes) -> CreateResult:
    """A 200 response body -> :class:`CreateResult`.

    A body that is not the JSON we expect is transient: over a live connection it is most
    often a proxy or an overloaded server answering 200 with an error page or a cut-off
    body, and the same request usually succeeds when sent again.
    """
    try:
        data = json.loads(raw)
        choice = data["choices"][0]
        message = choice["message"]
        content = message.get("content")
        finish = choice.get("finish_reason")
        usage = data.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise TransientModelError(
            f"malformed response ({type(exc).__name__}: {exc}): {_snippet(raw)}"
        ) from exc
    if content is None:
        content = ""
    elif not isinstance(content, str):
        raise TransientModelError(f"malformed response: content is {type(content).__name__}")
    return CreateResult(
        finish_reason=_FINISH.get(str(finish).lower(), "unknown"),
        content=content,
        usage=RequestUsage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens),
        cached=False,
    )


def _status_error(status: int, raw: bytes, headers: Mapping[str, str]) -> ModelError:
    text = f"HTTP {status}: {_error_message(raw)}"
    if status in _TRANSIENT_STATUS or status >= 500:
        retry_after = retry_after_seconds(headers)
        overload = status in OVERLOAD_STATUS or retry_after is not None
        return TransientModelError(text, retry_after=retry_after, overload=overload)
    return ModelError(text)


def _error_message(raw: bytes) -> str:
    """The server's error message: OpenAI ``{"error": {"message"}}``, vLLM ``{"message"}``,
    FastAPI ``{"detail"}``, else the start of the body."""
    try:
        data = json.loads(raw)
    except ValueError:
        return _snippet(raw)
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("error", "message", "detail"):
            if data.get(key):
                return str(data[key])
    return _snippet(raw)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or OpenAI's
    ``retry-after-ms``; ``None`` when absent or unreadable."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        with contextlib.suppress(ValueError):
            value = float(ms) / 1000.0
            if math.isfinite(value):
                return max(0.0, value)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - time.time())
    return max(0.0, value) if math.isfinite(value) else None


def _env_proxy(url: str) -> str | None:
    """The proxy the environment sets for ``url`` (``None`` if none, or NO_PROXY skips it)."""
    parts = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies()
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    return proxies.get(parts.scheme)


def _snippet(raw: bytes, limit: int = 300) -> str:
    text = raw[:limit].decode("utf-8", "replace").strip()
    return text + ("..." if len(raw) > limit else "") if text else "(empty body)"


async def _release(session: aiohttp.ClientSession, loop: asyncio.AbstractEventLoop | None) -> None:
    """Close ``session`` from the running loop, whichever loop it was made in."""
    if loop is asyncio.get_running_loop():
        await session.close()
    else:
        _drop(session, loop)


def _drop(session: aiohttp.ClientSession, loop: asyncio.AbstractEventLoop | None) -> None:
    """Let go of a session made under another event loop, closing it where that loop can."""
    if session.closed or loop is None:
        return
    if loop.is_running():
        asyncio.run_coroutine_threadsafe(session.close(), loop)
        return
    # The loop is closed (or stopped): its sockets can no longer be closed through it; they
    # close when collected. Detach so aiohttp does not warn about an unclosed session.
    connector = session.connector
    session.detach()
    if connector is not None:
        with contextlib.suppress(RuntimeError):
            connector._close()


__all__ = ["AioHttpChatCompletionClient", "retry_after_seconds"]
