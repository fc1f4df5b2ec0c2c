"""The embedded client's event-loop side with a fake generator (no model, no torch): a call
that makes progress is never cut short, a stalled one fails as transient; rows per sample;
tool calls and stop sequences in the answer; messages as chat templates take them."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from pydantic import BaseModel, Field

from constrained import decoder
from genteach.models.base import Choice, ModelRequest, ToolSpec, TransientModelError, message
from genteach.models.local import (
    LocalModel,
    _choice,
    _Request,
    _Result,
    _stop_position,
    chat_message,
    resolve_engine,
)
from genteach.models.resilient import ResilientModel


def fake_generator(
    model: LocalModel, *, seconds: float, step_every: float | None
) -> list[list[_Request]]:
    """Replace the model's batch runner: each batch takes ``seconds``, making a token every
    ``step_every`` seconds (``None``: none at all, a stuck forward pass). Returns the
    batches it ran."""
    batches: list[list[_Request]] = []

    def run_batch(batch: list[_Request]) -> list[_Result]:
        batches.append(batch)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(step_every or 0.01)
            if step_every is not None:
                model._step()
            if model._abort.is_set():
                break
        return [_Result(f"answer {i} seed {r.seed}", 10, 3, "stop") for i, r in enumerate(batch)]

    model._run_batch = run_batch  # type: ignore[method-assign]
    return batches


async def test_a_call_making_progress_outlives_every_timeout() -> None:
    local = LocalModel(stall_timeout=0.3, batch_window_ms=1)
    fake_generator(local, seconds=1.0, step_every=0.05)
    model = ResilientModel(local, timeout=0.2)  # a wall-clock timeout it must not apply
    assert model.timeout is None
    started = time.monotonic()
    completion = await model.complete(ModelRequest([message("user", "hi")], seed=4))
    assert time.monotonic() - started >= 1.0
    assert completion.text == "answer 0 seed 4" and completion.model == local.model_name
    await local.close()


async def test_a_stalled_call_fails_as_transient_and_the_batch_is_ended() -> None:
    local = LocalModel(stall_timeout=0.3, batch_window_ms=1)
    fake_generator(local, seconds=5.0, step_every=None)
    started = time.monotonic()
    with pytest.raises(
        TransientModelError, match=r"made no new token for 0\.\ds \(stall_timeout 0\.3s\)"
    ):
        await local.complete(ModelRequest([message("user", "hi")]))
    assert 0.3 <= time.monotonic() - started < 2.0
    assert local._abort.is_set()  # the stuck batch stops at its next step
    await local.close()


async def test_samples_run_as_rows_with_consecutive_seeds() -> None:
    local = LocalModel(batch_window_ms=20, max_batch_size=8)
    batches = fake_generator(local, seconds=0.0, step_every=0.001)
    completion = await local.complete(ModelRequest([message("user", "hi")], n=3, seed=7))
    assert [r.seed for r in batches[0]] == [7, 8, 9]
    assert [c.text for c in completion.choices] == [
        "answer 0 seed 7",
        "answer 1 seed 8",
        "answer 2 seed 9",
    ]
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (10, 9)
    await local.close()


class City(BaseModel):
    city: str


def test_rows_carry_the_request() -> None:
    async def rows(local: LocalModel, request: ModelRequest) -> list[_Request]:
        return local._rows(request)

    local = LocalModel(constrained=False, max_tokens=50, temperature=0.5)
    request = ModelRequest(
        [message("user", "hi")],
        stop=["Observation:"],
        tools=[ToolSpec("f", "does f")],
        response_schema=City,
        grammar="start: /x/",
    )
    (row,) = asyncio.run(rows(local, request))
    assert (row.max_new_tokens, row.temperature, row.stop) == (50, 0.5, ("Observation:",))
    assert row.tools == [
        {
            "type": "function",
            "function": {"name": "f", "description": "does f", "parameters": {"type": "object"}},
        }
    ]
    assert row.grammar is None and row.schema is None, "unconstrained: both ignored"
    pytest.importorskip("llguidance")
    constrained = LocalModel(constrained=True)
    (with_grammar,) = asyncio.run(rows(constrained, request))
    assert with_grammar.grammar == "start: /x/" and with_grammar.schema is None
    (with_schema,) = asyncio.run(rows(constrained, request.with_(grammar=None)))
    assert with_schema.schema == {
        "properties": {
            "city": {"title": "City", "type": "string", "pattern": "^([^<.…\\s][\\s\\S]{0,})?$"}
        },
        "required": ["city"],
        "title": "City",
        "type": "object",
        "additionalProperties": False,
    }


def test_tool_calls_in_the_answer_and_stop_sequences() -> None:
    text = (
        'I will look it up.\n<tool_call>\n{"name": "weather", "arguments": {"city": "Paris"}}\n'
        "</tool_call>\n<tool_call>\nnot json\n</tool_call>"
    )
    choice = _choice(_Result(text, 1, 1, "stop"), tools=True)
    assert choice.finish_reason == "tool_calls"
    assert choice.tool_calls == (
        {"id": "call_0", "name": "weather", "arguments": json.dumps({"city": "Paris"})},
    )
    assert choice.text == "I will look it up.\n\n<tool_call>\nnot json\n</tool_call>"
    assert _choice(_Result(text, 1, 1, "stop"), tools=False) == Choice(text, "stop")
    assert _stop_position("Thought: x\nObservation: y", ["Observation:", "Final"]) == 11
    assert _stop_position("nothing here", ["Observation:"]) is None


def test_messages_as_chat_templates_take_them() -> None:
    call = {"id": "c1", "name": "weather", "arguments": '{"city": "Paris"}'}
    assert chat_message({"role": "assistant", "content": "", "tool_calls": [call]}) == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "weather", "arguments": {"city": "Paris"}},
            }
        ],
    }
    tool: dict[str, Any] = {"role": "tool", "content": "21 C", "tool_call_id": "c1", "name": "w"}
    assert chat_message(tool) == tool  # type: ignore[arg-type]
    assert chat_message(message("user", "hi", trained=False)) == {"role": "user", "content": "hi"}


async def test_load_failures_are_fatal(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from genteach.models.base import FatalModelError

    local = LocalModel(tmp_path / "no-such-model")
    with pytest.raises(FatalModelError, match="cannot load the local model"):
        await local.complete(ModelRequest([message("user", "hi")]))
    await local.close()


def test_decoding_schema_closes_objects_and_bars_echoes_and_placeholders() -> None:
    """The embedded model is decoded against a schema whose free strings cannot start
    with an input marker or a copied placeholder, and keep their length bounds."""
    pytest.importorskip("llguidance")
    from genteach.models.local import decoding_schema

    class Key(BaseModel):
        kind: str = Field(json_schema_extra={"const": "free_text"})
        rubric: list[str]

    class Out(BaseModel):
        title: str = Field(default="", max_length=20)
        text: str = Field(min_length=30)
        key: Key

    schema = decoding_schema(Out.model_json_schema())
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["Key"]["additionalProperties"] is False
    assert "pattern" not in schema["$defs"]["Key"]["properties"]["kind"]  # a const stays
    decodes = decoder(schema=schema)

    def accepts(obj: dict[str, Any]) -> bool:
        return decodes(json.dumps(obj, ensure_ascii=False))

    text = "The guilds trained apprentices for seven years."
    good = {"title": "", "text": text, "key": {"kind": "free_text", "rubric": ["Names <b>."]}}
    assert accepts(good)
    assert accepts({**good, "title": "Guilds"})
    for bad in (
        {**good, "text": "<<<SEED " + text},
        {**good, "text": "Too short."},
        {**good, "title": "A title far longer than twenty characters"},
        {**good, "key": {"kind": "free_text", "rubric": ["<the points to cover>"]}},
        {**good, "key": {"kind": "free_text", "rubric": ["..."]}},
        {**good, "key": {"kind": "free_text", "rubric": ["…"]}},
        {**good, "extra": 1},
    ):
        assert not accepts(bad), bad


def test_the_engine_follows_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto: llama.cpp for the shipped models and .gguf files when it is installed,
    transformers for Hugging Face folders and ids (and when llama.cpp is missing)."""
    import importlib.util

    from genteach.models import local
    from genteach.models.local_assets import EMBEDDED_MODELS

    real = importlib.util.find_spec
    monkeypatch.setattr(
        local.importlib.util, "find_spec", lambda n: object() if n == "llama_cpp" else real(n)
    )
    for model in (None, "m.gguf", *EMBEDDED_MODELS):
        assert resolve_engine(model) == "llama.cpp", model
    assert resolve_engine("Qwen/Qwen2.5-0.5B-Instruct") == "transformers"
    assert resolve_engine("/models/some-folder") == "transformers"
    assert resolve_engine(None, "transformers") == "transformers"
    monkeypatch.setattr(
        local.importlib.util, "find_spec", lambda n: None if n == "llama_cpp" else real(n)
    )
    assert resolve_engine(None) == "transformers"
    with pytest.raises(ValueError, match="local engine 'vllm'"):
        resolve_engine(None, "vllm")  # type: ignore[arg-type]


def test_the_default_local_model_is_the_1_5b_unless_the_environment_names_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from genteach.models import local_assets as la
    from genteach.models.config import ModelConfig

    monkeypatch.delenv(la.LOCAL_MODEL_ENV, raising=False)
    assert la.default_local_model() == "qwen2.5-coder-1.5b-instruct"
    assert la.embedded_spec(None) is la.DEFAULT_LOCAL_MODEL is la.QWEN_CODER_1_5B
    assert la.local_teacher_name() == "local:qwen2.5-coder-1.5b-instruct"
    assert LocalModel().model_name == "local:qwen2.5-coder-1.5b-instruct"
    assert ModelConfig.from_env().local_model is None

    monkeypatch.setenv(la.LOCAL_MODEL_ENV, "qwen2.5-coder-0.5b-instruct")
    assert la.embedded_spec(None) is la.QWEN_CODER_0_5B
    assert LocalModel().model_name == "local:qwen2.5-coder-0.5b-instruct"
    assert ModelConfig.from_env().local_model == "qwen2.5-coder-0.5b-instruct"

    monkeypatch.setenv(la.LOCAL_MODEL_ENV, "/models/tiny.gguf")
    assert la.embedded_spec(None) is None
    assert la.local_teacher_name() == "local:tiny"
    assert resolve_engine(None, "transformers") == "transformers"
    with pytest.raises(la.LocalModelError, match=r"GENTEACH_LOCAL_MODEL='/models/tiny.gguf' is"):
        la.default_gguf_path()


def test_a_missing_model_package_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from genteach.models import local_assets as la

    def absent(name: str) -> object:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(la.importlib.metadata, "distribution", absent)
    with pytest.raises(la.LocalModelError, match=r"genteach\[local-small\]"):
        la.find_part_files(la.QWEN_CODER_0_5B)
    with pytest.raises(la.LocalModelError, match=r"needs the `local` extra .*genteach\[local\]"):
        la.find_part_files(la.QWEN_CODER_1_5B)


def test_the_engine_is_configured_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from genteach.models.config import ModelConfig, build_client
    from genteach.models.llamacpp import LlamaCppModel

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("GENTEACH_LOCAL_ENGINE", "transformers")
    assert isinstance(build_client(ModelConfig.from_env()), LocalModel)
    monkeypatch.setenv("GENTEACH_LOCAL_ENGINE", "llama.cpp")
    client = build_client(ModelConfig.from_env(local_model="qwen2.5-coder-1.5b-instruct"))
    assert isinstance(client, LlamaCppModel)
    assert client.model_name == "local:qwen2.5-coder-1.5b-instruct"  # nothing loaded yet
