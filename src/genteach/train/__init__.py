"""Training: the SFT recipe (TRL), its data pipeline and training chat templates.

Importing this package is light: no torch, transformers or TRL (they load when a function
runs), and no AutoGen, OpenAI or tiktoken.
"""

from __future__ import annotations

from genteach.train.data import DataArguments, DataReport, SourceConfig, prepare_dataset
from genteach.train.recipe import (
    LOCAL_MODEL,
    PrecisionWarning,
    PromptLossWarning,
    RecipeArguments,
    RecipeResult,
    build_trainer,
    parse_args,
    train,
    train_from_config,
)
from genteach.train.templates import resolve_chat_template
from genteach.train.tokenizer import load_tokenizer, tokenizer_from_sentencepiece

__all__ = [
    "LOCAL_MODEL",
    "DataArguments",
    "DataReport",
    "PrecisionWarning",
    "PromptLossWarning",
    "RecipeArguments",
    "RecipeResult",
    "SourceConfig",
    "build_trainer",
    "load_tokenizer",
    "parse_args",
    "prepare_dataset",
    "resolve_chat_template",
    "tokenizer_from_sentencepiece",
    "train",
    "train_from_config",
]
