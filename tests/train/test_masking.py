"""Label masks: which tokens are trained, per data format."""

from __future__ import annotations

from typing import Any

from genteach.train.data import Normalized, normalize_row, tokenize_batch
from genteach.train.templates import read_template

from .conftest import SAMPLE_PAIRS, THUDM_ROWS

MISTRAL = read_template("mistral.jinja")


def run(tokenizer: Any, rows: list[Normalized], max_length: int | None = 512, **kw: Any) -> Any:
    batch: dict[str, list[Any]] = {
        "messages": [r.messages for r in rows],
        "prompt": [r.prompt for r in rows],
        "completion": [r.completion for r in rows],
        "bad": [r.bad for r in rows],
    }
    return tokenize_batch(batch, tokenizer, MISTRAL, max_length, **kw)


def trained_text(tokenizer: Any, ids: list[int], labels: list[int]) -> str:
    return str(tokenizer.decode([t for t, lab in zip(ids, labels, strict=True) if lab != -100]))


def masked_text(tokenizer: Any, ids: list[int], labels: list[int]) -> str:
    return str(tokenizer.decode([t for t, lab in zip(ids, labels, strict=True) if lab == -100]))


def test_multi_turn_trains_every_assistant_turn_and_eos(tiny_tokenizer: Any) -> None:
    row = normalize_row(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is the capital of France?"},
                {"role": "assistant", "content": "Paris."},
                {"role": "user", "content": "Add two and three."},
                {"role": "assistant", "content": "Five."},
            ]
        }
    )
    out = run(tiny_tokenizer, [row])
    ids, labels = out["input_ids"][0], out["labels"][0]
    assert trained_text(tiny_tokenizer, ids, labels) == " Paris.</s> Five.</s>"
    masked = masked_text(tiny_tokenizer, ids, labels)
    assert "Be brief." in masked and "capital of France" in masked and "Add two" in masked
    assert labels[-1] == tiny_tokenizer.eos_token_id  # the model learns to stop
    assert out["n_trained"][0] == sum(1 for x in labels if x != -100)


def test_system_prompt_is_in_context_but_not_trained(tiny_tokenizer: Any) -> None:
    out = run(tiny_tokenizer, [normalize_row(SAMPLE_PAIRS[1])])
    ids, labels = out["input_ids"][0], out["labels"][0]
    assert "You are a helpful assistant." in tiny_tokenizer.decode(ids)
    assert "helpful" not in trained_text(tiny_tokenizer, ids, labels)
    assert trained_text(tiny_tokenizer, ids, labels) == " 1 plus three is 4.</s>"


def test_empty_system_is_dropped(tiny_tokenizer: Any) -> None:
    row = normalize_row(SAMPLE_PAIRS[0])  # system content ""
    assert [m["role"] for m in row.messages] == ["user", "assistant"]
    out = run(tiny_tokenizer, [row])
    assert tiny_tokenizer.decode(out["input_ids"][0]).startswith("<s>[INST] Add 0")


def test_thudm_loss_false_turns_are_context_only(tiny_tokenizer: Any) -> None:
    out = run(tiny_tokenizer, [normalize_row(THUDM_ROWS[0])])
    ids, labels = out["input_ids"][0], out["labels"][0]
    assert " OK." in masked_text(tiny_tokenizer, ids, labels)
    assert trained_text(tiny_tokenizer, ids, labels) == (
        " Think: I should list the files. Act: bash ls</s>"
    )


def test_prompt_completion_text_trains_completion_and_eos(tiny_tokenizer: Any) -> None:
    row = normalize_row({"prompt": "The capital of France is", "completion": " Paris."})
    out = run(tiny_tokenizer, [row])
    ids, labels = out["input_ids"][0], out["labels"][0]
    assert trained_text(tiny_tokenizer, ids, labels) == " Paris.</s>"
    assert masked_text(tiny_tokenizer, ids, labels) == "The capital of France is"
    everything = run(tiny_tokenizer, [row], completion_only_loss=False)
    assert everything["labels"][0] == everything["input_ids"][0]


def test_prompt_completion_conversational(tiny_tokenizer: Any) -> None:
    row = normalize_row(
        {
            "prompt": [
                {"role": "user", "content": "Add two and three."},
                {"role": "assistant", "content": "Five."},
                {"role": "user", "content": "And times?"},
            ],
            "completion": [{"role": "assistant", "content": "Six."}],
        }
    )
    out = run(tiny_tokenizer, [row])
    ids, labels = out["input_ids"][0], out["labels"][0]
    assert trained_text(tiny_tokenizer, ids, labels) == " Six.</s>"  # the prompt's turn is not


def test_assistant_only_loss_off_trains_everything(tiny_tokenizer: Any) -> None:
    out = run(tiny_tokenizer, [normalize_row(SAMPLE_PAIRS[1])], assistant_only_loss=False)
    assert out["labels"][0] == out["input_ids"][0]


def test_truncation_keeps_rows_with_trained_tokens_and_reports_the_rest(
    tiny_tokenizer: Any,
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
    out = run(tiny_tokenizer, [normalize_row(long_answer), normalize_row(long_prompt)], 40)
    assert out["bad"] == ["", "over_long"]
    assert out["truncated"] == [True, True]
    assert out["n_tokens"] == [40, 40] and out["n_trained"][0] > 0
    assert all(len(ids) == 40 for ids in out["input_ids"])
