"""SFT recipe: post-train a model on genteach chat pairs with TRL's SFTTrainer.

Loss on assistant tokens only (the default at every entry point; genteach's training chat
templates mark them), fp32 master weights with bf16 compute, whole examples packed into
``max_length`` rows that never attend to each other, data mixed from several sources by
ratio.

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

import argparse
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from genteach.train.data import DataArguments, DataReport, prepare_dataset
from genteach.train.packing import make_collator, pack_rows
from genteach.train.templates import resolve_chat_template
from genteach.train.tokenizer import load_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedModel, TrainerCallback
    from trl import ModelConfig, SFTConfig, SFTTrainer, TrlParser

__all__ = [
    "LOCAL_MODEL",
    "PrecisionWarning",
    "PromptLossWarning",
    "RecipeArguments",
    "RecipeResult",
    "build_trainer",
    "load_model",
    "make_parser",
    "parse_args",
    "pick_attention",
    "precision_summary",
    "train",
    "train_from_config",
]

#: ``model_name_or_path`` value for the small model the ``[local]`` extra ships.
LOCAL_MODEL = "genteach:local"
HALF = ("bfloat16", "float16", "auto")
DESCRIPTION = """Train with the SFT recipe (TRL). Subcommands:
  genteach train --config CONFIG.yaml [--field value ...]     train
  genteach train --sources DATA.jsonl --model_name_or_path M [--field value ...]
  genteach train inspect --config CONFIG.yaml [--index N]     print what a config trains
Configs: configs/train/. Every field below can be set in the YAML or on the command line."""


class PrecisionWarning(UserWarning):
    """Trainable parameters and their optimizer states are both in half precision."""


class PromptLossWarning(UserWarning):
    """``assistant_only_loss`` is off: prompts and context turns are trained too."""


@dataclass
class RecipeArguments:
    """genteach's own switches of the recipe (beside TRL's ``SFTConfig`` and ``ModelConfig``)."""

    pure_bf16: bool = field(
        default=False,
        metadata={
            "help": "Train full fine-tuning with bf16 parameters and optimizer states (no fp32 "
            "master weights). Halves memory, but AdamW updates below bf16's resolution (most "
            "of them at lr 8e-6) are lost. Off: weights load in fp32 and compute runs in bf16."
        },
    )
    random_init: bool = field(
        default=False,
        metadata={
            "help": "Build the model from its config.json with random weights (benchmarks, "
            "tests): no weights are read."
        },
    )


@dataclass
class RecipeResult:
    """What a run gives back: the trainer (model, state, logs), the data report, the metrics."""

    trainer: SFTTrainer
    report: DataReport
    metrics: dict[str, float]


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown (as HfArgumentParser does), the description's lines kept as written."""


def make_parser() -> TrlParser:
    """The recipe's parser: genteach's data and recipe fields, TRL's ``SFTConfig`` and
    ``ModelConfig``. ``assistant_only_loss`` defaults to true here (TRL's default is false)."""
    from trl import ModelConfig, SFTConfig, TrlParser

    types: list[Any] = [DataArguments, SFTConfig, ModelConfig, RecipeArguments]
    parser = TrlParser(
        types, prog="genteach train", description=DESCRIPTION, formatter_class=_HelpFormatter
    )
    # TRL's SFTConfig defaults the deprecated gradient_checkpointing to true; its new name
    # keeps that default without transformers' deprecation warning.
    parser.set_defaults(
        assistant_only_loss=True, activation_checkpointing=True, gradient_checkpointing=None
    )
    return parser


def parse_args(
    argv: Sequence[str],
) -> tuple[DataArguments, SFTConfig, ModelConfig, RecipeArguments]:
    """``--config file.yaml`` then command-line overrides, as in TRL's scripts."""
    data_args, training_args, model_args, recipe_args = make_parser().parse_args_and_config(
        list(argv)
    )
    return data_args, training_args, model_args, recipe_args


def resolve_model_path(name: str | None) -> str:
    """The model's path or id; ``genteach:local`` is the default embedded model's folder
    (``$GENTEACH_LOCAL_MODEL`` or the ``[local]`` extra's model), ``genteach:local:NAME``
    a shipped model's by name (``genteach:local:qwen2.5-coder-0.5b-instruct``).

    Raises:
        ValueError: no name, or ``genteach:local:NAME`` names no shipped model.
    """
    if name is None:
        raise ValueError("set model_name_or_path in the config")
    if name != LOCAL_MODEL and not name.startswith(f"{LOCAL_MODEL}:"):
        return name
    from genteach.models.local_assets import EMBEDDED_MODELS, default_model_dir, embedded_spec

    shipped = name.removeprefix(LOCAL_MODEL).removeprefix(":") or None
    spec = embedded_spec(shipped)
    if shipped is not None and spec is None:
        raise ValueError(
            f"model_name_or_path {name!r}: no shipped model {shipped!r} "
            f"(shipped: {', '.join(EMBEDDED_MODELS)})"
        )
    return str(default_model_dir(spec=spec))


def pick_attention(requested: str | None, config: Any = None) -> str:
    """The attention path for packed rows.

    ``flash_attention_2`` on a GPU with flash-attn installed (varlen: sequence boundaries);
    else ``flex_attention`` on a GPU when the model class supports it (a block mask from
    the reset position ids: blocks outside an example are skipped); else ``sdpa`` (CPU: a
    dense block-diagonal mask per row). An explicit ``attn_implementation`` wins.
    """
    if requested:
        return requested
    import importlib.util

    import torch

    if torch.cuda.is_available():
        if importlib.util.find_spec("flash_attn") is not None:
            return "flash_attention_2"
        if config is None or _supports_flex(config):
            return "flex_attention"
    return "sdpa"


def _supports_flex(config: Any) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    try:
        model_class = MODEL_FOR_CAUSAL_LM_MAPPING[type(config)]
    except KeyError:
        return False
    return bool(getattr(model_class, "_supports_flex_attn", False))


def load_dtype(
    model_args: ModelConfig, recipe_args: RecipeArguments, *, full_finetune: bool
) -> str:
    """The dtype weights load in: fp32 for full fine-tuning (the master weights; ``bf16``
    then runs the compute in bf16) unless ``pure_bf16``; as configured for LoRA, whose
    frozen base can stay in bf16 (peft keeps the adapters in fp32)."""
    dtype = model_args.dtype or "float32"
    if not full_finetune:
        return dtype
    if recipe_args.pure_bf16:
        return "bfloat16" if dtype == "float32" else dtype
    if dtype in HALF:
        print(
            f"precision: full fine-tuning loads the weights in float32, not {dtype} "
            "(fp32 master weights, bf16 compute); set pure_bf16: true for bf16 weights"
        )
        return "float32"
    return dtype


def load_model(
    model_path: str,
    model_args: ModelConfig,
    training_args: SFTConfig,
    recipe_args: RecipeArguments,
    attention: str,
) -> PreTrainedModel:
    """Load (or with ``random_init`` build) the model in the recipe's dtype and attention."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, set_seed
    from trl import get_quantization_config
    from trl.trainer.utils import create_model_from_path

    set_seed(training_args.seed)  # random init and adapters reproducible, as TRL does
    dtype_name = load_dtype(model_args, recipe_args, full_finetune=not model_args.use_peft)
    dtype: Any = dtype_name if dtype_name == "auto" else getattr(torch, dtype_name)
    if recipe_args.random_init:
        config = AutoConfig.from_pretrained(model_path, revision=model_args.model_revision)
        with torch.device(training_args.device):  # built where it trains, no host copy
            model: PreTrainedModel = AutoModelForCausalLM.from_config(
                config,
                dtype=torch.float32 if dtype == "auto" else dtype,
                attn_implementation=attention,
            )
        return model
    kwargs: dict[str, Any] = {
        "revision": model_args.model_revision,
        "dtype": dtype,
        "attn_implementation": attention,
        "trust_remote_code": training_args.trust_remote_code,
        **_as_dict(training_args.model_init_kwargs),
    }
    quantization = get_quantization_config(model_args)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    if training_args.distributed_state.distributed_type in ("MULTI_GPU", "DEEPSPEED"):
        kwargs["device_map"] = None  # as TRL: "auto" fails under DDP and ZeRO
    return create_model_from_path(model_path, **kwargs)


def _as_dict(value: Any) -> dict[str, Any]:
    """A dict field of the config (a JSON string on the command line)."""
    if isinstance(value, str):
        return dict(json.loads(value))
    return dict(value or {})


def precision_summary(trainer: SFTTrainer) -> str:
    """One line on parameter and compute precision; warns (:class:`PrecisionWarning`) when
    trainable parameters, and so AdamW's states, are half precision and nothing keeps an
    fp32 copy (FSDP upcasts them, DeepSpeed keeps fp32 master weights)."""
    import torch
    from accelerate.utils import DistributedType

    args = trainer.args
    model: Any = trainer.model
    trainable = [p for p in model.parameters() if p.requires_grad]
    dtypes = sorted({str(p.dtype).replace("torch.", "") for p in trainable})
    compute = "bf16 autocast" if args.bf16 else "fp16 autocast" if args.fp16 else "no autocast"
    line = f"precision: trainable parameters {'/'.join(dtypes)}, compute {compute}"
    half = any(p.dtype in (torch.bfloat16, torch.float16) for p in trainable)
    kind = trainer.accelerator.distributed_type
    if half and kind == DistributedType.FSDP and trainer.accelerator.mixed_precision != "no":
        return line + " (FSDP keeps them in fp32)"
    if half and kind == DistributedType.DEEPSPEED:
        return line + " (DeepSpeed keeps fp32 master weights)"
    if half:
        warnings.warn(
            "parameters and optimizer states are both half precision: AdamW updates smaller "
            "than the weights' resolution (most updates at lr 8e-6, all during warm-up) are "
            "lost. Load the weights in float32 (drop pure_bf16) unless the optimizer keeps "
            "small updates (stochastic rounding, Kahan summation).",
            PrecisionWarning,
            stacklevel=2,
        )
        return line + " (no fp32 master weights)"
    return line


def build_trainer(
    data_args: DataArguments,
    training_args: SFTConfig,
    model_args: ModelConfig,
    recipe_args: RecipeArguments | None = None,
    callbacks: list[TrainerCallback] | None = None,
) -> tuple[SFTTrainer, DataReport]:
    """Everything before ``train()``: tokenizer, template, data (and its report), model,
    packed rows and the trainer."""
    from transformers import AutoConfig
    from trl import SFTTrainer, get_peft_config

    recipe_args = recipe_args or RecipeArguments()
    if training_args.packing and not training_args.max_length:
        raise ValueError("packing needs max_length (the length of a packed row)")
    # Model path, tokenizer and the training chat template (saved with the model)
    output_dir = training_args.output_dir or "trainer_output"
    model_path = resolve_model_path(model_args.model_name_or_path)
    tokenizer = load_tokenizer(model_path, model_args.model_revision)
    model_config = AutoConfig.from_pretrained(model_path, revision=model_args.model_revision)
    model_type = model_config.model_type
    template = resolve_chat_template(tokenizer, model_type, training_args.chat_template_path)
    tokenizer.chat_template = template

    # Data: load, normalise, tokenize with loss masks, mix by ratio; bad rows counted
    if not training_args.assistant_only_loss:
        warnings.warn(
            "assistant_only_loss is false: prompts and context turns are trained too (an "
            "SFTConfig built in Python has TRL's default, false; set it to true, or build the "
            "arguments with genteach.train.parse_args)",
            PromptLossWarning,
            stacklevel=2,
        )
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

    # Model in fp32 (master weights) unless pure_bf16 or LoRA; the attention path
    attention = pick_attention(model_args.attn_implementation, model_config)
    model = load_model(model_path, model_args, training_args, recipe_args, attention)

    # Packed rows (BFD, whole examples) and a collator that never joins rows into one mask
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id
    multiple = training_args.pad_to_multiple_of
    multiple = int(multiple) if multiple is not None else None
    if training_args.packing:
        rows = pack_rows(
            dataset,
            int(training_args.max_length or 0),
            training_args.packing_strategy,
            training_args.dataset_num_proc,
        )
        collator = make_collator(attention, pad_id, multiple)
    else:
        from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

        rows = dataset.select_columns(["input_ids", "labels"])
        collator = DataCollatorForLanguageModeling(pad_token_id=pad_id, pad_to_multiple_of=multiple)

    # Trainer: rows are tokenized, masked and packed here, so TRL prepares nothing
    training_args.model_init_kwargs = None  # used by load_model above
    training_args.chat_template_path = None  # resolved above (genteach:NAME too); on the tokenizer
    training_args.assistant_only_loss = False  # the labels already carry the masks
    training_args.packing = False
    training_args.padding_free = False
    training_args.dataset_kwargs = {
        **_as_dict(training_args.dataset_kwargs),
        "skip_prepare_dataset": True,
    }
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=rows,
        data_collator=collator,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=callbacks,
    )
    if training_args.process_index == 0:
        print(f"{precision_summary(trainer)}; attention {attention}")
    return trainer, report


def train(
    data_args: DataArguments,
    training_args: SFTConfig,
    model_args: ModelConfig,
    recipe_args: RecipeArguments | None = None,
    callbacks: list[TrainerCallback] | None = None,
) -> RecipeResult:
    """Run the recipe. See the module docstring for the command-line form.

    Note: an ``SFTConfig`` built in Python has TRL's ``assistant_only_loss=False``, which
    trains the prompts too and warns (:class:`PromptLossWarning`); the command line,
    :func:`parse_args` and :func:`train_from_config` default it to true.
    """
    trainer, report = build_trainer(data_args, training_args, model_args, recipe_args, callbacks)
    output_dir = training_args.output_dir or "trainer_output"
    resume = resume_point(training_args.resume_from_checkpoint, output_dir)
    output = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(output_dir)
    trainer.accelerator.print(f"Model saved to {output_dir}")
    end = getattr(trainer, "end", None)  # transformers >= 5.18: finish trackers, process group
    if callable(end):
        end()
    return RecipeResult(trainer=trainer, report=report, metrics=dict(output.metrics))


def resume_point(value: str | None, output_dir: str) -> str | None:
    """``last``/``true`` -> the newest checkpoint in ``output_dir`` (None if there is none)."""
    if value is None or value.lower() in ("", "false", "no", "none"):
        return None
    if value.lower() in ("last", "true", "yes"):
        from transformers.trainer_utils import get_last_checkpoint

        return get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
    return value


def train_from_config(config: str, overrides: Sequence[str] = ()) -> RecipeResult:
    """Notebook entry point: ``train_from_config("x.yaml", ["--max_steps", "3"])``."""
    return train(*parse_args(["--config", config, *overrides]))


def main(argv: Sequence[str]) -> Any:
    """Parse ``argv`` and train."""
    return train(*parse_args(argv))
