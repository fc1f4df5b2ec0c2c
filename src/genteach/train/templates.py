"""Training chat templates: which one a model gets, and rendering with trained spans.

A training template marks every assistant turn with ``{% generation %}...{% endgeneration %}``
(its end-of-turn token inside), which is how transformers and TRL tell trained tokens from
masked ones. genteach ships templates for the families it trains by default; any other model
uses a template given by path, its own template if it is already marked, or TRL's training
variant of it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from transformers import PreTrainedTokenizerBase

__all__ = [
    "FAMILY_TEMPLATES",
    "SHIPPED_PREFIX",
    "has_generation_markers",
    "read_template",
    "render_with_spans",
    "resolve_chat_template",
    "template_message",
]

#: ``config.model_type`` -> template file shipped in ``genteach/train/templates/``.
FAMILY_TEMPLATES: dict[str, str] = {
    "mistral": "mistral.jinja",
    "qwen2": "qwen2.jinja",
}

#: ``chat_template_path: genteach:NAME`` names a template shipped in ``templates/NAME.jinja``.
SHIPPED_PREFIX = "genteach:"

_MARKER = re.compile(r"\{%-?\s*generation\s*-?%\}")


def has_generation_markers(template: str | None) -> bool:
    """True when ``template`` has ``{% generation %}`` markers (any whitespace-trim variant)."""
    return template is not None and _MARKER.search(template) is not None


def read_template(name: str) -> str:
    """Read a template shipped with genteach, e.g. ``read_template("mistral.jinja")``."""
    return (resources.files("genteach.train") / "templates" / name).read_text(encoding="utf-8")


def resolve_chat_template(
    tokenizer: PreTrainedTokenizerBase, model_type: str | None, path: str | None = None
) -> str:
    """Pick the training chat template for a model.

    Order: ``path`` (a ``.jinja``/``.j2`` file, or ``genteach:NAME`` for a template genteach
    ships, e.g. ``genteach:llama2-chat``) > genteach's template for ``model_type`` >
    the tokenizer's own template when it is already marked > TRL's training variant of it.

    Raises:
        ValueError: when no marked template can be found; the message says to pass a path.
    """
    if path is not None and path.startswith(SHIPPED_PREFIX):
        name = path[len(SHIPPED_PREFIX) :] + ".jinja"
        try:
            return read_template(name)
        except FileNotFoundError:
            shipped = sorted(
                f"{SHIPPED_PREFIX}{p.name.removesuffix('.jinja')}"
                for p in (resources.files("genteach.train") / "templates").iterdir()
                if p.name.endswith(".jinja")
            )
            raise ValueError(
                f"chat_template_path {path!r}: genteach ships no such template "
                f"(shipped: {', '.join(shipped)})"
            ) from None
    if path is not None:
        if not path.endswith((".jinja", ".j2")):
            raise ValueError(f"chat_template_path must be a .jinja or .j2 file, got {path!r}")
        with open(path, encoding="utf-8") as handle:
            template = handle.read()
        if not has_generation_markers(template):
            raise ValueError(f"{path} has no {{% generation %}} markers: nothing would be trained")
        return template
    if model_type in FAMILY_TEMPLATES:
        return read_template(FAMILY_TEMPLATES[model_type])
    own = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    if has_generation_markers(own):
        assert own is not None
        return own
    if own is not None:
        from trl.chat_template_utils import get_training_chat_template

        try:
            patched = get_training_chat_template(tokenizer)
        except ValueError:
            patched = None
        if patched is not None:
            return patched
    raise ValueError(
        f"No training chat template for model type {model_type!r}: pass --chat_template_path "
        "with a .jinja file whose assistant turns are wrapped in {% generation %} markers."
    )


def template_message(turn: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a turn that a chat template sees, keys only where set.

    ``role`` and ``content`` always; ``tool_calls`` as ``{"id", "name", "arguments"}`` with
    the arguments parsed into an object when they are a JSON object (templates write them
    with ``tojson``); a tool turn's ``tool_call_id`` and ``name``.
    """
    out: dict[str, Any] = {"role": turn["role"], "content": turn["content"]}
    calls = turn.get("tool_calls") or []
    if calls:
        out["tool_calls"] = [
            {"id": c.get("id") or "", "name": c["name"], "arguments": _arguments(c["arguments"])}
            for c in calls
        ]
    for key in ("tool_call_id", "name"):
        if turn.get(key) is not None and turn["role"] == "tool":
            out[key] = turn[key]
    return out


def _arguments(text: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, dict) else text


def render_with_spans(
    tokenizer: PreTrainedTokenizerBase,
    template: str,
    conversations: Sequence[Sequence[Mapping[str, Any]]],
) -> tuple[list[str], list[list[tuple[int, int]]]]:
    """Render conversations and return, for each, the character spans of its generation blocks.

    There is one span per ``{% generation %}`` block, in order: with genteach's templates, one
    per assistant turn. The template sees :func:`template_message` of each turn.
    """
    from transformers.utils.chat_template_utils import render_jinja_template

    render: Any = render_jinja_template  # returns (texts, spans) with the mask flag on
    plain = [[template_message(m) for m in conv] for conv in conversations]
    texts, spans = render(
        conversations=plain,
        chat_template=template,
        return_assistant_tokens_mask=True,
        **tokenizer.special_tokens_map,
    )
    return list(texts), [[(int(s), int(e)) for s, e in conv] for conv in spans]
