"""genteach's HTTP client (and the AutoGen adapter on the openai SDK) against the loopback
stub server: the request on the wire, the completion back, and what each failure means."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import time
import warnings
from collections.abc import Sequence
from email.utils import formatdate
from typing import Any

import pytest
from pydantic import BaseModel

from genteach.models import (
    AutoGenModel,
    FatalModelError,
    HttpModel,
    ModelConfig,
    ModelError,
    ResilientModel,
    TransientModelError,
    UnreachableError,
    build_client,
    message,
)
from genteach.models.base import Message, ModelRequest, ToolSpec
from genteach.models.http import _parse, retry_after_seconds
from openai_stub import openai_stub


def echo(messages: Sequence[dict[str, Any]]) -> str:
    return f"echo: {messages[-1]['content']}"


class Answer(BaseModel):
    answer: str
    score: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ask(text: str, **kw: Any) -> ModelRequest:
    return ModelRequest([message("user", text)], **kw)


async def test_normal_call_sends_model_messages_and_args() -> None:
    with openai_stub(echo) as (url, state):
        client = HttpModel("stub-model", url, api_key="sk-test")
        completion = await client.complete(
            ModelRequest(
                [message("system", "be brief"), message("user", "hi there", trained=False)],
                temperature=0.3,
                max_tokens=64,
                seed=7,
            )
        )
        await client.close()
    assert completion.text == "echo: hi there"
    assert (completion.finish_reason, completion.model, completion.choices) == (
        "stop",
        "stub-model",
        (),
    )
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 3)
    assert completion.usage.calls == 1
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


async def test_defaults_and_empty_content() -> None:
    with openai_stub(lambda m: "") as (url, state):
        client = HttpModel("stub-model", url, temperature=0.0, max_tokens=8)
        completion = await client.complete(ask("say nothing"))
        await client.close()
    assert completion.text == "" and completion.empty and not completion.complete_answer
    assert "Authorization" not in state.headers[0]
    assert (state.requests[0]["temperature"], state.requests[0]["max_tokens"]) == (0.0, 8)


async def test_tool_turns_tools_stop_samples_and_extra_fields_on_the_wire() -> None:
    call = {"id": "call_1", "name": "weather", "arguments": '{"city": "Paris"}'}
    history: list[Message] = [
        message("user", "Weather in Paris?"),
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_1", "name": "weather"},
    ]
    tool = ToolSpec("weather", "Forecast for a city.", {"type": "object", "properties": {}})

    def router(messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return {
            "content": None,
            "finish_reason": "tool_calls",
            "tool_calls": [
                {"id": "c9", "type": "function", "function": {"name": "weather", "arguments": {}}}
            ],
        }

    with openai_stub(router) as (url, state):
        client = HttpModel("m", url, grammar_field="guided_grammar", extra_body={"top_p": 0.5})
        completion = await client.complete(
            ModelRequest(history, tools=[tool], stop=["Observation:"], n=2, grammar="start: /x/")
        )
        plain = HttpModel("m", url)
        await plain.complete(ask("x", grammar="start: /x/"))
        await client.close()
        await plain.close()
    sent = state.requests[0]
    assert sent["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_1"},
    ]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Forecast for a city.",
                "parameters": {"type": "object", "properties": {}},
            },
        }
    ]
    assert (sent["stop"], sent["n"], sent["guided_grammar"], sent["top_p"]) == (
        ["Observation:"],
        2,
        "start: /x/",
        0.5,
    )
    assert "guided_grammar" not in state.requests[1], "a grammar is ignored unless configured"
    assert completion.finish_reason == "tool_calls" and not completion.empty
    assert completion.tool_calls == ({"id": "c9", "name": "weather", "arguments": "{}"},)
    assert len(completion.choices) == 2 and completion.samples[1].tool_calls


async def test_429_is_transient_with_retry_after() -> None:
    with openai_stub(echo, faults=[429], retry_after="2") as (url, _):
        client = HttpModel("m", url)
        with pytest.raises(TransientModelError) as info:
            await client.complete(ask("x"))
        await client.close()
    assert info.value.retry_after == 2.0 and info.value.status == 429
    assert info.value.overload  # the adaptive concurrency limit backs off
    assert str(info.value) == "HTTP 429: injected 429"


async def test_5xx_is_transient_and_retried() -> None:
    with openai_stub(echo, faults=[500, 503]) as (url, state):
        client = HttpModel("m", url)
        with pytest.raises(TransientModelError, match="HTTP 500") as info:
            await client.complete(ask("x"))
        assert not info.value.overload
        resilient = ResilientModel(client, base_delay=0.01)
        completion = await resilient.complete(ask("again"))
        await resilient.close()
    assert completion.text == "echo: again"
    assert len(state.requests) == 3


async def test_400_is_permanent_with_server_message() -> None:
    with openai_stub(echo, faults=[400]) as (url, _):
        client = HttpModel("m", url)
        with pytest.raises(ModelError) as info:
            await client.complete(ask("x"))
        await client.close()
    assert type(info.value) is ModelError
    assert str(info.value) == "HTTP 400: injected 400"


OPENAI_KEY = (401, {"error": {"message": "Incorrect API key provided: sk-bad.", "code": "invalid_api_key"}})  # fmt: skip
VLLM_MODEL = (404, {"object": "error", "message": "The model `gpt-x` does not exist.", "type": "NotFoundError", "code": 404})  # fmt: skip
LITELLM_MODEL = (400, {"error": {"message": "Invalid model name passed in model=gpt-x"}})
OLLAMA_MODEL = (404, {"error": 'model "gpt-x" not found, try pulling it first'})
NO_QUOTA = (429, {"error": {"message": "You exceeded your current quota.", "code": "insufficient_quota"}})  # fmt: skip


@pytest.mark.parametrize(
    ("fault", "text"),
    [
        (OPENAI_KEY, "HTTP 401: Incorrect API key provided: sk-bad."),
        ((403, {"detail": "Forbidden"}), "HTTP 403: Forbidden"),
        (VLLM_MODEL, "HTTP 404: The model `gpt-x` does not exist."),
        (LITELLM_MODEL, "HTTP 400: Invalid model name passed in model=gpt-x"),
        (OLLAMA_MODEL, 'HTTP 404: model "gpt-x" not found, try pulling it first'),
        (NO_QUOTA, "HTTP 429: You exceeded your current quota."),
    ],
)
async def test_fatal_statuses_stop_every_later_call(fault: Any, text: str) -> None:
    with openai_stub(echo, faults=[fault]) as (url, state):
        model = ResilientModel(HttpModel("m", url), base_delay=0.01)
        with pytest.raises(FatalModelError) as info:
            await model.complete(ask("x"))
        with pytest.raises(FatalModelError):
            await model.complete(ask("y"))  # not sent: the run is over
        await model.close()
    assert str(info.value) == text
    assert len(state.requests) == 1


async def test_nothing_listening_is_fatal_at_start_and_transient_later() -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    client = HttpModel("m", dead)
    with pytest.raises(UnreachableError, match=r"cannot connect to http://127\.0\.0\.1"):
        await client.complete(ask("x"))
    model = ResilientModel(HttpModel("m", dead), base_delay=0.01)
    with pytest.raises(FatalModelError, match="nothing is listening at the endpoint"):
        await model.complete(ask("x"))
    await client.close()
    await model.close()
    with openai_stub(echo) as (url, _):
        up = ResilientModel(HttpModel("m", url), max_retries=2, base_delay=0.01)
        assert (await up.complete(ask("a"))).text == "echo: a"
    await up.client.close()  # drop the kept-alive connection: the next call connects anew
    # the server is gone now: after an answer that is an outage, retried, not fatal
    with pytest.raises(TransientModelError, match="gave up after 2 retries: cannot connect"):
        await up.complete(ask("b"))
    await up.close()
    with pytest.raises(ValueError, match="http"):
        HttpModel("m", "127.0.0.1:8000/v1")


async def test_timeout_is_transient() -> None:
    def slow(messages: Sequence[dict[str, Any]]) -> str:
        time.sleep(0.5)
        return "late"

    with openai_stub(slow) as (url, _):
        client = HttpModel("m", url, timeout=0.1)
        with pytest.raises(TransientModelError, match="Timeout") as info:
            await client.complete(ask("x"))
        assert info.value.overload
        await client.close()
        await asyncio.sleep(0.5)  # let the stub's late answer fail inside this test


async def test_structured_output_request_body() -> None:
    with openai_stub(lambda m: '{"answer": "4", "score": 1}') as (url, state):
        model = HttpModel("m", url, structured_output=True)
        completion = await model.complete(ask("2+2?", response_schema=Answer))
        plain = HttpModel("m", url)
        await plain.complete(ask("2+2?", response_schema=Answer))
        await model.close()
        await plain.close()
    assert Answer.model_validate_json(completion.text).score == 1
    assert state.requests[0]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Answer", "schema": Answer.model_json_schema(), "strict": False},
    }
    assert "response_format" not in state.requests[1]


async def test_session_and_connection_reused_across_calls() -> None:
    with openai_stub(echo) as (url, state):
        client = HttpModel("m", url)
        await client.complete(ask("a"))
        session = client._session
        await client.complete(ask("b"))
        await asyncio.gather(*(client.complete(ask(str(i))) for i in range(4)))
        assert client._session is session
        await client.close()
        assert session is not None and session.closed
    assert state.peers[0] == state.peers[1]  # one keep-alive connection for sequential calls
    assert len(set(state.peers)) <= 4


def test_two_event_loops_in_a_row() -> None:
    with openai_stub(echo) as (url, state):
        client = HttpModel("m", url)

        async def call(text: str) -> str:
            return (await client.complete(ask(text))).text

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


async def test_a_cancelled_call_is_cancelled() -> None:
    def slow(messages: Sequence[dict[str, Any]]) -> str:
        time.sleep(0.5)
        return "late"

    with openai_stub(slow) as (url, _):
        client = HttpModel("m", url)
        call = asyncio.ensure_future(client.complete(ask("x")))
        await asyncio.sleep(0.05)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await client.close()
        await asyncio.sleep(0.5)  # let the stub's late answer fail inside this test


def test_malformed_bodies_are_transient_and_finish_reasons_are_kept() -> None:
    for raw in [b'{"choices": []}', b'{"choices": [{"mess', b"<html>bad gateway</html>", b""]:
        with pytest.raises(TransientModelError, match="malformed"):
            _parse(raw, "m")
    with pytest.raises(TransientModelError, match="content is list"):
        _parse(b'{"choices": [{"message": {"content": [1]}}]}', "m")
    null = _parse(b'{"choices": [{"message": {"content": null}, "finish_reason": "length"}]}', "m")
    assert (null.text, null.finish_reason, null.cut_off, null.empty) == ("", "length", True, True)
    assert (null.usage.prompt_tokens, null.usage.completion_tokens) == (0, 0)
    other = _parse(b'{"choices": [{"message": {"content": "x"}, "finish_reason": "eos"}]}', "m")
    missing = _parse(b'{"choices": [{"message": {"content": "x"}}]}', "m")
    assert (other.finish_reason, missing.finish_reason) == ("stop", "unknown")


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


async def test_proxy_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    target = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: only the proxy answers
    with openai_stub(echo) as (url, state):
        proxy = url.removesuffix("/v1")
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = HttpModel("m", target)
        assert client.proxy == proxy
        result = await client.complete(ask("via proxy"))
        await client.close()
        assert result.text == "echo: via proxy"
        assert HttpModel("m", target, trust_env=False).proxy is None
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert HttpModel("m", target).proxy is None
    assert len(state.requests) == 1


def test_build_client_returns_the_native_clients() -> None:
    http = build_client(ModelConfig(base_url="http://127.0.0.1:1/v1", model="m", api_key="k"))
    assert isinstance(http, HttpModel) and not http.structured_output
    openai = build_client(ModelConfig(api_key="k", model="gpt-4o"))
    assert isinstance(openai, HttpModel) and openai.structured_output
    sdk = build_client(ModelConfig(base_url="http://127.0.0.1:1/v1", api_key="k", transport="openai-sdk"))  # fmt: skip
    assert isinstance(sdk, AutoGenModel)


# -- the AutoGen adapter, on AutoGen's OpenAI client (the openai SDK) ------------------------
def sdk_client(url: str) -> AutoGenModel:
    client = build_client(ModelConfig(base_url=url, model="m", api_key="k", transport="openai-sdk"))
    assert isinstance(client, AutoGenModel)
    return client


async def test_autogen_adapter_maps_tool_turns_and_tool_calls() -> None:
    call = {"id": "call_1", "name": "weather", "arguments": '{"city": "Paris"}'}
    history: list[Message] = [
        message("user", "Weather in Paris?"),
        {"role": "assistant", "content": "Let me look.", "tool_calls": [call]},
        {"role": "tool", "content": "21 C", "tool_call_id": "call_1", "name": "weather"},
    ]

    def router(messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
        fn = {"name": "weather", "arguments": '{"city": "Lyon"}'}
        return {
            "content": None,
            "finish_reason": "tool_calls",
            "tool_calls": [{"id": "c2", "type": "function", "function": fn}],
        }

    with openai_stub(router) as (url, state):
        model = sdk_client(url)
        completion = await model.complete(
            ModelRequest(history, tools=[ToolSpec("weather")], stop=["END"], grammar="start: /x/")
        )
        await model.close()
    sent = state.requests[0]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "tool"]
    assert sent["messages"][1]["tool_calls"][0]["function"] == {
        "name": "weather",
        "arguments": '{"city": "Paris"}',
    }
    assert sent["messages"][2]["tool_call_id"] == "call_1"
    assert sent["messages"][2]["content"] == "21 C"
    assert sent["tools"][0]["function"]["name"] == "weather" and sent["stop"] == ["END"]
    assert "grammar" not in json.dumps(sent), "AutoGen clients take no grammar"
    assert completion.finish_reason == "tool_calls"
    assert completion.tool_calls == (
        {"id": "c2", "name": "weather", "arguments": '{"city": "Lyon"}'},
    )


async def test_autogen_adapter_classifies_sdk_errors() -> None:
    with openai_stub(echo, faults=[OPENAI_KEY, 429, 400]) as (url, _):
        model = sdk_client(url)
        with pytest.raises(FatalModelError, match="HTTP 401: Incorrect API key provided"):
            await model.complete(ask("x"))
        with pytest.raises(TransientModelError) as info:
            await model.complete(ask("x"))
        assert info.value.status == 429
        with pytest.raises(ModelError) as bad:
            await model.complete(ask("x"))
        assert type(bad.value) is ModelError and str(bad.value) == "HTTP 400: injected 400"
        samples = await model.complete(ask("two", n=2, seed=5))
        await model.close()
    assert [c.text for c in samples.choices] == ["echo: two", "echo: two"]
    assert samples.usage.calls == 2
    dead = sdk_client(f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(UnreachableError):
        await dead.complete(ask("x"))
    await dead.close()
