"""Packing: BFD rows of whole examples, position ids reset per example, rows never joined,
and no attention across examples on every attention path.

The batch comes from the recipe's own path (``build_trainer``: prepare_dataset, BFD
packing, the recipe's collator); each example's logits inside the packed batch must equal
its logits alone. CPU runs sdpa and eager here, FlexAttention in the slow set; flash-attention
(varlen) runs where CUDA and flash-attn are installed (and in the GPU benchmark).
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from typing import Any

import pytest

from genteach.train.packing import PackedRowsCollator, make_collator, pack_rows, uses_varlen
from genteach.train.recipe import RecipeArguments, build_trainer, parse_args, pick_attention

from .conftest import SAMPLE_PAIRS, THUDM_ROWS, write_jsonl


def packed_batch(model_dir: Path, folder: Path, attention: str) -> tuple[Any, Any]:
    """A batch of two packed rows, built by the recipe, and its trainer."""
    import yaml

    pairs = write_jsonl(folder / "pairs.jsonl", SAMPLE_PAIRS)
    thudm = write_jsonl(folder / "thudm.jsonl", THUDM_ROWS)
    config = {
        "model_name_or_path": str(model_dir),
        "attn_implementation": attention,
        "sources": [{"path": str(pairs)}, {"path": str(thudm)}],
        "max_length": 160,
        "packing": True,
        "per_device_train_batch_size": 2,
        "use_cpu": True,
        "bf16": False,
        "report_to": "none",
        "output_dir": str(folder / "out"),
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    data_args, training_args, model_args, recipe_args = parse_args(["--config", str(path)])
    trainer, _ = build_trainer(data_args, training_args, model_args, recipe_args)
    return next(iter(trainer.get_train_dataloader())), trainer


@pytest.fixture(scope="module")
def sdpa_batch(tiny_mistral_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return packed_batch(tiny_mistral_dir, tmp_path_factory.mktemp("packing"), "sdpa")


def test_rows_stay_rows_with_positions_reset_per_example(sdpa_batch: Any) -> None:
    batch, trainer = sdpa_batch
    assert len(trainer.train_dataset) < 18 / 2  # 18 short examples fit in a few rows of 160
    assert isinstance(trainer.data_collator, PackedRowsCollator)
    assert "attention_mask" not in batch  # no 2D mask: transformers reads the positions
    assert batch["input_ids"].shape[0] == 2  # two rows, not one sequence of both
    starts = [(row == 0).nonzero().flatten().tolist() for row in batch["position_ids"]]
    assert all(s[0] == 0 and len(s) >= 2 for s in starts)  # positions restart per example
    assert sum(len(s) for s in starts) >= 5  # several examples (and a padding tail) per row
    labels, positions = batch["labels"], batch["position_ids"]
    assert (labels[positions == 0] == -100).all()  # no example learns its neighbour's start


def test_collators() -> None:
    rows = [
        {"input_ids": [5, 6, 7, 8, 9], "labels": [-100, 6, 7, -100, 9], "seq_lengths": [3, 2]},
        {"input_ids": [1, 2, 3], "labels": [1, 2, 3], "seq_lengths": [3]},
    ]
    batch = PackedRowsCollator(pad_token_id=0, pad_to_multiple_of=4)(rows)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9, 0, 0, 0], [1, 2, 3, 0, 0, 0, 0, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0, 1, 2], [0, 1, 2, 0, 1, 2, 3, 4]]
    assert batch["labels"].tolist() == [
        [-100, 6, 7, -100, 9, -100, -100, -100],
        [-100, 2, 3, -100, -100, -100, -100, -100],
    ]
    # flash-attention's varlen kernel: rows joined into one sequence with its boundaries
    assert uses_varlen("flash_attention_2") and not uses_varlen("flex_attention")
    varlen = make_collator("flash_attention_2", pad_token_id=0)(rows)
    assert varlen["input_ids"].shape == (1, 8)
    assert varlen["cu_seq_lens_q"].tolist() == [0, 3, 5, 8]
    assert isinstance(make_collator("sdpa", 0), PackedRowsCollator)


def test_wrapped_packing_is_refused() -> None:
    with pytest.raises(ValueError, match="wrapped"):
        pack_rows(None, 64, "wrapped")  # type: ignore[arg-type]


def assert_isolated(batch: Any, model: Any, atol: float) -> tuple[float, float]:
    """Max |packed - alone| over the examples, and the same with rows joined and positions
    dropped (the leak the check must see)."""
    import torch

    worst = leak = 0.0
    with torch.no_grad():
        packed = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False
        ).logits
        for r in range(batch["input_ids"].shape[0]):
            ids, positions = batch["input_ids"][r], batch["position_ids"][r]
            leaky = model(input_ids=ids[None], use_cache=False).logits[0]
            starts = [*(positions == 0).nonzero().flatten().tolist(), len(ids)]
            for start, end in itertools.pairwise(starts[:-1]):  # the last block is padding
                alone = model(input_ids=ids[None, start:end], use_cache=False).logits[0]
                worst = max(worst, (packed[r, start:end] - alone).abs().max().item())
                leak = max(leak, (leaky[start:end] - alone).abs().max().item())
    assert worst < atol, f"packed examples see each other: {worst}"
    assert leak > 10 * atol  # the check has teeth: without reset positions, examples leak
    return worst, leak


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_logits_equal_logits_alone(
    sdpa_batch: Any, tiny_mistral_dir: Path, attention: str
) -> None:
    from transformers import MistralForCausalLM

    assert pick_attention(None) == "sdpa"  # on CPU
    batch, _ = sdpa_batch
    model = MistralForCausalLM.from_pretrained(tiny_mistral_dir, attn_implementation=attention)
    assert_isolated(batch, model.eval(), atol=1e-4)


@pytest.mark.slow
def test_flex_attention_isolates_packed_examples(tiny_mistral_dir: Path, tmp_path: Path) -> None:
    # FlexAttention (the GPU default without flash-attn) compiles its kernel: ~1 min on CPU
    batch, trainer = packed_batch(tiny_mistral_dir, tmp_path, "flex_attention")
    assert trainer.model.config._attn_implementation == "flex_attention"
    assert batch["input_ids"].shape[0] == 2
    assert_isolated(batch, trainer.model.eval(), atol=1e-4)


@pytest.mark.skipif(
    importlib.util.find_spec("flash_attn") is None, reason="flash-attn is not installed"
)
def test_flash_attention_varlen_isolates_packed_examples(
    tiny_mistral_dir: Path, tmp_path: Path
) -> None:  # pragma: no cover - needs CUDA and flash-attn
    import torch

    if not torch.cuda.is_available():
        pytest.skip("flash-attention needs CUDA")
    batch, _ = packed_batch(tiny_mistral_dir, tmp_path, "flash_attention_2")
    assert batch["input_ids"].shape[0] == 1 and "cu_seq_lens_q" in batch


def test_recipe_arguments_default() -> None:
    assert RecipeArguments().pure_bf16 is False


def test_attention_pick(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from transformers import GPT2Config, MistralConfig

    assert pick_attention(None, MistralConfig()) == "sdpa"  # CPU
    assert pick_attention("eager", MistralConfig()) == "eager"  # asked for
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_attention(None, MistralConfig()) == "flex_attention"  # GPU, no flash-attn
    assert pick_attention(None, GPT2Config()) == "sdpa"  # a class without FlexAttention
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: object() if name == "flash_attn" else real(name)
    )
    assert pick_attention(None, MistralConfig()) == "flash_attention_2"
