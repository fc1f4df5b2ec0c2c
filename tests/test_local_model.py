"""The embedded local model: assets, the in-process engines (llama.cpp, the default, and
transformers), ``transformers serve``.

All slow: they assemble the GGUF file and build the transformers folder (once, ~1 min on 2
cores, then cached in ``$GENTEACH_CACHE``) and run the real Qwen2.5-Coder-0.5B-Instruct
shipped in the ``local`` extra. The behaviour every engine must have runs on both. Nothing
here reaches the network beyond 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

pytest.importorskip("torch")
pytest.importorskip("transformers")

from autogen_core.models import ModelFamily, ModelInfo

from genteach.models import local_assets
from genteach.models.autogen import AutoGenModel
from genteach.models.base import ModelError, ModelRequest, ToolSpec, message
from genteach.models.http import HttpModel
from genteach.models.llamacpp import LlamaCppModel, render_chat
from genteach.models.local import LocalEngine, LocalModel, local_model_client
from genteach.models.local_assets import (
    ChunkedGGUF,
    LocalModelError,
    assemble_gguf,
    default_gguf_path,
    default_model_dir,
)

pytestmark = pytest.mark.slow

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: never the hub


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The embedded model's HF folder, built at most once per cache."""
    return default_model_dir()


@pytest.fixture(scope="module")
def hf_client(model_dir: Path) -> Iterator[LocalModel]:
    """One transformers client shared by the tests (each test has its own event loop)."""
    c = LocalModel(model_dir, max_batch_size=8, batch_window_ms=20)
    yield c
    asyncio.run(c.close())


@pytest.fixture(scope="module")
def gguf_client() -> Iterator[LlamaCppModel]:
    """One llama.cpp client (the default engine) shared by the tests."""
    pytest.importorskip("llama_cpp")
    c = LlamaCppModel(parallel=4)
    yield c
    asyncio.run(c.close())


@pytest.fixture(params=["llama.cpp", "transformers"])
def client(request: pytest.FixtureRequest) -> LocalEngine:
    """Each in-process engine in turn."""
    name = "gguf_client" if request.param == "llama.cpp" else "hf_client"
    engine: LocalEngine = request.getfixturevalue(name)
    return engine


# ------------------------------------------------------------------ (a) assets
def test_default_model_dir_is_built_and_cached(model_dir: Path) -> None:
    for name in ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"):
        assert (model_dir / name).is_file(), name
    assert "<|im_start|>" in (model_dir / "chat_template.jinja").read_text()
    start = time.perf_counter()
    again = default_model_dir()
    assert again == model_dir
    assert time.perf_counter() - start < 1.0


def _fake_parts(tmp_path: Path) -> list[Path]:
    parts = []
    for i, payload in enumerate([b"GGUF-head", b"-middle-", b"tail"], start=1):
        p = tmp_path / "site" / f"part{i:02d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(payload)
        parts.append(p)
    return parts


def _fake_spec(parts: list[Path], sha256: str) -> ChunkedGGUF:
    return ChunkedGGUF(
        name="fake-model",
        description="three tiny parts",
        packages=("fake-part1", "fake-part2", "fake-part3"),
        version="0.0.1",
        size=sum(p.stat().st_size for p in parts),
        sha256=sha256,
    )


def _installed_fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ChunkedGGUF:
    """Three fake parts "installed" (found by ``find_part_files``) and their right spec."""
    parts = _fake_parts(tmp_path)
    good = hashlib.sha256(b"".join(p.read_bytes() for p in parts)).hexdigest()
    monkeypatch.setattr(local_assets, "find_part_files", lambda s: parts)
    return _fake_spec(parts, sha256=good)


def test_wrong_hash_gives_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = _fake_parts(tmp_path)
    spec = _fake_spec(parts, sha256="0" * 64)
    monkeypatch.setattr(local_assets, "find_part_files", lambda s: parts)
    with pytest.raises(LocalModelError, match=r"sha256 .* expected 0{64}") as info:
        default_model_dir(tmp_path / "cache", spec=spec)
    assert "fake-model" in str(info.value)  # names the file
    assert "genteach[local]" in str(info.value)
    models = tmp_path / "cache" / "models"
    assert not (models / spec.folder_name).exists()
    assert not [p for p in models.iterdir() if p.suffix in {".gguf", ".part"}]


def test_wrong_size_is_caught_before_hashing(tmp_path: Path) -> None:
    parts = _fake_parts(tmp_path)
    with pytest.raises(LocalModelError, match="add up to 21 bytes, expected 99"):
        assemble_gguf(parts, tmp_path / "x.gguf", size=99, sha256="0" * 64)


def test_missing_extra_names_the_install_command(tmp_path: Path) -> None:
    spec = ChunkedGGUF("nope", "", ("genteach-no-such-part",), "1", 1, "0" * 64)
    with pytest.raises(LocalModelError, match=r"pip install 'genteach\[local\]'"):
        default_model_dir(tmp_path, spec=spec)


def test_failed_conversion_leaves_nothing_that_looks_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _installed_fake(tmp_path, monkeypatch)
    target = tmp_path / "cache" / "models" / spec.folder_name
    target.mkdir(parents=True)  # a stale half folder from an earlier, killed run
    (target / "config.json").write_text("{}")

    def boom(gguf: Path, out: Path) -> Path:
        (out / "config.json").write_text("{}")
        raise LocalModelError("killed mid-way")

    monkeypatch.setattr(local_assets, "convert_gguf_to_hf", boom)
    with pytest.raises(LocalModelError, match="killed mid-way"):
        default_model_dir(tmp_path / "cache", spec=spec)
    assert not any(p.name.startswith(".fake-model") and p.is_dir() for p in target.parent.iterdir())

    def fine(gguf: Path, out: Path) -> Path:
        assert gguf.read_bytes() == b"GGUF-head-middle-tail"
        (out / "config.json").write_text('{"ok": true}')
        return out

    monkeypatch.setattr(local_assets, "convert_gguf_to_hf", fine)
    assert default_model_dir(tmp_path / "cache", spec=spec) == target
    assert (target / "config.json").read_text() == '{"ok": true}'
    monkeypatch.setattr(local_assets, "convert_gguf_to_hf", boom)  # now cached: not called
    assert default_model_dir(tmp_path / "cache", spec=spec) == target


def test_the_gguf_is_assembled_once_and_checked_by_its_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _installed_fake(tmp_path, monkeypatch)
    gguf = default_gguf_path(tmp_path / "cache", spec=spec)
    assert gguf.read_bytes() == b"GGUF-head-middle-tail"
    assert (
        json.loads(gguf.with_name(gguf.name + ".genteach-complete.json").read_text())[
            "source_sha256"
        ]
        == spec.sha256
    )

    def boom(*args: Any, **kwargs: Any) -> Path:
        raise AssertionError("assembled again")

    monkeypatch.setattr(local_assets, "assemble_gguf", boom)
    assert default_gguf_path(tmp_path / "cache", spec=spec) == gguf  # found by its marker
    gguf.write_bytes(b"truncated")  # a damaged file is assembled again
    with pytest.raises(AssertionError, match="assembled again"):
        default_gguf_path(tmp_path / "cache", spec=spec)


# ------------------------------------------------------------------ (b, c) in-process
def ask(text: str, **kw: Any) -> ModelRequest:
    return ModelRequest([message("user", text)], **kw)


async def test_in_process_single_chat(client: LocalEngine) -> None:
    out = await client.complete(
        ask("What is the capital of France? One word.", max_tokens=8, temperature=0)
    )
    assert "Paris" in out.text
    assert out.usage.prompt_tokens > 0
    assert 0 < out.usage.completion_tokens <= 8
    assert out.finish_reason in {"stop", "length"}
    assert client.count_tokens([message("user", "hi")]) > 0


def test_weights_load_in_the_precision_chosen_for_this_cpu(hf_client: LocalModel) -> None:
    """dtype "auto" (the default) loads the weights in what :func:`pick_dtype` chose."""
    assert hf_client.dtype == "auto"
    model = hf_client._ensure_loaded().model
    assert hf_client.resolved_dtype in {"bfloat16", "float32"}
    assert {str(p.dtype) for p in model.parameters()} == {f"torch.{hf_client.resolved_dtype}"}


def test_pick_dtype_takes_bf16_only_where_it_is_clearly_faster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    from genteach.models.local import pick_dtype

    assert pick_dtype("cuda:0") == "bfloat16"
    assert pick_dtype() in {"bfloat16", "float32"}  # this CPU, measured
    real = torch.matmul

    def slowed(slow: torch.dtype, seconds: float) -> Any:
        def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            if a.dtype == slow:
                time.sleep(seconds)
            return real(a, b)

        return matmul

    monkeypatch.setattr(torch, "matmul", slowed(torch.bfloat16, 0.01))
    assert pick_dtype() == "float32"  # a CPU without native bf16
    monkeypatch.setattr(torch, "matmul", slowed(torch.float32, 0.01))
    assert pick_dtype() == "bfloat16"  # one with it


async def test_concurrent_requests_share_one_batch(client: LocalEngine) -> None:
    before, made = client.stats, client.tokens_made
    prompts = {
        "What is the capital of Italy? One word.": "Rome",
        "What is the capital of Japan? One word.": "Tokyo",
        "What is 2 + 3? Answer with the number only.": "5",
        "Write a long essay about the history of computing.": "",
    }
    budgets = [8, 8, 8, 3]
    results = await asyncio.gather(
        *[
            client.complete(ask(p, max_tokens=b, temperature=0))
            for p, b in zip(prompts, budgets, strict=True)
        ]
    )
    after = client.stats
    assert after.requests - before.requests == 4
    if isinstance(client, LocalModel):  # one generate call per batch
        assert after.batches - before.batches < 4
    assert after.largest_batch > 1 and after.tokens_per_second > 0
    # counted per step for every row of the batch: at least the tokens the answers kept
    assert client.tokens_made - made >= after.completion_tokens - before.completion_tokens
    for (prompt, expected), res in zip(prompts.items(), results, strict=True):
        assert res.text, prompt
        assert expected in res.text, (prompt, res.text)
    essay = results[-1]
    assert essay.finish_reason == "length" and essay.cut_off
    assert essay.usage.completion_tokens == 3


async def test_seeded_sampling_is_reproducible_in_a_batch(hf_client: LocalModel) -> None:
    """transformers samples each row on its own generator: the batch's make-up does not
    change a seeded answer."""
    cat = ask("Invent a name for a cat.", max_tokens=10, temperature=1.0, seed=1234)
    alone = await hf_client.complete(cat)
    together = await asyncio.gather(
        hf_client.complete(cat), hf_client.complete(ask("Say hi.", max_tokens=5, temperature=0))
    )
    assert together[0].text == alone.text
    samples = await hf_client.complete(cat.with_(n=2))
    assert len(samples.choices) == 2 and samples.choices[0].text == alone.text


async def test_seeded_sampling_is_reproducible_under_the_same_conditions() -> None:
    """llama.cpp's arithmetic differs in the last bits with the batch's make-up (and with
    a prompt start read from the cache), which can change a sampled token: a seed
    reproduces an answer for the same call run the same way."""
    pytest.importorskip("llama_cpp")
    model = LlamaCppModel(parallel=2, reuse_prompts=False)
    cat = ask("Invent a name for a cat.", max_tokens=10, temperature=1.0, seed=1234)
    first, second = await model.complete(cat), await model.complete(cat)
    assert first.text == second.text
    samples = await model.complete(cat.with_(n=2))
    assert len(samples.choices) == 2
    await model.close()


async def test_a_stop_sequence_ends_the_row(client: LocalEngine) -> None:
    count = ask(
        "Count from 1 to 30, separated by commas. Only the numbers.",
        max_tokens=120,
        temperature=0,
        stop=[", 6"],
    )
    out = await client.complete(count)
    assert out.finish_reason == "stop", out.text
    assert out.text.rstrip().endswith("5") and ", 6" not in out.text, out.text
    assert out.usage.completion_tokens < 60


async def test_tools_go_through_the_chat_template(client: LocalEngine) -> None:
    weather = ToolSpec(
        "get_weather",
        "Weather forecast for a city.",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
    plain = [message("user", "What is the weather in Paris?")]
    without = client.count_tokens(plain)  # the template adds the tool list when given
    out = await client.complete(ModelRequest(plain, tools=[weather], max_tokens=64, temperature=0))
    assert out.usage.prompt_tokens > without
    for call in out.tool_calls:  # when the model calls it, the call parses
        assert call["name"] and isinstance(json.loads(call["arguments"]), dict)
    assert out.text or out.tool_calls


class _City(BaseModel):
    city: str


async def test_constrained_json_in_a_mixed_batch(client: LocalEngine) -> None:
    pytest.importorskip("llguidance")
    assert client.constrained
    question = "What is the capital of {}? Reply in JSON with the key city."
    before = client.stats
    constrained_fr, constrained_it, free = await asyncio.gather(
        client.complete(
            ask(question.format("France"), response_schema=_City, max_tokens=24, temperature=0)
        ),
        client.complete(
            ask(
                question.format("Italy"),
                response_schema=_City,
                max_tokens=24,
                temperature=0.7,
                seed=3,
            )
        ),
        client.complete(ask("Say hi.", max_tokens=6, temperature=0)),
    )
    assert client.stats.largest_batch > 1
    if isinstance(client, LocalModel):
        assert client.stats.batches - before.batches < 3
    assert constrained_fr.finish_reason == "stop"
    assert _City.model_validate_json(constrained_fr.text).city == "Paris"
    assert _City.model_validate_json(constrained_it.text).city
    assert not free.text.lstrip().startswith("{")


async def test_action_grammar_constrains_a_tool_use_turn(client: LocalEngine) -> None:
    """The ACTION grammar on the real vocabulary: the turn parses, names a listed API with
    its required parameter, and every mask was computed (a grammar too complex for
    llguidance's lexer would end the turn at once)."""
    pytest.importorskip("llguidance")
    from genteach.agents.tool_use import ApiParam, ApiSpec, action_grammar, parse_action

    apis = [
        ApiSpec(
            name="get_weather",
            description="Weather forecast for a city.",
            parameters=[
                ApiParam(name="city", description="city name"),
                ApiParam(name="days", type="integer", required=False),
            ],
        )
    ]
    system = (
        "You call APIs. Write one line of reasoning, then exactly:\n"
        "ACTION_TYPE : API_CALL\nACTION: name(param=value)\n"
        "API: get_weather(city: string, days: integer, optional)"
    )
    turn = await client.complete(
        ModelRequest(
            [message("system", system), message("user", "Weather in Paris for the next 3 days?")],
            grammar=action_grammar(apis),
            max_tokens=300,  # room for the longest reasoning line (120 tokens) and the action
            temperature=0,
        )
    )
    assert turn.finish_reason == "stop", turn.text
    action = parse_action(turn.text, apis)
    assert action.kind in ("api_call", "final_answer", "failed")
    if action.kind == "api_call":
        assert action.name == "get_weather" and "city" in action.arguments


async def test_local_model_client_names_the_teacher() -> None:
    model = local_model_client()
    assert model.model_name == "local:qwen2.5-coder-0.5b-instruct"
    await model.close()  # never loaded: closing is instant


# ------------------------------------------------------------------ llama.cpp only
def test_the_default_engine_is_llama_cpp_on_the_assembled_gguf() -> None:
    pytest.importorskip("llama_cpp")
    assert isinstance(local_model_client(), LlamaCppModel)
    gguf = default_gguf_path()
    assert gguf.suffix == ".gguf" and gguf.stat().st_size == local_assets.QWEN_CODER_0_5B.size
    assert isinstance(local_model_client(gguf), LlamaCppModel)
    assert isinstance(local_model_client(engine="transformers"), LocalModel)
    start = time.perf_counter()
    assert default_gguf_path() == gguf  # verified once, then found by its marker
    assert time.perf_counter() - start < 0.5


def test_prompts_match_the_transformers_template_and_tokenizer(
    gguf_client: LlamaCppModel, hf_client: LocalModel
) -> None:
    """The GGUF's chat template rendered by genteach's jinja2 sandbox, tokenized by
    llama.cpp, gives the same tokens as transformers, tools and tool turns included."""
    weather = ToolSpec(
        "get_weather",
        "Weather forecast for a city.",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    ).openai()
    turns: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief. Réponds en français si on te le demande."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c0",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                }
            ],
        },
        {"role": "tool", "content": "sunny, 21 °C", "tool_call_id": "c0"},
    ]
    engine = gguf_client._ensure_engine()
    tokenizer = hf_client._get_tokenizer()
    for chat, tools in ((turns[1:2], None), (turns, [weather]), (turns[:2], [weather])):
        text = tokenizer.apply_chat_template(
            chat, tools=tools, add_generation_prompt=True, tokenize=False
        )
        assert render_chat(engine.template, chat, tools) == text
        assert engine.prompt_ids(chat, tools) == tokenizer(text)["input_ids"]


async def test_a_shared_prompt_start_is_read_once(gguf_client: LlamaCppModel) -> None:
    """Calls whose prompts begin alike (an agent's instructions) reuse the cached start."""
    rules = "You are a careful geography tutor. " + "Answer in one word, no punctuation. " * 20
    before = gguf_client.stats.reused_prompt_tokens
    answers = []
    for country in ("France", "Italy"):
        answers.append(
            await gguf_client.complete(
                ModelRequest(
                    [message("system", rules), message("user", f"Capital of {country}?")],
                    max_tokens=6,
                    temperature=0,
                )
            )
        )
    reused = gguf_client.stats.reused_prompt_tokens - before
    assert reused >= gguf_client.count_tokens([message("system", rules)]) - 8
    assert "Paris" in answers[0].text and "Rome" in answers[1].text


async def test_a_prompt_start_is_copied_from_a_busy_slot() -> None:
    """A call whose prompt begins like that of a call still running in another slot gets
    that slot's cache copied (llama.cpp copies a whole slot), trimmed to what they share:
    its answer is the one it gets when read in full."""
    pytest.importorskip("llama_cpp")
    rules = "You are a careful geography tutor. " + "Answer in one word, no punctuation. " * 40

    def ask_tutor(question: str, tokens: int) -> ModelRequest:
        return ModelRequest(
            [message("system", rules), message("user", question)], max_tokens=tokens, temperature=0
        )

    fresh = LlamaCppModel(parallel=1, reuse_prompts=False)
    expected = (await fresh.complete(ask_tutor("Capital of Italy?", 6))).text
    await fresh.close()
    model = LlamaCppModel(parallel=2)
    listing = "List every country of Europe with its capital, one per line."
    busy = asyncio.create_task(model.complete(ask_tutor(listing, 400)))
    while model.tokens_made < 3:  # the first call has read its prompt and is answering
        await asyncio.sleep(0.05)
    reused = model.stats.reused_prompt_tokens
    italy = await model.complete(ask_tutor("Capital of Italy?", 6))
    assert not busy.done()
    assert (
        model.stats.reused_prompt_tokens - reused
        >= model.count_tokens([message("system", rules)]) - 8
    )
    assert italy.text == expected and "Rome" in italy.text
    busy.cancel()
    await model.close()


async def test_a_prompt_beyond_the_context_is_refused() -> None:
    pytest.importorskip("llama_cpp")
    small = LlamaCppModel(slot_context=64, parallel=1)  # llama.cpp rounds it up to 256
    with pytest.raises(ModelError, match=r"prompt of \d+ tokens exceeds the context of 256"):
        await small.complete(ask("word " * 600, max_tokens=4))
    await small.close()


async def test_an_answer_the_context_cuts_short_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # a prompt that fills most of the slot leaves the answer fewer tokens than max_tokens:
    # once this cut every OS task writing of the embedded model, reported only as "cut off"
    pytest.importorskip("llama_cpp")
    small = LlamaCppModel(slot_context=64, parallel=1, temperature=0)  # 256 cells
    prompt = "Write the numbers from 1 to 300, separated by commas, and nothing else. "
    prompt += "Numbers only, all of them. " * 22  # about 200 tokens
    with caplog.at_level("WARNING", logger="genteach.models.llamacpp"):
        done = await small.complete(ask(prompt, max_tokens=200))
    await small.close()
    assert done.finish_reason == "length"
    assert done.usage.prompt_tokens + done.usage.completion_tokens == 256
    assert done.usage.completion_tokens < 200
    assert (
        f"an answer was cut at {done.usage.completion_tokens} tokens, not at max_tokens 200"
        in caplog.text
    )
    assert "filled the rest of the slot's 256" in caplog.text


async def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    folder = LlamaCppModel(tmp_path)
    with pytest.raises(LocalModelError, match=r"needs a \.gguf file"):
        await folder.complete(ask("hi"))
    await folder.close()
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model")
    bad = LlamaCppModel(junk)
    with pytest.raises(LocalModelError, match="cannot load"):
        await bad.complete(ask("hi"))
    await bad.close()


# ------------------------------------------------------------------ (d) transformers serve
# autogen warns that a folder path is not a model name it knows; that is expected here.
@pytest.mark.filterwarnings("ignore:Resolved model mismatch:UserWarning")
async def test_transformers_serve_openai_path(model_dir: Path) -> None:
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    from genteach.models.serve import TransformersServer

    server = TransformersServer(model_dir, continuous_batching=True, startup_timeout=150)
    async with server:
        assert server.base_url.startswith("http://127.0.0.1:")
        pid = server._process.pid if server._process else -1
        client = OpenAIChatCompletionClient(
            model=server.model,
            base_url=server.openai_base_url,
            api_key="x",
            model_info=ModelInfo(
                vision=False,
                function_calling=False,
                json_output=False,
                family=ModelFamily.UNKNOWN,
                structured_output=False,
            ),
        )
        model = AutoGenModel(client, name="served")
        hello = ModelRequest(
            [message("user", "Say hello in French.")], max_tokens=16, temperature=0
        )
        out = await model.complete(hello)
        await model.close()
        assert out.text.strip()
        assert out.usage.completion_tokens > 0
        native = HttpModel(server.model, server.openai_base_url, "x")
        again = await native.complete(hello)
        await native.close()
        assert again.text.strip() and again.usage.completion_tokens > 0
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
