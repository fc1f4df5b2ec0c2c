"""Precision: the shipped configs keep fp32 master weights, so a step at the Orca-3 config's
warm-up learning rate (8e-6 x step/500, ~1e-8) changes the weights; pure bf16 loses it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from genteach.train.recipe import PrecisionWarning, train_from_config

from .conftest import SAMPLE_PAIRS, write_jsonl

ORCA3 = Path(__file__).resolve().parents[2] / "configs" / "train" / "orca3_mistral7b.yaml"


@pytest.fixture(scope="module")
def bf16_checkpoint(tiny_mistral_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Mistral saved in bf16, as Mistral-7B-v0.1's weights are."""
    import shutil

    import torch
    from transformers import MistralForCausalLM

    folder = tmp_path_factory.mktemp("bf16-mistral")
    model = MistralForCausalLM.from_pretrained(tiny_mistral_dir, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    shutil.copy(tiny_mistral_dir / "tokenizer.model", folder / "tokenizer.model")
    return folder


def run_orca3(checkpoint: Path, folder: Path, *extra: str) -> Any:
    """Three optimiser steps with the Orca-3 config itself (lr 8e-6, 500 warm-up steps,
    AdamW, weight decay 0.1, bf16 autocast): learning rates 0, 1.6e-8 and 3.2e-8."""
    pairs = write_jsonl(folder / "pairs.jsonl", SAMPLE_PAIRS)
    overrides = [
        "--model_name_or_path", str(checkpoint),
        "--sources", str(pairs),
        "--max_length", "128",
        "--max_steps", "3",
        "--per_device_train_batch_size", "1",
        "--gradient_accumulation_steps", "1",
        "--activation_checkpointing", "false",
        "--dataset_num_proc", "1",
        "--use_cpu", "true",
        "--save_strategy", "no",
        "--logging_steps", "1",
        "--output_dir", str(folder / "out"),
        *extra,
    ]  # fmt: skip
    return train_from_config(str(ORCA3), overrides)


def changed_share(checkpoint: Path, result: Any) -> tuple[float, set[str]]:
    """Share of weight elements that differ from the checkpoint, and the trained dtypes.

    The input embedding is left out: the rows of the ~32,000 tokens absent from the data get
    no gradient, so they do not move in any precision."""
    import torch
    from transformers import MistralForCausalLM

    before = dict(MistralForCausalLM.from_pretrained(checkpoint).named_parameters())
    changed = total = 0
    dtypes = set()
    for name, param in result.trainer.model.named_parameters():
        dtypes.add(str(param.dtype))
        if "embed_tokens" in name:
            continue
        old = before[name].detach().to(torch.float32)
        changed += int((param.detach().to(torch.float32) != old).sum())
        total += param.numel()
    return changed / total, dtypes


def test_warmup_step_changes_fp32_master_weights(bf16_checkpoint: Path, tmp_path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        result = run_orca3(bf16_checkpoint, tmp_path)
    lrs = [h["learning_rate"] for h in result.trainer.state.log_history if "learning_rate" in h]
    assert lrs == pytest.approx([0.0, 1.6e-8, 3.2e-8])  # the config's warm-up
    share, dtypes = changed_share(bf16_checkpoint, result)
    assert dtypes == {"torch.float32"}  # fp32 master weights, though the checkpoint is bf16
    assert share > 0.9, share  # ~1e-8 updates land in fp32


def test_pure_bf16_is_explicit_warned_and_loses_the_updates(
    bf16_checkpoint: Path, tmp_path: Path
) -> None:
    with pytest.warns(PrecisionWarning, match="both half precision"):
        result = run_orca3(bf16_checkpoint, tmp_path, "--pure_bf16", "true")
    share, dtypes = changed_share(bf16_checkpoint, result)
    assert dtypes == {"torch.bfloat16"}
    assert share < 0.01, share  # below bf16's resolution: (almost) nothing moves
