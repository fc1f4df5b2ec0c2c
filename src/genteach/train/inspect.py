"""See what is learned: one tokenized example, trained tokens told apart, and trained share.

Usage::

    genteach train inspect --config configs/train/smoke_cpu.yaml
    genteach train inspect --config configs/train/orca3_mistral7b.yaml --index 3 --max_rows 2000
    genteach train inspect --sources out/records.jsonl \
        --model_name_or_path mistralai/Mistral-7B-v0.1

Reads the same YAML as training (fields it does not need are ignored), so what it shows is
what the recipe trains. Trained tokens print green (or inside ``[[ ]]`` when not a terminal).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from genteach.train.data import DataArguments, prepare_dataset
from genteach.train.templates import resolve_chat_template

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["InspectArguments", "highlight", "main"]

GREEN, DIM, RESET = "\x1b[32m", "\x1b[2m", "\x1b[0m"


@dataclass
class InspectArguments:
    """What to show. The last five fields mirror ``SFTConfig`` so the training YAML works."""

    index: int = field(default=0, metadata={"help": "Which example (after mixing) to print."})
    num_examples: int = field(default=1, metadata={"help": "How many examples to print."})
    max_rows: int | None = field(
        default=None, metadata={"help": "Read at most this many rows per source (quick look)."}
    )
    color: str = field(
        default="auto",
        metadata={
            "help": "Highlight trained tokens: auto | always | never.",
            "choices": ["auto", "always", "never"],
        },
    )
    max_length: int | None = field(default=1024, metadata={"help": "As SFTConfig.max_length."})
    assistant_only_loss: bool = field(
        default=True, metadata={"help": "As SFTConfig (true here, as in `genteach train`)."}
    )
    completion_only_loss: bool | None = field(default=None, metadata={"help": "As SFTConfig."})
    chat_template_path: str | None = field(default=None, metadata={"help": "As SFTConfig."})
    dataset_num_proc: int | None = field(default=None, metadata={"help": "As SFTConfig."})


def highlight(
    tokenizer: PreTrainedTokenizerBase, input_ids: Sequence[int], labels: Sequence[int], color: bool
) -> str:
    """The example's text with trained runs marked (green, or ``[[...]]``)."""
    pieces: list[str] = []
    run: list[int] = []
    trained = False
    for token, label in [*zip(input_ids, labels, strict=True), (-1, -1)]:
        is_trained = label != -100
        if run and (token == -1 or is_trained != trained):
            text = str(tokenizer.decode(run))
            if trained:
                pieces.append(f"{GREEN}{text}{RESET}" if color else f"[[{text}]]")
            else:
                pieces.append(f"{DIM}{text}{RESET}" if color else text)
            run = []
        run.append(token)
        trained = is_trained
    return "".join(pieces)


def inspect(
    data_args: DataArguments, model_args: Any, args: InspectArguments, out: TextIO | None = None
) -> float:
    """Print examples and the data report (to ``out``, default stdout); return the trained share."""
    from transformers import AutoConfig

    from genteach.train.recipe import resolve_model_path
    from genteach.train.tokenizer import load_tokenizer

    out = out or sys.stdout
    path = resolve_model_path(model_args.model_name_or_path)
    tokenizer = load_tokenizer(path, model_args.model_revision)
    model_type = AutoConfig.from_pretrained(path, revision=model_args.model_revision).model_type
    template = resolve_chat_template(tokenizer, model_type, args.chat_template_path)
    if args.max_rows is not None:
        for source in data_args.sources:
            source.limit = min(source.limit or args.max_rows, args.max_rows)
    dataset, report = prepare_dataset(
        data_args,
        tokenizer,
        template,
        max_length=args.max_length,
        assistant_only_loss=args.assistant_only_loss,
        completion_only_loss=args.completion_only_loss,
        num_proc=args.dataset_num_proc,
    )
    color = args.color == "always" or (args.color == "auto" and out.isatty())
    for index in range(args.index, min(args.index + args.num_examples, len(dataset))):
        row = dataset[index]
        print(
            f"--- example {index} (source {row['source']}): {row['n_tokens']} tokens, "
            f"{row['n_trained']} trained ({row['n_trained'] / max(row['n_tokens'], 1):.1%})",
            file=out,
        )
        print(highlight(tokenizer, row["input_ids"], row["labels"], color), file=out)
        legend = f"{GREEN}trained{RESET}" if color else "[[trained]]"
        print(f"--- {legend}, the rest masked (labels -100)", file=out)
    print(report.format(), file=out)
    return report.trained_tokens / report.tokens if report.tokens else 0.0


def main(argv: Sequence[str]) -> int:
    """``genteach train inspect --config x.yaml [--index N] [--max_rows N] [--color ...]``."""
    from trl import ModelConfig, TrlParser

    types: list[Any] = [DataArguments, ModelConfig, InspectArguments]
    parser = TrlParser(types, prog="genteach train inspect")
    data_args, model_args, args = parser.parse_args_and_config(
        list(argv), fail_with_unknown_args=False
    )
    inspect(data_args, model_args, args)
    return 0
