"""Training: the SFT recipe (TRL), its data pipeline and training chat templates.

Importing this package is light; torch, transformers and TRL load when a function runs.
"""

from __future__ import annotations

from genteach.train.data import DataArguments, DataReport, SourceConfig, prepare_dataset
from genteach.train.recipe import LOCAL_MODEL, RecipeResult, train, train_from_config
from genteach.train.templates import resolve_chat_template

__all__ = [
    "LOCAL_MODEL",
    "DataArguments",
    "DataReport",
    "RecipeResult",
    "SourceConfig",
    "prepare_dataset",
    "resolve_chat_template",
    "train",
    "train_from_config",
]
