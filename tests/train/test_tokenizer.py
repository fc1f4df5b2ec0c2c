"""Mistral-7B-v0.1's tokenizer rebuilt from SentencePiece without protobuf (mistral-common
ships the model as ``tokenizer.model.v1``), equal to SentencePiece on every probe."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from genteach.train.tokenizer import (
    PROBES,
    SentencePieceMismatch,
    load_tokenizer,
    needs_sentencepiece_rebuild,
    tokenizer_from_sentencepiece,
)

from .conftest import CORPUS, mistral_model_file

TEXTS = [
    *PROBES,
    "",
    " ",
    "a",
    "   ",
    "\n",
    "Hello, World! HELLO world... hello-world_hello",
    "The quick brown fox jumps over the lazy dog 1234567890 times.",
    "Think: I need to list the files.\nAct: bash\n```bash\nls -la /tmp\n```",
    'def f(x):\n    return {"k": [x ** 2 for x in range(10)]}\n',
    "Ελληνικά, русский, العربية, हिन्दी, 日本語のテキスト, 한국어",
    "emoji 👩‍💻🚀 and symbols ∑∫√ ≤≥ ©®™ \u00a0nbsp \u2009thin",
    "[INST] You are a careful tutor.\n\nWhat is 2+2? [/INST] 4",
    "tabs\tand\r\ncarriage returns",
]


def test_rebuilt_tokenizer_equals_sentencepiece(mistral_tokenizer: Any) -> None:
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(mistral_model_file()))
    assert len(mistral_tokenizer) == sp.get_piece_size() == 32000
    for text in TEXTS:
        ids = mistral_tokenizer(text, add_special_tokens=False)["input_ids"]
        assert ids == sp.encode(text), text
        assert mistral_tokenizer.decode(ids) == sp.decode(ids), text
    special = {t: mistral_tokenizer.convert_tokens_to_ids(t) for t in ("<unk>", "<s>", "</s>")}
    assert special == {"<unk>": 0, "<s>": 1, "</s>": 2}
    assert mistral_tokenizer("Hi")["input_ids"][0] == 1  # BOS added, as Mistral's tokenizer does


def test_a_tokenizer_model_only_folder_loads(tmp_path: Path) -> None:
    shutil.copy(mistral_model_file(), tmp_path / "tokenizer.model")
    assert needs_sentencepiece_rebuild(str(tmp_path))
    tokenizer = load_tokenizer(str(tmp_path))
    assert tokenizer("[INST] Hi [/INST]", add_special_tokens=False)["input_ids"] == [
        733, 16289, 28793, 15359, 733, 28748, 16289, 28793
    ]  # fmt: skip
    tokenizer.save_pretrained(tmp_path / "saved")  # and it saves as an ordinary fast tokenizer
    assert not needs_sentencepiece_rebuild(str(tmp_path / "saved"))
    again = load_tokenizer(str(tmp_path / "saved"))
    assert again("déjà vu")["input_ids"] == tokenizer("déjà vu")["input_ids"]


def train_spm(folder: Path, name: str, **options: Any) -> Path:
    """A small SentencePiece model; Llama/Mistral-style options unless overridden."""
    import sentencepiece

    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(CORPUS * 5), encoding="utf-8")
    settings = {
        "model_type": "bpe",
        "vocab_size": 360,
        "byte_fallback": True,
        "normalization_rule_name": "identity",
        "remove_extra_whitespaces": False,
        **options,
    }
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(folder / name), minloglevel=2, **settings
    )
    return folder / f"{name}.model"


def test_a_llama_style_bpe_model_rebuilds_and_others_are_refused(tmp_path: Path) -> None:
    import sentencepiece

    bpe = train_spm(tmp_path, "bpe")
    tokenizer = tokenizer_from_sentencepiece(bpe)
    sp = sentencepiece.SentencePieceProcessor(model_file=str(bpe))
    for text in TEXTS:
        assert tokenizer(text, add_special_tokens=False)["input_ids"] == sp.encode(text), text
    # what the rebuild does not reproduce is caught by the probes, never used silently
    for name, options in [
        ("unigram", {"model_type": "unigram"}),
        ("squeezed", {"remove_extra_whitespaces": True}),
    ]:
        with pytest.raises(SentencePieceMismatch, match="only BPE models"):
            tokenizer_from_sentencepiece(train_spm(tmp_path, name, **options))
