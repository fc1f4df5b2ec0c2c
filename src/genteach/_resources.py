"""Where the built-in taxonomies/ and prompts/ live.

In a wheel they are package data (``genteach/prompts``); in a source checkout (editable
install) they are the top-level folders of the repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

_PKG = Path(__file__).resolve().parent


def builtin_dir(kind: Literal["prompts", "taxonomies"]) -> Path:
    """Return the folder holding genteach's built-in ``prompts`` or ``taxonomies``."""
    for candidate in (_PKG / kind, _PKG.parent.parent / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"genteach's built-in {kind}/ folder is missing (looked in {_PKG / kind} and "
        f"{_PKG.parent.parent / kind}); reinstall genteach"
    )


def default_taxonomy_path() -> Path:
    """The taxonomy used when none is given: ``taxonomies/agentinstruct.yaml``."""
    return builtin_dir("taxonomies") / "agentinstruct.yaml"
