"""SFT recipe: post-train a model on genteach chat pairs with TRL's SFTTrainer.

Loss on assistant tokens only (genteach's training chat templates mark them), BFD packing to
``max_length`` with padding-free batches (position ids reset per example, no attention across
packed examples), data mixed from several sources by ratio.

Usage::

    # one process (a GPU, or the CPU smoke run)
    genteach train --config configs/train/smoke_cpu.yaml
    # 8 GPUs, FSDP
    accelerate launch --config_file configs/train/accelerate/fsdp_8gpu.yaml \\
        -m genteach.train --config configs/train/orca3_mistral7b.yaml
    # any field can be overridden on the command line; resume from the last checkpoint
    genteach train --config configs/train/orca3_mistral7b.yaml --resume_from_checkpoint last

From Python (a notebook)::

    from genteach.train import train_from_config
    result = train_from_config("configs/train/smoke_cpu.yaml", ["--max_steps", "3"])
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genteach.train.data import DataArguments, DataReport, prepare_dataset
from genteach.train.templates import resolve_chat_template

if TYPE_CHECKING:
    from trl import ModelConfig, SFTConfig, SFTTrainer, TrlParser

__all__ = ["LOCAL_MODEL", "RecipeResult", "make_parser", "parse_args", "train", "train_from_config"]

#: ``model_name_or_path`` value for the small model the ``[local]`` extra ships.
LOCAL_MODEL = "genteach:local"


@dataclass
class RecipeResult:
    """What a run gives back: the trainer (model, state, logs), the data report, the metrics."""

    trainer: SFTTrainer
    report: DataReport
    metrics: dict[str, float]


def make_parser() -> TrlParser:
    """The recipe's parser: genteach's data fields, TRL's ``SFTConfig`` and ``ModelConfig``."""
    from trl import ModelConfig, SFTConfig, TrlParser

    types: list[Any] = [DataArguments, SFTConfig, ModelConfig]
    return TrlParser(types, prog="genteach train")


def parse_args(argv: Sequence[str]) -> tuple[DataArguments, SFTConfig, ModelConfig]:
    """``--config file.yaml`` then command-line overrides, as in TRL's scripts."""
    data_args, training_args, model_args = make_parser().parse_args_and_config(list(argv))
    return data_args, training_args, model_args


def resolve_model_path(name: str | None) -> str:
    """The model's path or id; ``genteach:local`` is the ``[local]`` extra's model folder."""
    if name is None:
        raise ValueError("set model_name_or_path in the config")
    if name == LOCAL_MODEL:
        from genteach.models.local_assets import default_model_dir

        return str(default_model_dir())
    return name


def pick_attention(requested: str | None) -> str:
    """Flash-attention varlen on GPU when installed (packed rows need it or a mask), else sdpa."""
    if requested:
        return requested
    import importlib.util

    import torch

    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"  # transformers builds a block-diagonal mask from the reset position ids


def resume_point(value: str | None, output_dir: str) -> str | None:
    """``last``/``true`` -> the newest checkpoint in ``output_dir`` (None if there is none)."""
    if value is None or value.lower() in ("", "false", "no", "none"):
        return None
    if value.lower() in ("last", "true", "yes"):
        from transformers.trainer_utils import get_last_checkpoint

        return get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
    return value


def train(
    data_args: DataArguments, training_args: SFTConfig, model_args: ModelConfig
) -> RecipeResult:
    """Run the recipe. See the module docstring for the command-line form."""
    from transformers import AutoConfig, AutoTokenizer
    from trl import SFTTrainer, get_peft_config, get_quantization_config

    # Model and tokenizer
    output_dir = training_args.output_dir or "trainer_output"
    model_path = resolve_model_path(model_args.model_name_or_path)
    training_args.model_init_kwargs = {
        "revision": model_args.model_revision,
        "dtype": model_args.dtype,
        "attn_implementation": pick_attention(model_args.attn_implementation),
        **(training_args.model_init_kwargs or {}),  # type: ignore[dict-item]
    }
    tokenizer = AutoTokenizer.from_pretrained(model_path, revision=model_args.model_revision)
    model_type = AutoConfig.from_pretrained(
        model_path, revision=model_args.model_revision
    ).model_type

    # Training chat template: by model family, or the file given by chat_template_path
    template = resolve_chat_template(tokenizer, model_type, training_args.chat_template_path)
    tokenizer.chat_template = template  # saved with the model, so inference uses the same format

    # Data: load, mix by ratio, tokenize with loss masks; bad rows counted, never fatal
    with training_args.main_process_first(desc="preparing data"):
        dataset, report = prepare_dataset(
            data_args,
            tokenizer,
            template,
            max_length=training_args.max_length,
            assistant_only_loss=training_args.assistant_only_loss,
            completion_only_loss=training_args.completion_only_loss,
            num_proc=training_args.dataset_num_proc,
        )
    if training_args.process_index == 0:
        print(report.format())
        report_path = data_args.report_path or os.path.join(output_dir, "data_report.json")
        os.makedirs(os.path.dirname(os.path.abspath(report_path)), exist_ok=True)
        with open(report_path, "w", encoding="utf-8") as handle:
            json.dump(report.to_dict(), handle, indent=2)
    if len(dataset) == 0:
        raise ValueError("no usable rows: see the data report above")

    # Trainer: the labels already carry the masks, so TRL only packs (BFD, padding-free)
    training_args.assistant_only_loss = False
    trainer = SFTTrainer(
        model=model_path,
        args=training_args,
        train_dataset=dataset.select_columns(["input_ids", "labels"]),
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        quantization_config=get_quantization_config(model_args),
    )

    # Train (resuming when asked) and save
    resume = resume_point(training_args.resume_from_checkpoint, output_dir)
    output = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(output_dir)
    trainer.accelerator.print(f"Model saved to {output_dir}")
    end = getattr(trainer, "end", None)  # transformers >= 5.18: finish trackers, process group
    if callable(end):
        end()
    return RecipeResult(trainer=trainer, report=report, metrics=dict(output.metrics))


def train_from_config(config: str, overrides: Sequence[str] = ()) -> RecipeResult:
    """Notebook entry point: ``train_from_config("x.yaml", ["--max_steps", "3"])``."""
    return train(*parse_args(["--config", config, *overrides]))


def main(argv: Sequence[str]) -> Any:
    """Parse ``argv`` and train."""
    return train(*parse_args(argv))
