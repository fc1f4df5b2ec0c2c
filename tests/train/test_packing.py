"""Packing: BFD rows, padding-free batches, position ids reset, no attention across examples.

The batch comes from the recipe's own path (prepare_dataset -> SFTTrainer's packing and
collator); each example's logits inside the packed row must equal its logits alone.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from genteach.train.data import DataArguments, SourceConfig, prepare_dataset
from genteach.train.recipe import pick_attention
from genteach.train.templates import read_template

from .conftest import SAMPLE_PAIRS, THUDM_ROWS, write_jsonl


@pytest.fixture(scope="module")
def packed_batch(tiny_mistral_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from transformers import AutoTokenizer, MistralForCausalLM
    from trl import SFTConfig, SFTTrainer

    folder = tmp_path_factory.mktemp("packing")
    pairs = write_jsonl(folder / "pairs.jsonl", SAMPLE_PAIRS)
    thudm = write_jsonl(folder / "thudm.jsonl", THUDM_ROWS)
    tokenizer = AutoTokenizer.from_pretrained(tiny_mistral_dir)
    data_args = DataArguments(
        sources=[SourceConfig(path=str(pairs)), SourceConfig(path=str(thudm))]
    )
    dataset, _ = prepare_dataset(
        data_args, tokenizer, read_template("mistral.jinja"), max_length=160
    )
    args = SFTConfig(
        output_dir=str(folder / "out"),
        use_cpu=True,
        bf16=False,
        packing=True,
        max_length=160,
        per_device_train_batch_size=2,
        report_to="none",
    )
    trainer = SFTTrainer(
        model=MistralForCausalLM.from_pretrained(tiny_mistral_dir),
        args=args,
        train_dataset=dataset.select_columns(["input_ids", "labels"]),
        processing_class=tokenizer,
    )
    packed: Any = trainer.train_dataset
    rows = len(packed)
    return next(iter(trainer.get_train_dataloader())), rows, len(dataset)


def test_bfd_packs_several_examples_per_row(packed_batch: Any) -> None:
    batch, rows, examples = packed_batch
    assert rows < examples / 2  # 18 short examples fit in a few rows of 160
    assert "attention_mask" not in batch  # padding-free: one flat row, no padding
    assert batch["input_ids"].shape[0] == 1
    starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist()
    assert len(starts) > 2 and starts[0] == 0  # position ids restart at every example


@pytest.mark.parametrize("attention", [pick_attention(None), "eager"])
def test_packed_logits_equal_logits_alone(
    packed_batch: Any, tiny_mistral_dir: Path, attention: str
) -> None:
    import torch
    from transformers import MistralForCausalLM

    assert pick_attention(None) == "sdpa"  # on CPU; flash-attention varlen on GPU when installed
    batch, _, _ = packed_batch
    model = MistralForCausalLM.from_pretrained(tiny_mistral_dir, attn_implementation=attention)
    model.eval()
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    ids, positions = batch["input_ids"][0], batch["position_ids"][0]
    starts = [*(positions == 0).nonzero().flatten().tolist(), len(ids)]
    with torch.no_grad():
        packed = model(**inputs, use_cache=False).logits[0]
        leaky = model(input_ids=batch["input_ids"], use_cache=False).logits[0]
        worst = leak = 0.0
        for start, end in itertools.pairwise(starts):
            alone = model(input_ids=ids[None, start:end], use_cache=False).logits[0]
            worst = max(worst, (packed[start:end] - alone).abs().max().item())
            leak = max(leak, (leaky[start:end] - alone).abs().max().item())
    assert worst < 1e-4, f"packed examples see each other ({attention}): {worst}"
    assert leak > 1e-2  # the check has teeth: without reset position ids, examples leak
