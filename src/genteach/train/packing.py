"""Packed rows and how a batch of them reaches the attention kernel.

BFD packing (TRL's ``pack_dataset``) puts whole examples into rows of ``max_length``
tokens; each row keeps ``seq_lengths``, the lengths of its examples. Two ways to batch rows:

* **varlen** (flash-attention): the rows are concatenated into one sequence with
  ``cu_seq_lens``; the kernel runs each example alone, so cost is linear in the rows.
  This is TRL's padding-free collator.
* **per row** (FlexAttention, sdpa, eager): rows stay rows (``batch x max_length``), padded
  at the end, with ``position_ids`` that restart at every example and no attention mask, so
  transformers builds each row's block-diagonal mask from the positions. FlexAttention
  skips the blocks outside it; sdpa and eager compute a dense ``max_length``² mask per row
  but never one mask over the whole batch (two 8192-token rows are two 8192² masks, not
  one 16384² mask).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datasets import Dataset

__all__ = ["VARLEN_ATTENTION", "PackedRowsCollator", "make_collator", "pack_rows", "uses_varlen"]

#: Attention implementations whose kernels take sequence boundaries (``cu_seq_lens``).
VARLEN_ATTENTION = ("flash_attention_2", "flash_attention_3")


def uses_varlen(attention: str) -> bool:
    """True when ``attention`` runs packed examples from their boundaries (flash varlen)."""
    return attention in VARLEN_ATTENTION or "flash" in attention


def pack_rows(
    dataset: Dataset, max_length: int, strategy: str = "bfd", num_proc: int | None = None
) -> Dataset:
    """Pack tokenized examples (``input_ids``, ``labels``) into rows of ``max_length``.

    Raises:
        ValueError: for ``wrapped``, which cuts examples and lets them attend to each other.
    """
    from trl import pack_dataset

    if strategy not in ("bfd", "bfd_split"):
        raise ValueError(
            f"packing_strategy {strategy!r}: use 'bfd' (whole examples, isolated); 'wrapped' "
            "cuts examples and lets them attend to each other"
        )
    columns = dataset.select_columns(["input_ids", "labels"])
    return pack_dataset(columns, max_length, strategy=strategy, map_kwargs={"num_proc": num_proc})


def _positions(lengths: Sequence[int], size: int) -> list[int]:
    out: list[int] = []
    for n in lengths:
        out.extend(range(n))
    out.extend(range(size - len(out)))  # the padding tail is a sequence of its own
    return out


@dataclass
class PackedRowsCollator:
    """Batch packed rows without concatenating them (see the module docstring).

    Each row is padded at the end to the longest row of the batch (rounded up to
    ``pad_to_multiple_of``); labels are -100 on padding and on the first token of every
    example, so no example learns to predict the next one.
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(e["input_ids"]) for e in examples)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        ids, labels, positions = [], [], []
        for e in examples:
            n = len(e["input_ids"])
            lengths = list(e.get("seq_lengths") or [n])
            row_positions = _positions(lengths, width)
            row_labels = list(e.get("labels", e["input_ids"])) + [-100] * (width - n)
            for i, p in enumerate(row_positions):
                if p == 0:
                    row_labels[i] = -100
            ids.append(list(e["input_ids"]) + [self.pad_token_id] * (width - n))
            labels.append(row_labels)
            positions.append(row_positions)
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "position_ids": torch.tensor(positions, dtype=torch.long),
        }


def make_collator(attention: str, pad_token_id: int, pad_to_multiple_of: int | None = None) -> Any:
    """The collator for packed rows under ``attention``: concatenated for varlen kernels,
    one row per row otherwise."""
    if uses_varlen(attention):
        from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

        return DataCollatorForLanguageModeling(
            pad_token_id=pad_token_id, padding_free=True, pad_to_multiple_of=pad_to_multiple_of
        )
    return PackedRowsCollator(pad_token_id=pad_token_id, pad_to_multiple_of=pad_to_multiple_of)
