"""Training chat templates: format, generation markers, resolution by family or path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from genteach.train.templates import (
    FAMILY_TEMPLATES,
    has_generation_markers,
    read_template,
    render_with_spans,
    resolve_chat_template,
)

SYSTEM = "You are a careful tutor."
MULTI_TURN = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4"},
    {"role": "user", "content": "And 3+3?"},
    {"role": "assistant", "content": "6"},
]


def spans_text(tokenizer: Any, name: str, messages: list[dict[str, str]]) -> tuple[str, list[str]]:
    texts, spans = render_with_spans(tokenizer, read_template(name), [messages])
    return texts[0], [texts[0][a:b] for a, b in spans[0]]


def test_every_shipped_template_is_marked_and_renders(tiny_tokenizer: Any) -> None:
    for name in FAMILY_TEMPLATES.values():
        template = read_template(name)
        assert has_generation_markers(template)
        text, trained = spans_text(tiny_tokenizer, name, MULTI_TURN)
        assert SYSTEM in text and len(trained) == 2


def test_mistral_format_exact(mistral_tokenizer: Any) -> None:
    text, trained = spans_text(mistral_tokenizer, "mistral.jinja", MULTI_TURN)
    assert text == (
        f"<s>[INST] {SYSTEM}\n\nWhat is 2+2? [/INST] 4</s>[INST] And 3+3? [/INST] 6</s>"
    )
    assert trained == [" 4</s>", " 6</s>"]  # every assistant turn, EOS inside the markers


def test_mistral_keeps_system_when_last_turn_is_assistant(mistral_tokenizer: Any) -> None:
    # Mistral's v0.3 template puts the system prompt on the last user turn only, and drops it
    # when the conversation ends with an assistant turn, which is every training example.
    text, _ = spans_text(mistral_tokenizer, "mistral.jinja", MULTI_TURN)
    assert text.count(SYSTEM) == 1 and text.index(SYSTEM) < text.index("What is 2+2?")
    text, _ = spans_text(mistral_tokenizer, "mistral.jinja", MULTI_TURN[:3])
    assert SYSTEM in text


def test_mistral_system_before_an_assistant_first_turn(mistral_tokenizer: Any) -> None:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "assistant", "content": "Hi."}]
    text, trained = spans_text(mistral_tokenizer, "mistral.jinja", messages)
    assert text == f"<s>[INST] {SYSTEM} [/INST] Hi.</s>" and trained == [" Hi.</s>"]


def test_mistral_generation_prompt_matches_training_prefix(mistral_tokenizer: Any) -> None:
    template = read_template("mistral.jinja")
    prompt = mistral_tokenizer.apply_chat_template(
        MULTI_TURN[:4], chat_template=template, tokenize=False, add_generation_prompt=True
    )
    full = mistral_tokenizer.apply_chat_template(MULTI_TURN, chat_template=template, tokenize=False)
    assert full.startswith(prompt) and full[len(prompt) :] == " 6</s>"


def test_qwen2_format(tiny_tokenizer: Any) -> None:
    text, trained = spans_text(tiny_tokenizer, "qwen2.jinja", MULTI_TURN[:3])
    assert text == (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|>\n"
    )
    assert trained == ["4<|im_end|>\n"]


def test_resolve_order(tiny_tokenizer: Any, tmp_path: Path) -> None:
    assert resolve_chat_template(tiny_tokenizer, "mistral") == read_template("mistral.jinja")
    assert resolve_chat_template(tiny_tokenizer, "qwen2") == read_template("qwen2.jinja")
    custom = tmp_path / "mine.jinja"
    custom.write_text(
        "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}"
        "{{ m.content }}{{ eos_token }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}"
        "{% endfor %}"
    )
    assert resolve_chat_template(tiny_tokenizer, "mistral", str(custom)) == custom.read_text()
    unmarked = tmp_path / "plain.jinja"
    unmarked.write_text("{% for m in messages %}{{ m.content }}{% endfor %}")
    with pytest.raises(ValueError, match="generation"):
        resolve_chat_template(tiny_tokenizer, "mistral", str(unmarked))
    with pytest.raises(ValueError, match="chat_template_path"):
        resolve_chat_template(tiny_tokenizer, "some-new-family")
