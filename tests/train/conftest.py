"""Fixtures for the training tests: a tiny Mistral and its tokenizer, built here, offline."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

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
def tiny_mistral_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a tiny random Mistral and the tokenizer, loadable like a hub model."""
    folder = tmp_path_factory.mktemp("tiny-mistral")
    tokenizer = make_tokenizer()
    tokenizer.save_pretrained(folder)
    make_model(len(tokenizer)).save_pretrained(folder)
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
