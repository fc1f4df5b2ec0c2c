"""genteach's lean OpenAI-compatible chat-completions client, on aiohttp.

At high concurrency the ``openai`` SDK's transport, not the server, sets the pace (about
64% of the ideal call rate with 256 calls in flight against a server taking 1 s a call;
see docs/benchmarks/throughput.md). :class:`HttpModel` sends each request through one
shared aiohttp session with no pool limit (:class:`~genteach.models.resilient.ResilientModel`
bounds the calls in flight) and raises genteach's own errors.

Example:
    >>> teacher = HttpModel("my-model", "http://127.0.0.1:8000/v1", "EMPTY", temperature=0.7)
    >>> completion = await teacher.complete(ModelRequest([message("user", "Hi")]))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from genteach.models._status import status_error
from genteach.models.base import (
    Choice,
    Completion,
    Message,
    ModelError,
    ModelRequest,
    ToolCall,
    TransientModelError,
    UnreachableError,
    Usage,
)

_FINISH = {
    "stop": "stop",
    "end_turn": "stop",
    "eos": "stop",
    "length": "length",
    "max_tokens": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
# Servers built on uvicorn (vLLM, SGLang, transformers serve) drop idle connections after
# 5 s; reusing one they just closed fails the request, so give ours up a little sooner.
_KEEPALIVE_S = 4.0


class HttpModel:
    """A :class:`~genteach.models.base.ModelClient` that POSTs ``{base_url}/chat/completions``.

    Args:
        model: model name sent to the endpoint (and reported as :attr:`model_name`).
        base_url: the OpenAI-compatible endpoint, e.g. ``http://127.0.0.1:8000/v1``.
        api_key: sent as a bearer token; ``None`` sends no Authorization header.
        temperature / max_tokens: defaults for requests that leave them unset.
        structured_output: the endpoint supports JSON-schema ``response_format``; a
            request's ``response_schema`` is then sent as one (else the parser alone checks).
        grammar_field: a body field that takes a request's Lark ``grammar``, for servers
            that constrain decoding with one (e.g. ``"guided_grammar"`` on a vLLM whose
            guided-decoding backend reads Lark); ``None`` (the default) ignores grammars.
        extra_body: more fields sent in every request body (e.g. ``{"top_p": 0.9}``).
        timeout: seconds one request may take (``None``: no limit).
        max_connections: most open connections (0: no limit).
        default_headers: extra headers sent with every request.
        proxy: an HTTP proxy URL for every request.
        trust_env: with no ``proxy``, take one from ``HTTPS_PROXY``/``HTTP_PROXY`` (and
            ``NO_PROXY``), as the openai SDK does. Read once, here: aiohttp's own
            ``trust_env`` looks it up in a thread on every request.

    Everything else of a request goes on the wire as OpenAI defines it: tool turns and an
    assistant's ``tool_calls``, ``stop``, ``tools``, ``n`` (every sample comes back in
    :attr:`Completion.choices`), ``seed``. An empty or null ``content`` comes back as
    ``""``. Errors: 401, 403, 404 and an unknown model are :class:`FatalModelError`;
    408, 409, 425, 429, 5xx, timeouts, dropped connections and malformed bodies are
    :class:`TransientModelError`; nothing answering at the address is
    :class:`UnreachableError`; other statuses are :class:`ModelError`.

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
        temperature: float | None = None,
        max_tokens: int | None = None,
        structured_output: bool = False,
        grammar_field: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | None = 600.0,
        max_connections: int = 0,
        default_headers: Mapping[str, str] | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self._name = model
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.structured_output = structured_output
        self.grammar_field = grammar_field
        self.extra_body = dict(extra_body or {})
        self.timeout = timeout
        self.max_connections = max_connections
        self.proxy = proxy if proxy is not None or not trust_env else _env_proxy(self.url)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key is not None:
            headers["Authorization"] = f"Bearer {api_key}"
        headers.update(default_headers or {})
        self._headers = headers
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def model_name(self) -> str:
        return self._name

    async def complete(self, request: ModelRequest) -> Completion:
        """One chat completion; see the class docstring for what is sent and raised."""
        data = json.dumps(self.body(request)).encode()
        return _parse(await self._post(data), self._name)

    def body(self, request: ModelRequest) -> dict[str, Any]:
        """The JSON body sent for ``request``. Pure."""
        body: dict[str, Any] = {
            "model": self._name,
            "messages": [wire_message(m) for m in request.messages],
        }
        if request.response_schema is not None and self.structured_output:
            # strict=False: OpenAI's strict mode rejects ordinary pydantic schemas (optional
            # fields, open objects); the caller's parser validates the answer either way.
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": request.response_schema.__name__,
                    "schema": request.response_schema.model_json_schema(),
                    "strict": False,
                },
            }
        if request.grammar is not None and self.grammar_field is not None:
            body[self.grammar_field] = request.grammar
        if request.stop:
            body["stop"] = list(request.stop)
        if request.tools:
            body["tools"] = [t.openai() for t in request.tools]
        if request.n > 1:
            body["n"] = request.n
        temperature = request.temperature if request.temperature is not None else self.temperature
        if temperature is not None:
            body["temperature"] = temperature
        max_tokens = request.max_tokens if request.max_tokens is not None else self.max_tokens
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if request.seed is not None:
            body["seed"] = request.seed
        body.update(self.extra_body)
        return body

    async def close(self) -> None:
        """Close the session (a later call opens a new one)."""
        session, loop = self._session, self._loop
        self._session = self._loop = None
        if session is not None:
            await _release(session, loop)

    # ----------------------------------------------------------------- transport
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

    async def _post(self, data: bytes) -> bytes:
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
        except aiohttp.ClientConnectorError as exc:
            # Refused, unknown host, unreachable network, TLS handshake: nothing answered.
            raise UnreachableError(f"cannot connect to {self.base_url}: {exc}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            # Connection reset, server disconnected, body cut off.
            raise TransientModelError(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= status < 300:
            message, code = _error_message(raw)
            raise status_error(status, message, code=code, retry_after=retry_after_seconds(headers))
        return raw


def wire_message(m: Message) -> dict[str, Any]:
    """A genteach message in OpenAI's wire format (``trained`` is genteach's own: dropped)."""
    out: dict[str, Any] = {"role": m["role"], "content": m["content"]}
    calls = m.get("tool_calls")
    if calls:
        out["tool_calls"] = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for c in calls
        ]
        if not m["content"]:
            out["content"] = None
    if m["role"] == "tool":
        out["tool_call_id"] = m.get("tool_call_id", "")
    return out


# --------------------------------------------------------------------------- helpers


def _parse(raw: bytes, model: str) -> Completion:
    """A 200 response body -> :class:`Completion`.

    A body that is not the JSON we expect is transient: over a live connection it is most
    often a proxy or an overloaded server answering 200 with an error page or a cut-off
    body, and the same request usually succeeds when sent again.
    """
    try:
        data = json.loads(raw)
        choices = [_choice(c) for c in data["choices"]]
        usage = data.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
        first = choices[0]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise TransientModelError(
            f"malformed response ({type(exc).__name__}: {exc}): {_snippet(raw)}"
        ) from exc
    return Completion(
        text=first.text,
        usage=Usage(prompt_tokens, completion_tokens, 1),
        model=model,
        finish_reason=first.finish_reason,
        tool_calls=first.tool_calls,
        choices=tuple(choices) if len(choices) > 1 else (),
    )


def _choice(choice: Mapping[str, Any]) -> Choice:
    message = choice["message"]
    content = message.get("content")
    if content is None:
        content = ""
    elif not isinstance(content, str):
        raise TypeError(f"content is {type(content).__name__}")
    calls: list[ToolCall] = []
    for call in message.get("tool_calls") or ():
        fn = call["function"]
        arguments = fn.get("arguments")
        if not isinstance(arguments, str):  # some servers send the object itself
            arguments = json.dumps(arguments if arguments is not None else {})
        calls.append({"id": str(call.get("id") or ""), "name": fn["name"], "arguments": arguments})
    finish = choice.get("finish_reason")
    reason = "unknown" if finish is None else _FINISH.get(str(finish).lower(), str(finish))
    return Choice(content, reason, tuple(calls))


def _error_message(raw: bytes) -> tuple[str, str | None]:
    """The server's error message and code: OpenAI ``{"error": {"message", "code"}}``,
    vLLM ``{"message"}``, FastAPI ``{"detail"}``, else the start of the body."""
    try:
        data = json.loads(raw)
    except ValueError:
        return _snippet(raw), None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            code = error.get("code")
            return str(error["message"]), None if code is None else str(code)
        for key in ("error", "message", "detail"):
            if data.get(key):
                return str(data[key]), None
    return _snippet(raw), None


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


__all__ = ["HttpModel", "retry_after_seconds", "wire_message"]
