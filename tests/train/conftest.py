"""Fixtures for the training tests, built here, offline: Mistral-7B-v0.1's real tokenizer
(rebuilt from mistral-common's ``tokenizer.model.v1``), a tiny random Mistral that uses it,
and a small byte-level BPE for the Qwen template's tests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from genteach.train.data import normalize_row, tokenize_batch
from genteach.train.templates import render_with_spans

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest.importorskip("torch")
pytest.importorskip("trl")

CORPUS = [
    "[INST] What is the capital of France? [/INST] The capital of France is Paris.",
    "[INST] You are a helpful assistant.\n\nAdd two and three. [/INST] Two plus three is five.",
    "Explain why the sky is blue in one short sentence, please.",
    "Sunlight scatters off air molecules; blue light scatters the most.",
    "OK. Think: I should list the files. Act: bash ls -la /home/user",
    "Write a haiku about autumn leaves falling on a quiet river.",
    "The answer is 42 because the question was never asked properly.",
    "<|im_start|>system\nYou are a helper.<|im_end|>\n<|im_start|>user\nhello<|im_end|>",
]


def make_tokenizer() -> Any:
    """A byte-level BPE trained on a small corpus, with Mistral's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(CORPUS * 20, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def mistral_model_file() -> Path:
    """Mistral-7B-v0.1's SentencePiece model, as the mistral-common package ships it."""
    mistral_common = pytest.importorskip("mistral_common")
    return Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1"


def make_model(vocab_size: int, seed: int = 0) -> Any:
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(seed)
    config = MistralConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        sliding_window=None,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    return MistralForCausalLM(config)


@pytest.fixture(scope="session")
def tiny_tokenizer() -> Any:
    return make_tokenizer()


@pytest.fixture(scope="session")
def mistral_tokenizer() -> Any:
    """Mistral-7B-v0.1's tokenizer (32,000 pieces), equal to SentencePiece (test_tokenizer)."""
    from genteach.train.tokenizer import tokenizer_from_sentencepiece

    return tokenizer_from_sentencepiece(mistral_model_file())


@pytest.fixture(scope="session")
def tiny_mistral_dir(tmp_path_factory: pytest.TempPathFactory, mistral_tokenizer: Any) -> Path:
    """A folder with a tiny random Mistral and Mistral's real tokenizer, loadable like a hub
    model (the tokenizer as ``tokenizer.model`` only, as Mistral-7B-v0.1 first shipped)."""
    import shutil

    folder = tmp_path_factory.mktemp("tiny-mistral")
    shutil.copy(mistral_model_file(), folder / "tokenizer.model")
    make_model(len(mistral_tokenizer)).save_pretrained(folder)
    return folder


SAMPLE_PAIRS = [
    {
        "id": f"p{i}",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant." if i % 2 else ""},
            {"role": "user", "content": f"Add {i} and three."},
            {"role": "assistant", "content": f"{i} plus three is {i + 3}."},
        ],
        "meta": {"skill": "fermi"},
    }
    for i in range(12)
]
THUDM_ROWS = [
    {
        "id": f"os_{i}",
        "conversations": [
            {"from": "human", "value": "You are an agent. Reply OK.", "loss": None},
            {"from": "gpt", "value": "OK.", "loss": False},
            {"from": "human", "value": f"List the files in dir{i}.", "loss": None},
            {"from": "gpt", "value": "Think: I should list the files. Act: bash ls", "loss": True},
        ],
    }
    for i in range(6)
]


def write_jsonl(path: Path, rows: list[Any], extra_lines: tuple[str, ...] = ()) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
        for line in extra_lines:
            handle.write(line + "\n")
    return path


# Which characters are trained


def tokenize(tokenizer: Any, row: dict[str, Any], template: str, fmt: str = "auto") -> Any:
    """The rendered text, its token ids and labels, as the recipe makes them."""
    normal = normalize_row(row, fmt)
    assert not normal.bad, normal.bad
    batch = {"messages": [normal.messages], "prompt": [""], "completion": [""], "bad": [""]}
    out = tokenize_batch(batch, tokenizer, template, 1024)
    assert out["bad"] == [""]
    text = render_with_spans(tokenizer, template, [normal.messages])[0][0]
    return text, out["input_ids"][0], out["labels"][0]


def trained_runs(tokenizer: Any, text: str, ids: list[int], labels: list[int]) -> list[str]:
    """The characters of ``text`` under trained tokens, one string per run of them."""
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    assert encoding["input_ids"] == ids  # the labels line up with this text's tokens
    runs: list[str] = []
    previous = False
    for (start, end), label in zip(encoding["offset_mapping"], labels, strict=True):
        if label != -100:
            if not previous:
                runs.append("")
            runs[-1] += text[start:end]
        previous = label != -100
    return runs


def trained_text(tokenizer: Any, text: str, ids: list[int], labels: list[int]) -> str:
    return "".join(trained_runs(tokenizer, text, ids, labels))


def masked_text(tokenizer: Any, text: str, ids: list[int], labels: list[int]) -> str:
    flipped = [-100 if label != -100 else 0 for label in labels]
    return "|".join(trained_runs(tokenizer, text, ids, flipped))
