"""The aiohttp OpenAI-compatible client against the loopback stub server."""

from __future__ import annotations

import asyncio
import gc
import socket
import time
import warnings
from collections.abc import Sequence
from email.utils import formatdate

import pytest
from autogen_core import CancellationToken
from autogen_core.models import ModelFamily, ModelInfo, SystemMessage, UserMessage
from pydantic import BaseModel

from genteach.models import AutoGenModel, ModelError, ResilientModel, TransientModelError, message
from genteach.models.base import ModelRequest
from genteach.models.http import AioHttpChatCompletionClient, _parse, retry_after_seconds
from openai_stub import openai_stub


def echo(messages: Sequence[dict[str, str]]) -> str:
    return f"echo: {messages[-1]['content']}"


def structured_info() -> ModelInfo:
    return ModelInfo(
        vision=False,
        function_calling=False,
        json_output=True,
        family=ModelFamily.UNKNOWN,
        structured_output=True,
    )


class Answer(BaseModel):
    answer: str
    score: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_normal_call_sends_model_messages_and_args() -> None:
    with openai_stub(echo) as (url, state):
        client = AioHttpChatCompletionClient("stub-model", url, api_key="sk-test")
        result = await client.create(
            [SystemMessage(content="be brief"), UserMessage(content="hi there", source="user")],
            extra_create_args={"temperature": 0.3, "max_tokens": 64, "seed": 7},
        )
        await client.close()
    assert result.content == "echo: hi there"
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (4, 3)
    assert client.total_usage().completion_tokens == 3
    assert client.actual_usage().prompt_tokens == 4
    assert state.requests == [
        {
            "model": "stub-model",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi there"},
            ],
            "temperature": 0.3,
            "max_tokens": 64,
            "seed": 7,
        }
    ]
    assert state.headers[0]["Authorization"] == "Bearer sk-test"
    assert state.headers[0]["Content-Type"] == "application/json"


async def test_through_autogen_model_and_empty_content() -> None:
    with openai_stub(lambda m: "") as (url, state):
        model = AutoGenModel(
            AioHttpChatCompletionClient("stub-model", url), temperature=0.0, max_tokens=8
        )
        completion = await model.complete(ModelRequest([message("user", "say nothing")]))
        await model.close()
    assert model.model_name == "stub-model"
    assert completion.text == ""  # the agent's parser rejects it like any unusable text
    assert completion.usage.calls == 1
    assert "Authorization" not in state.headers[0]
    assert state.requests[0]["temperature"] == 0.0
    assert state.requests[0]["max_tokens"] == 8


async def test_429_is_transient_with_retry_after() -> None:
    with openai_stub(echo, faults=[429], retry_after="2") as (url, _):
        model = AutoGenModel(AioHttpChatCompletionClient("m", url))
        with pytest.raises(TransientModelError) as info:
            await model.complete(ModelRequest([message("user", "x")]))
        await model.close()
    assert info.value.retry_after == 2.0
    assert info.value.overload  # the adaptive concurrency limit backs off
    assert "HTTP 429: injected 429" in str(info.value)
    # raised by the client itself, not re-wrapped by AutoGenModel's classify_error
    assert info.value.__cause__ is None


async def test_5xx_is_transient_and_retried() -> None:
    with openai_stub(echo, faults=[500, 503]) as (url, state):
        client = AioHttpChatCompletionClient("m", url)
        with pytest.raises(TransientModelError, match="HTTP 500") as info:
            await client.create([UserMessage(content="x", source="user")])
        assert not info.value.overload
        resilient = ResilientModel(AutoGenModel(client), base_delay=0.01)
        completion = await resilient.complete(ModelRequest([message("user", "again")]))
        await resilient.close()
    assert completion.text == "echo: again"
    assert len(state.requests) == 3


async def test_400_is_permanent_with_server_message() -> None:
    with openai_stub(echo, faults=[400]) as (url, _):
        client = AioHttpChatCompletionClient("m", url)
        with pytest.raises(ModelError) as info:
            await client.create([UserMessage(content="x", source="user")])
        await client.close()
    assert type(info.value) is ModelError
    assert str(info.value) == "HTTP 400: injected 400"


async def test_connection_refused_is_transient() -> None:
    client = AioHttpChatCompletionClient("m", f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(TransientModelError) as info:
        await client.create([UserMessage(content="x", source="user")])
    await client.close()
    assert not info.value.overload
    with pytest.raises(ValueError, match="http"):
        AioHttpChatCompletionClient("m", "127.0.0.1:8000/v1")


async def test_timeout_is_transient() -> None:
    def slow(messages: Sequence[dict[str, str]]) -> str:
        time.sleep(0.5)
        return "late"

    with openai_stub(slow) as (url, _):
        client = AioHttpChatCompletionClient("m", url, timeout=0.1)
        with pytest.raises(TransientModelError, match="Timeout") as info:
            await client.create([UserMessage(content="x", source="user")])
        assert info.value.overload
        await client.close()
        await asyncio.sleep(0.5)  # let the stub's late answer fail inside this test


async def test_structured_output_request_body() -> None:
    with openai_stub(lambda m: '{"answer": "4", "score": 1}') as (url, state):
        model = AutoGenModel(AioHttpChatCompletionClient("m", url, model_info=structured_info()))
        completion = await model.complete(
            ModelRequest([message("user", "2+2?")], response_schema=Answer)
        )
        raw = AioHttpChatCompletionClient("m", url, model_info=structured_info())
        await raw.create([UserMessage(content="json", source="user")], json_output=True)
        await raw.close()
        await model.close()
    assert Answer.model_validate_json(completion.text).score == 1
    assert state.requests[0]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Answer", "schema": Answer.model_json_schema(), "strict": False},
    }
    assert state.requests[1]["response_format"] == {"type": "json_object"}


async def test_no_response_format_without_structured_output() -> None:
    with openai_stub(echo) as (url, state):
        model = AutoGenModel(AioHttpChatCompletionClient("m", url))
        await model.complete(ModelRequest([message("user", "x")], response_schema=Answer))
        with pytest.raises(ValueError, match="structured output"):
            await model.client.create([UserMessage(content="x", source="user")], json_output=Answer)
        await model.close()
    assert "response_format" not in state.requests[0]


async def test_session_and_connection_reused_across_calls() -> None:
    with openai_stub(echo) as (url, state):
        client = AioHttpChatCompletionClient("m", url)
        await client.create([UserMessage(content="a", source="user")])
        session = client._session
        await client.create([UserMessage(content="b", source="user")])
        await asyncio.gather(
            *(client.create([UserMessage(content=str(i), source="user")]) for i in range(4))
        )
        assert client._session is session
        await client.close()
        assert session is not None and session.closed
    assert state.peers[0] == state.peers[1]  # one keep-alive connection for sequential calls
    assert len(set(state.peers)) <= 4


def test_two_event_loops_in_a_row() -> None:
    with openai_stub(echo) as (url, state):
        client = AioHttpChatCompletionClient("m", url)

        async def call(text: str) -> str:
            result = await client.create([UserMessage(content=text, source="user")])
            assert isinstance(result.content, str)
            return result.content

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert asyncio.run(call("one")) == "echo: one"
            first = client._session
            assert asyncio.run(call("two")) == "echo: two"  # no close in between
            assert client._session is not first and first is not None and first.closed
            asyncio.run(client.close())
            assert asyncio.run(call("three")) == "echo: three"  # usable after close
            asyncio.run(client.close())
            del first
            gc.collect()
    assert len(state.requests) == 3
    unclosed = [w for w in caught if "Unclosed" in str(w.message)]
    assert unclosed == []


async def test_cancellation_token_cancels_the_request() -> None:
    def slow(messages: Sequence[dict[str, str]]) -> str:
        time.sleep(0.5)
        return "late"

    with openai_stub(slow) as (url, _):
        client = AioHttpChatCompletionClient("m", url)
        token = CancellationToken()
        call = asyncio.ensure_future(
            client.create([UserMessage(content="x", source="user")], cancellation_token=token)
        )
        await asyncio.sleep(0.05)
        token.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await client.close()
        await asyncio.sleep(0.5)  # let the stub's late answer fail inside this test


def test_malformed_bodies_are_transient() -> None:
    for raw in [b'{"choices": []}', b'{"choices": [{"mess', b"<html>bad gateway</html>", b""]:
        with pytest.raises(TransientModelError, match="malformed"):
            _parse(raw)
    result = _parse(b'{"choices": [{"message": {"content": null}, "finish_reason": "tool_calls"}]}')
    assert result.content == ""
    assert result.finish_reason == "function_calls"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (0, 0)


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "1.5"}) == 1.5
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "soon"}) is None
    in_10s = retry_after_seconds({"retry-after": formatdate(time.time() + 10, usegmt=True)})
    assert in_10s is not None and 8.0 <= in_10s <= 10.0
    past = formatdate(time.time() - 100, usegmt=True)
    assert retry_after_seconds({"retry-after": past}) == 0.0


def test_token_estimates_and_info() -> None:
    client = AioHttpChatCompletionClient("m", "http://127.0.0.1:1/v1/", context_length=1000)
    msgs = [UserMessage(content="x" * 400, source="user")]
    assert client.url == "http://127.0.0.1:1/v1/chat/completions"
    assert client.count_tokens(msgs) == 104
    assert client.remaining_tokens(msgs) == 896
    assert client.model_info["structured_output"] is False
    assert client.capabilities["json_output"] is False


async def test_proxy_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    target = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: only the proxy answers
    with openai_stub(echo) as (url, state):
        proxy = url.removesuffix("/v1")
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = AioHttpChatCompletionClient("m", target)
        assert client.proxy == proxy
        result = await client.create([UserMessage(content="via proxy", source="user")])
        await client.close()
        assert result.content == "echo: via proxy"
        assert AioHttpChatCompletionClient("m", target, trust_env=False).proxy is None
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert AioHttpChatCompletionClient("m", target).proxy is None
    assert len(state.requests) == 1


async def test_stream_is_refused() -> None:
    client = AioHttpChatCompletionClient("m", "http://127.0.0.1:1/v1")
    with pytest.raises(ValueError, match="stream"):
        await client.create(
            [UserMessage(content="x", source="user")], extra_create_args={"stream": True}
        )
