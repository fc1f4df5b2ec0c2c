"""Label masks of the Mistral recipe, with Mistral-7B-v0.1's real tokenizer: which characters
are trained, per data format."""

from __future__ import annotations

from typing import Any

from genteach.train.data import Normalized, normalize_row, tokenize_batch
from genteach.train.templates import read_template

from .conftest import SAMPLE_PAIRS, THUDM_ROWS, masked_text, tokenize, trained_runs, trained_text

MISTRAL = read_template("mistral.jinja")


def run(tokenizer: Any, rows: list[Normalized], max_length: int | None = 512, **kw: Any) -> Any:
    batch: dict[str, list[Any]] = {
        "messages": [r.messages for r in rows],
        "prompt": [r.prompt for r in rows],
        "completion": [r.completion for r in rows],
        "bad": [r.bad for r in rows],
    }
    return tokenize_batch(batch, tokenizer, MISTRAL, max_length, **kw)


def test_multi_turn_trains_every_assistant_turn_and_eos(mistral_tokenizer: Any) -> None:
    row = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "Add two and three."},
            {"role": "assistant", "content": "Five."},
        ]
    }
    text, ids, labels = tokenize(mistral_tokenizer, row, MISTRAL)
    assert trained_runs(mistral_tokenizer, text, ids, labels) == [" Paris.</s>", " Five.</s>"]
    assert masked_text(mistral_tokenizer, text, ids, labels) == (
        "<s>[INST] Be brief.\n\nWhat is the capital of France? [/INST]|[INST] Add two and three. [/INST]"
    )
    assert labels[-1] == mistral_tokenizer.eos_token_id == 2  # the model learns to stop
    assert ids[0] == mistral_tokenizer.bos_token_id == 1


def test_tokens_match_mistral_common(mistral_tokenizer: Any) -> None:
    # mistral-common encodes Mistral-7B's chats message by message with SentencePiece; the
    # template's text through the rebuilt tokenizer gives the same ids (and the final EOS).
    from mistral_common.protocol.instruct.messages import (
        AssistantMessage,
        SystemMessage,
        UserMessage,
    )
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    from .conftest import mistral_model_file

    turns = [
        SystemMessage(content="Be brief."),
        UserMessage(content="What is 2+2?"),
        AssistantMessage(content="4"),
        UserMessage(content="And 3+3, déjà vu?"),
        AssistantMessage(content="6, naïvely.", prefix=True),
    ]
    theirs = (
        MistralTokenizer.from_file(str(mistral_model_file()))
        .encode_chat_completion(ChatCompletionRequest(messages=turns))
        .tokens
    )
    row = {"messages": [{"role": m.role, "content": m.content} for m in turns]}
    _, ids, _ = tokenize(mistral_tokenizer, row, MISTRAL)
    assert ids == [*theirs, mistral_tokenizer.eos_token_id]


def test_system_prompt_is_in_context_but_not_trained(mistral_tokenizer: Any) -> None:
    text, ids, labels = tokenize(mistral_tokenizer, SAMPLE_PAIRS[1], MISTRAL)
    assert "You are a helpful assistant." in masked_text(mistral_tokenizer, text, ids, labels)
    assert trained_text(mistral_tokenizer, text, ids, labels) == " 1 plus three is 4.</s>"


def test_empty_system_is_dropped(mistral_tokenizer: Any) -> None:
    row = normalize_row(SAMPLE_PAIRS[0])  # system content ""
    assert [m["role"] for m in row.messages] == ["user", "assistant"]
    text, _, _ = tokenize(mistral_tokenizer, SAMPLE_PAIRS[0], MISTRAL)
    assert text.startswith("<s>[INST] Add 0")


def test_thudm_loss_false_turns_are_context_only(mistral_tokenizer: Any) -> None:
    text, ids, labels = tokenize(mistral_tokenizer, THUDM_ROWS[0], MISTRAL)
    assert " OK.</s>" in masked_text(mistral_tokenizer, text, ids, labels)
    assert trained_text(mistral_tokenizer, text, ids, labels) == (
        " Think: I should list the files. Act: bash ls</s>"
    )


def test_a_token_across_the_prompt_boundary_is_not_trained(mistral_tokenizer: Any) -> None:
    # "[/INST][X]" tokenizes "][" as one token: it starts in the prompt, so it stays masked
    template = (
        "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}[INST] {{ m.content }}"
        " [/INST]{% else %}{% generation %}{{ m.content }}{{ eos_token }}{% endgeneration %}"
        "{% endif %}{% endfor %}"
    )
    row = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "[X]"}]}
    text, ids, labels = tokenize(mistral_tokenizer, row, template)
    assert "][" in mistral_tokenizer.convert_ids_to_tokens(ids)
    assert trained_text(mistral_tokenizer, text, ids, labels) == "X]</s>"


def test_prompt_completion_text_trains_completion_and_eos(mistral_tokenizer: Any) -> None:
    row = normalize_row({"prompt": "The capital of France is", "completion": " Paris."})
    out = run(mistral_tokenizer, [row])
    ids, labels = out["input_ids"][0], out["labels"][0]
    trained = [t for t, lab in zip(ids, labels, strict=True) if lab != -100]
    assert mistral_tokenizer.convert_ids_to_tokens(trained) == ["▁Paris", ".", "</s>"]
    assert ids[0] == mistral_tokenizer.bos_token_id and labels[0] == -100
    everything = run(mistral_tokenizer, [row], completion_only_loss=False)
    assert everything["labels"][0] == everything["input_ids"][0]


def test_prompt_completion_conversational(mistral_tokenizer: Any) -> None:
    row = {
        "prompt": [
            {"role": "user", "content": "Add two and three."},
            {"role": "assistant", "content": "Five."},
            {"role": "user", "content": "And times?"},
        ],
        "completion": [{"role": "assistant", "content": "Six."}],
    }
    text, ids, labels = tokenize(mistral_tokenizer, row, MISTRAL)
    assert trained_text(mistral_tokenizer, text, ids, labels) == " Six.</s>"  # not the prompt's


def test_assistant_only_loss_off_trains_everything(mistral_tokenizer: Any) -> None:
    out = run(mistral_tokenizer, [normalize_row(SAMPLE_PAIRS[1])], assistant_only_loss=False)
    assert out["labels"][0] == out["input_ids"][0]


def test_truncation_keeps_rows_with_trained_tokens_and_reports_the_rest(
    mistral_tokenizer: Any,
) -> None:
    long_answer = {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "The answer is 42 because " * 20},
        ]
    }
    long_prompt = {
        "messages": [
            {"role": "user", "content": "Explain why the sky is blue " * 20},
            {"role": "assistant", "content": "Scattering."},
        ]
    }
    out = run(mistral_tokenizer, [normalize_row(long_answer), normalize_row(long_prompt)], 40)
    assert out["bad"] == ["", "over_long"]
    assert out["truncated"] == [True, True]
    assert out["n_tokens"] == [40, 40] and out["n_trained"][0] > 0
    assert all(len(ids) == 40 for ids in out["input_ids"])
